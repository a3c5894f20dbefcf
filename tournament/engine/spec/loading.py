"""Reading a spec: YAML in, a validated TournamentSpec out, pydantic errors as one line."""


from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from envs.errors import UserInputError
from tournament.engine.spec.checks import check_spec, warn_external_checkpoints
from tournament.engine.spec.schema import TournamentSpec


# ---- errors ------------------------------------------------------------------------------------


def _loc_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top>"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class that owns the last key of `loc` (to list its valid keys)."""
    model: Any = TournamentSpec
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _from_validation_error(exc: ValidationError) -> UserInputError:
    err = exc.errors()[0]
    # dict-of-ParamSpec paths contain pydantic's internal union tags; drop non-key parts
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "function-" in p)))
    path = _loc_path(loc)
    if err["type"] == "extra_forbidden":
        model = _model_at(loc)
        valid = ", ".join(model.model_fields) if model else ""
        parent = _loc_path(loc[:-1])
        where = f" in {parent}" if loc[:-1] else ""
        return UserInputError(f"unknown key {loc[-1]!r}{where}; valid keys: {valid}")
    if err["type"] == "missing":
        return UserInputError(f"{path}: required key is missing")
    msg = err["msg"].removeprefix("Value error, ")
    return UserInputError(f"{path}: {msg} (got {err.get('input')!r})")


def validate_spec_fields(data: Any, source: str = "spec") -> TournamentSpec:
    """The spec's fields checked (types, ranges, names) without probing RLlib or reading
    checkpoints: enough to compare a run's recorded spec with a new one."""
    if not isinstance(data, dict):
        raise UserInputError(f"{source}: a spec is a mapping of keys (name, world, grid, ...), got {type(data).__name__}")
    try:
        return TournamentSpec.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None


def parse_spec(data: Any, source: str = "spec") -> TournamentSpec:
    """A validated spec from already-parsed YAML data."""
    spec = validate_spec_fields(data, source)
    # before check_spec: probing LoRA_staged already reads its pretrained checkpoint
    warn_external_checkpoints(spec)
    check_spec(spec)
    return spec


def load_spec(path: "str | Path") -> TournamentSpec:
    """Read and validate a YAML spec file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserInputError(f"{path}: invalid YAML{where}: {problem}") from None
    return parse_spec(data, str(path))


def with_overrides(spec: TournamentSpec, **execution: Any) -> TournamentSpec:
    """A copy with execution settings from the command line (None = keep the spec's)."""
    given = {k: v for k, v in execution.items() if v is not None}
    if not given:
        return spec
    data = spec.model_dump()
    data["execution"].update(given)
    try:
        return TournamentSpec.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None


def scaled(spec: TournamentSpec, scale: float) -> TournamentSpec:
    """A copy whose trials take `scale` times the env steps, under its own name (and so its own
    run directory): the reduced grid that `tournament plan SPEC --scale` estimates."""
    if not (isinstance(scale, (int, float)) and 0 < scale <= 1):
        raise UserInputError(f"--scale must be in (0, 1], got {scale!r}")
    if scale == 1:
        return spec
    data = spec.model_dump()
    data["budget"]["env_steps"] = max(1, round(spec.budget.env_steps * scale))
    data["name"] = f"{spec.name}_x{scale:g}"
    return parse_spec(data, f"{spec.name} at --scale {scale:g}")

