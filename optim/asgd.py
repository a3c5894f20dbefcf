"""Adam / AMSGrad with a per-coordinate switch between two base learning rates.

Plain Adam uses one base learning rate for every coordinate. Coordinates whose
gradients are rare or tiny have a small second-moment estimate, so Adam's
normalisation ``m_hat / sqrt(v_hat)`` can blow a single occasional gradient up
into a full-size step. The ASGD variants here stay cautious on such coordinates
by giving them a smaller base learning rate ``lr_min``, and use ``lr_max``
where the second moment is large (frequent, well-estimated gradients).

Update for one parameter tensor x at step t (all operations element-wise,
``g**2`` is the element-wise square, ``wd`` is weight_decay)::

    g_t   = grad f(x_{t-1}) + wd * x_{t-1}            (L2, as torch.optim.Adam)
    m_t   = beta1 * m_{t-1} + (1 - beta1) * g_t
    v_t   = beta2 * v_{t-1} + (1 - beta2) * g_t**2
    m_hat = m_t / (1 - beta1**t)

    ASGDAdam:     H_t = v_t / (1 - beta2**t)
    ASGDAmsgrad:  u_t = max(u_{t-1}, v_t);   H_t = u_t / (1 - beta2**t)

    S_t = mean(H_t)      if switch == "mean"      (over this parameter tensor)
          median(H_t)    if switch == "median"
          threshold      if switch == "threshold"

    lr_{t,i} = lr_min  if H_{t,i} < S_t  else  lr_max
    x_t      = x_{t-1} - lr_t * m_hat / (sqrt(H_t) + eps)

With ``lr_min == lr_max`` this is exactly torch.optim.Adam (resp.
``Adam(amsgrad=True)``). Note that under the mean rule a tensor whose entries
of H are all equal (e.g. a single-element tensor) uses lr_max everywhere, since
no entry is strictly below the mean.

After every ``step()`` the optimizer exposes ``last_switch_stats``::

    {"frac_lr_max": float,          # over all stepped coordinates
     "lr_mean": float,              # mean base lr over those coordinates
     "numel": int,                  # number of stepped coordinates
     "groups": {group_index: frac_lr_max_of_that_group}}

Groups or parameters without a gradient in that step are left out; if nothing
was stepped the floats are nan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

SWITCH_RULES: tuple[str, ...] = ("mean", "median", "threshold")

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _validate_hparams(
    lr_min: float,
    lr_max: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    switch: str,
    threshold: float | None,
) -> None:
    """Reject bad settings early, since a bad lr or beta fails silently later."""
    if lr_min < 0.0:
        raise ValueError(f"lr_min must be >= 0, got {lr_min!r}")
    if lr_max < 0.0:
        raise ValueError(f"lr_max must be >= 0, got {lr_max!r}")
    if lr_min > lr_max:
        raise ValueError(f"lr_min must be <= lr_max, got lr_min={lr_min!r} > lr_max={lr_max!r}")
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"betas[{i}] must be in [0, 1), got {beta!r}")
    if eps < 0.0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    if weight_decay < 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if switch not in SWITCH_RULES:
        raise ValueError(
            f"unknown switch rule {switch!r}; valid choices: {', '.join(SWITCH_RULES)}"
        )
    if switch == "threshold":
        if threshold is None:
            raise ValueError("switch='threshold' needs a float threshold, got threshold=None")
        if not math.isfinite(float(threshold)):
            raise ValueError(f"threshold must be finite, got {threshold!r}")


class _ASGDBase(Optimizer):
    """Shared Adam-style machinery; subclasses only choose which H to switch on.

    ``track_lr_usage=True`` additionally counts, per coordinate, how many steps
    used lr_max (see :meth:`lr_max_fraction`). The counts are diagnostics only:
    they are not part of ``state_dict()`` and cost one int64 per coordinate.
    """

    _amsgrad: bool = False

    def __init__(
        self,
        params: ParamsT,
        lr_min: float = 1e-4,
        lr_max: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        switch: str = "mean",
        threshold: float | None = None,
        *,
        track_lr_usage: bool = False,
    ) -> None:
        _validate_hparams(lr_min, lr_max, tuple(betas), eps, weight_decay, switch, threshold)
        defaults = dict(
            lr_min=lr_min,
            lr_max=lr_max,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            switch=switch,
            threshold=threshold,
        )
        self.track_lr_usage = track_lr_usage
        # Keyed by the parameter tensor itself (hashed by identity).
        self.lr_max_steps: dict[torch.Tensor, torch.Tensor] = {}
        self.last_switch_stats: dict[str, Any] = {}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Validate per-group overrides too, not just the constructor defaults."""
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        _validate_hparams(
            g["lr_min"], g["lr_max"], tuple(g["betas"]), g["eps"],
            g["weight_decay"], g["switch"], g["threshold"],
        )

    def lr_max_fraction(self, param: torch.Tensor) -> torch.Tensor:
        """Per-coordinate fraction of this parameter's steps that used lr_max."""
        if param not in self.lr_max_steps:
            raise KeyError("no lr usage recorded for this parameter (track_lr_usage=False or never stepped)")
        steps = float(self.state[param]["step"])
        return self.lr_max_steps[param].to(torch.float64) / max(steps, 1.0)

    def _init_state(self, p: torch.Tensor) -> dict[str, Any]:
        state = self.state[p]
        if len(state) == 0:
            # A CPU float tensor, like torch.optim.Adam, so state dicts look alike
            # and load_state_dict leaves it uncast.
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if self._amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update; also refreshes ``last_switch_stats``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        # Counts stay on-device until the end so a GPU step syncs only once.
        group_counts: list[tuple[int, torch.Tensor, int, float, float]] = []
        for gi, group in enumerate(self.param_groups):
            beta1, beta2 = group["betas"]
            lr_min, lr_max = group["lr_min"], group["lr_max"]
            n_max_group: torch.Tensor | None = None
            numel_group = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                if torch.is_complex(p):
                    raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
                state = self._init_state(p)
                state["step"] += 1
                step = float(state["step"])

                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if self._amsgrad:
                    torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    second = state["max_exp_avg_sq"]
                else:
                    second = exp_avg_sq

                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                # True where the coordinate is cautious (lr_min). Bias correction
                # is one positive scalar per tensor, so mean/median can be taken
                # on the raw moment, and the threshold is moved to the raw scale
                # instead: avoids materialising H.
                switch = group["switch"]
                if switch == "mean":
                    use_min = second < second.mean()
                elif switch == "median":
                    use_min = second < second.median()
                else:
                    use_min = second < group["threshold"] * bias_correction2

                lr_t = torch.full_like(p, lr_max).masked_fill_(use_min, lr_min)
                denom = (second.sqrt() / math.sqrt(bias_correction2)).add_(group["eps"])
                p.addcdiv_(lr_t.mul_(exp_avg), denom, value=-1.0 / bias_correction1)

                if self.track_lr_usage:
                    if p not in self.lr_max_steps:
                        self.lr_max_steps[p] = torch.zeros_like(p, dtype=torch.int64)
                    self.lr_max_steps[p].add_(use_min.logical_not())
                n_max = p.numel() - use_min.sum()
                n_max_group = n_max if n_max_group is None else n_max_group + n_max
                numel_group += p.numel()
            if n_max_group is not None:
                group_counts.append((gi, n_max_group, numel_group, lr_min, lr_max))

        self._record_stats(group_counts)
        return loss

    def _record_stats(self, group_counts: list[tuple[int, torch.Tensor, int, float, float]]) -> None:
        if not group_counts:
            self.last_switch_stats = {
                "frac_lr_max": math.nan, "lr_mean": math.nan, "numel": 0, "groups": {},
            }
            return
        n_max_all = torch.stack([c[1].to("cpu") for c in group_counts]).tolist()
        total = sum(c[2] for c in group_counts)
        groups: dict[int, float] = {}
        lr_sum = 0.0
        n_max_total = 0
        for (gi, _, numel, lr_min, lr_max), n_max in zip(group_counts, n_max_all):
            groups[gi] = n_max / numel
            lr_sum += n_max * lr_max + (numel - n_max) * lr_min
            n_max_total += n_max
        self.last_switch_stats = {
            "frac_lr_max": n_max_total / total,
            "lr_mean": lr_sum / total,
            "numel": total,
            "groups": groups,
        }


class ASGDAdam(_ASGDBase):
    """Adam whose per-coordinate base lr is lr_min or lr_max, switched on v_hat."""

    _amsgrad = False


class ASGDAmsgrad(_ASGDBase):
    """AMSGrad whose per-coordinate base lr is lr_min or lr_max, switched on max(v)_hat."""

    _amsgrad = True
