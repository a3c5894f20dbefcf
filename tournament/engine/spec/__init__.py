"""The tournament spec: its schema, the checks that need other layers, and YAML loading.

Every mistake a user can make raises `envs.errors.UserInputError` with one line that names the
key path (e.g. `grid.algorithm[1]`) and, for names, the valid choices.
"""

from tournament.engine.spec.checks import check_spec, probe_algorithm, resolved_space
from tournament.engine.spec.loading import load_spec, parse_spec, scaled, validate_spec_fields, with_overrides
from tournament.engine.spec.schema import ParamSpec, TournamentSpec

__all__ = [
    "ParamSpec",
    "TournamentSpec",
    "check_spec",
    "load_spec",
    "parse_spec",
    "probe_algorithm",
    "resolved_space",
    "scaled",
    "validate_spec_fields",
    "with_overrides",
]
