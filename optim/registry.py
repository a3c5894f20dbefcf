"""Build any of the compared optimizers by name from one flat hparams dict.

The trainer treats optimizers as a tournament dimension, so it needs to build
each of them from the same kind of config and log comparable lr statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from .asgd import ASGDAdam, ASGDAmsgrad, _ASGDBase

OPTIMIZER_NAMES: tuple[str, ...] = ("adam", "amsgrad", "asgd_adam", "asgd_amsgrad")

# Keys any optimizer accepts; keys it does not use are ignored so one shared
# config can feed every optimizer. Anything else is a typo and is rejected.
_KNOWN_KEYS = frozenset(
    {"lr", "lr_min", "lr_max", "betas", "eps", "weight_decay", "switch", "threshold"}
)
_TORCH_ADAM_KEYS = ("betas", "eps", "weight_decay")
_ASGD_KEYS = ("betas", "eps", "weight_decay", "switch", "threshold")
# The scalar hyperparameters of each optimizer a search may tune (betas is a pair: fixed only).
TUNABLE_HPARAMS: dict[str, tuple[str, ...]] = {
    "adam": ("lr", "eps", "weight_decay"),
    "amsgrad": ("lr", "eps", "weight_decay"),
    "asgd_adam": ("lr_min", "lr_max", "eps", "weight_decay", "switch", "threshold"),
    "asgd_amsgrad": ("lr_min", "lr_max", "eps", "weight_decay", "switch", "threshold"),
}


def _check_name(name: str) -> None:
    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {name!r}; valid choices: {', '.join(OPTIMIZER_NAMES)}")


def make_optimizer(
    name: str, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], hparams: dict[str, Any]
) -> torch.optim.Optimizer:
    """Build optimizer ``name``.

    adam/amsgrad need ``lr``. asgd_* take ``lr_min`` and ``lr_max`` together,
    or ``lr`` alone meaning lr_min = lr_max = lr (then they reduce to Adam /
    AMSGrad); if both forms are present, lr_min/lr_max win. Optional keys:
    betas, eps, weight_decay (all optimizers) and switch, threshold (asgd_*).
    """
    _check_name(name)
    unknown = sorted(set(hparams) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(
            f"unknown hparam key(s) {unknown} for optimizer {name!r}; "
            f"allowed: {', '.join(sorted(_KNOWN_KEYS))}"
        )

    if name in ("adam", "amsgrad"):
        if "lr" not in hparams:
            raise ValueError(f"optimizer {name!r} needs hparam 'lr'")
        extra = {k: hparams[k] for k in _TORCH_ADAM_KEYS if k in hparams}
        if "betas" in extra:
            extra["betas"] = tuple(extra["betas"])
        return torch.optim.Adam(params, lr=hparams["lr"], amsgrad=(name == "amsgrad"), **extra)

    has_min, has_max = "lr_min" in hparams, "lr_max" in hparams
    if has_min and has_max:
        lr_min, lr_max = hparams["lr_min"], hparams["lr_max"]
    elif has_min or has_max:
        # Filling the other bound from 'lr' would silently invent a range.
        raise ValueError(
            f"optimizer {name!r} needs both 'lr_min' and 'lr_max' (or 'lr' alone); "
            f"got only {'lr_min' if has_min else 'lr_max'}"
        )
    elif "lr" in hparams:
        lr_min = lr_max = hparams["lr"]
    else:
        raise ValueError(f"optimizer {name!r} needs hparams 'lr_min' and 'lr_max', or 'lr'")
    extra = {k: hparams[k] for k in _ASGD_KEYS if k in hparams}
    cls = ASGDAdam if name == "asgd_adam" else ASGDAmsgrad
    return cls(params, lr_min=lr_min, lr_max=lr_max, **extra)


def active_lr_stats(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Loggable ``{"frac_lr_max", "lr_mean"}`` for any optimizer from this registry.

    ASGD optimizers: both values from the last step's ``last_switch_stats``
    (nan before the first step). Other optimizers (torch Adam): there is no
    switch, so ``frac_lr_max`` is nan ("not applicable", rather than a value
    that could be mistaken for a measurement) and ``lr_mean`` is the current
    group lr averaged over parameter elements.
    """
    if isinstance(optimizer, _ASGDBase):
        stats = optimizer.last_switch_stats
        return {
            "frac_lr_max": float(stats.get("frac_lr_max", math.nan)),
            "lr_mean": float(stats.get("lr_mean", math.nan)),
        }
    weighted = 0.0
    total = 0
    for group in optimizer.param_groups:
        n = sum(p.numel() for p in group["params"])
        weighted += float(group["lr"]) * n
        total += n
    return {"frac_lr_max": math.nan, "lr_mean": weighted / total if total else math.nan}
