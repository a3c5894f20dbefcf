"""The kinetic parameters of an ODE world, their defaults and their checks, in one place.

Defaults are BoolODE's (Pratapa et al. 2020, `BoolODE/utils.py`): mRNA transcription m = 20,
mRNA decay l_x = 10 (so the mRNA of a fully on gene settles at x_max = m / l_x = 2),
translation r = 10, protein decay l_p = 1 (p_max = r x_max / l_p = 20), Hill coefficient
n = 10, and each regulator's Hill threshold K at half its species' maximum (x_max / 2 for
mRNA, p_max / 2 for protein).

Noise. `langevin` (default) is the chemical Langevin equation: each species gets
`noise_scale * sqrt(production + decay)` per unit sqrt-time (one Wiener process per species
that lumps its two reactions). `boolode` is BoolODE's own form, `noise_scale * sqrt(|y|)`.
BoolODE writes it as c = 10 times increments drawn with standard deviation h (not sqrt(h)),
which at its step h = 0.01 is an amplitude c * sqrt(h) = 1.0 per sqrt-time: the `boolode`
default. The `langevin` default 0.2236 = sqrt(2 / 40) gives the same amplitude as BoolODE's
at a fully on mRNA steady state (production = decay = 20, x = 2). `none` turns noise off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from envs.errors import UserInputError, choices_error

NOISE_FORMS = ("langevin", "boolode", "none")
DEFAULT_NOISE_SCALE = {"langevin": float(np.sqrt(2.0 / 40.0)), "boolode": 1.0, "none": 0.0}


@dataclass(frozen=True)
class OdeParams:
    """Kinetic and integration parameters; scalars applied to every gene (see the module docstring)."""

    transcription: float = 20.0  # m: mRNA production at full activation
    mrna_decay: float = 10.0  # l_x: first-order mRNA decay rate
    translation: float = 10.0  # r: protein produced per mRNA (protein layer only)
    protein_decay: float = 1.0  # l_p: first-order protein decay rate (protein layer only)
    hill: float = 10.0  # n: Hill coefficient of every regulator
    threshold: "float | None" = None  # K: None = half the regulator species' maximum (BoolODE)
    proteins: bool = False  # the protein layer: genes regulate through their proteins
    noise: str = "langevin"  # langevin | boolode | none
    noise_scale: "float | None" = None  # None = DEFAULT_NOISE_SCALE[noise]
    dt: float = 0.01  # Euler-Maruyama step (BoolODE's integration step)

    def __post_init__(self) -> None:
        if self.noise not in NOISE_FORMS:
            raise choices_error("noise form", self.noise, NOISE_FORMS)
        for name in ("transcription", "mrna_decay", "translation", "protein_decay", "hill", "dt"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
                raise UserInputError(f"ODE parameter {name} must be a number, got {value!r}")
            if value <= 0:
                what = {"hill": "Hill coefficient", "mrna_decay": "mRNA decay rate", "protein_decay": "protein decay rate"}
                raise UserInputError(f"{what.get(name, 'ODE parameter ' + name)} must be > 0, got {value!r}")
        if self.threshold is not None and not (np.isfinite(self.threshold) and self.threshold > 0):
            raise UserInputError(f"Hill threshold must be > 0 (or None for half the maximum), got {self.threshold!r}")
        if self.noise_scale is not None and not (np.isfinite(self.noise_scale) and self.noise_scale >= 0):
            raise UserInputError(f"noise_scale must be >= 0, got {self.noise_scale!r}")

    @property
    def sigma(self) -> float:
        """The noise amplitude in use (0 when noise is off)."""
        if self.noise == "none":
            return 0.0
        return float(DEFAULT_NOISE_SCALE[self.noise] if self.noise_scale is None else self.noise_scale)

    @property
    def x_max(self) -> float:
        """mRNA of a fully on gene at steady state."""
        return self.transcription / self.mrna_decay

    @property
    def p_max(self) -> float:
        """Protein of a fully on gene at steady state."""
        return self.x_max * self.translation / self.protein_decay

    def without_noise(self) -> "OdeParams":
        return replace(self, noise="none")

    def to_dict(self) -> dict:
        return asdict(self)


PARAM_NAMES = tuple(f.name for f in fields(OdeParams))


def ode_params(value: "OdeParams | dict | None") -> OdeParams:
    """OdeParams from None (defaults), a dict of overrides (checked names) or OdeParams."""
    if value is None:
        return OdeParams()
    if isinstance(value, OdeParams):
        return value
    if not isinstance(value, dict):
        raise UserInputError(f"ODE parameters must be a mapping of {', '.join(PARAM_NAMES)}; got {value!r}")
    unknown = sorted(set(value) - set(PARAM_NAMES))
    if unknown:
        raise choices_error("ODE parameter", unknown[0], PARAM_NAMES)
    return OdeParams(**value)
