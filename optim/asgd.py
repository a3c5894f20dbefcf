"""Adam / AMSGrad that switch, every step, between two base learning rates.

The default rules switch per coordinate; two more switch the whole model at
once, as the seed author's notebooks do (see "Whole-model rules" below).

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
``Adam(amsgrad=True)``), for every rule except ``paper``, which does not
bias-correct. Note that under the mean rule a tensor whose entries
of H are all equal (e.g. a single-element tensor) uses lr_max everywhere, since
no entry is strictly below the mean.

Whole-model rules (the seed author's public code)
--------------------------------------------------

Two further rules reproduce the author's notebooks. Both take one decision per
``step()`` for every parameter the optimizer steps (all groups; each group then
uses its own lr_min / lr_max), so every group must use the same one of them.
Each coordinate or tensor casts a "vote" for lr_min or lr_max; the whole model
uses lr_min exactly when ``votes_lr_max < votes_lr_min``, else lr_max.

``switch="global_count"`` (earlier notebook, ``MultiModal_Nonconvex_Optimizer
(RNA-ATAC-CITE modalities).ipynb``: ``dv = v - state['v_prev']``,
``f_min = (dv > 0)``, ``f_max = (dv <= 0)``,
``use_lr_min = (total_nonzero_fmax < total_nonzero_fmin)``)::

    grew_{t,i} = v_{t,i} > v_{t-1,i}       (raw, not bias-corrected v; v_0 = 0;
                                             compared as stored floats, so a change
                                             below float resolution is "not grew")
    lr_t = lr_min for the whole model if #grew > #not grew, else lr_max

Both Adam and AMSGrad count on v (exp_avg_sq), not max(v), as that code does.
Since ``v_t - v_{t-1} = (1 - beta2) (g_t**2 - v_{t-1})``, a coordinate "grew"
when its squared gradient exceeds its running second moment; on step 1 every
coordinate with a nonzero gradient grew. The update itself is this module's
bias-corrected one above (that notebook bias-corrected m only, not v).
Votes: coordinates that grew (lr_min) and that did not (lr_max).

``switch="paper"`` (the published notebook, ``MultiModal_Nonconvex_Optimizer
(RNA-ATAC-CITE modalities)-updated.ipynb``), exactly as written there::

    m_t = beta1 m + (1 - beta1) g;   v_t = beta2 v + (1 - beta2) g**2
    f_min = (sign(mean(|v_t|) - mean(v_t)) + 1) / 2      (one scalar per tensor)
    f_max = (sign(mean(v_t) - mean(|v_t|)) + 1) / 2
    votes_lr_min += (f_min != 0);   votes_lr_max += (f_max != 0)
    x_t = x_{t-1} - lr_t * m_t / (sqrt(D_t) + eps)       NO bias correction
    D_t = v_t (ASGDAdam) or max(D_{t-1}, v_t) (ASGDAmsgrad; the vote still uses v_t)

Consequences, which follow from the code rather than being special-cased here:
v >= 0, so ``|v| == v`` bit for bit and both means are the same float; sign(0)
= 0 gives f_min = f_max = 1/2, every tensor votes once each way, the votes tie
and **lr_max is used on every step** (lr_min never matters). Without bias
correction the first step is ``lr_max * 0.1 g / (sqrt(0.001) |g| + eps)``, about
3.16 lr_max per coordinate with the default betas, shrinking to lr_max over a
few thousand steps. ``weight_decay`` (default 0, absent in the notebook) is
still added to the gradient as above.

After every ``step()`` the optimizer exposes ``last_switch_stats``::

    {"frac_lr_max": float,          # over all stepped coordinates
     "lr_mean": float,              # mean base lr over those coordinates
     "numel": int,                  # number of stepped coordinates
     "groups": {group_index: frac_lr_max_of_that_group}}

Groups or parameters without a gradient in that step are left out; if nothing
was stepped the floats are nan. The whole-model rules add ``votes_lr_min`` and
``votes_lr_max`` (ints, as defined above); their frac_lr_max is 0.0 or 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

# Rules that decide once per step for the whole model (see the module docstring).
GLOBAL_SWITCH_RULES: tuple[str, ...] = ("global_count", "paper")
SWITCH_RULES: tuple[str, ...] = ("mean", "median", "threshold") + GLOBAL_SWITCH_RULES

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
        rules = {group["switch"] for group in self.param_groups}
        if len(rules) > 1 and rules & set(GLOBAL_SWITCH_RULES):
            # One decision covers every group, so per-group rules cannot mix with it.
            raise ValueError(
                f"switch rules {sorted(rules)} mixed across param groups; "
                f"{' and '.join(GLOBAL_SWITCH_RULES)} decide for the whole model, so every group must use the same one"
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
        if self.param_groups and self.param_groups[0]["switch"] in GLOBAL_SWITCH_RULES:
            self._step_whole_model(self.param_groups[0]["switch"])
            return loss

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
                step, exp_avg, _, second = self._update_moments(group, p)

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

    def _update_moments(self, group: dict, p: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Adam's moment update of one parameter: (step, m, v, the second moment the rule uses:
        v, or its running maximum for AMSGrad)."""
        beta1, beta2 = group["betas"]
        grad = p.grad
        if grad.is_sparse:
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        if torch.is_complex(p):
            raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
        state = self._init_state(p)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if self._amsgrad:
            torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            return float(state["step"]), exp_avg, exp_avg_sq, state["max_exp_avg_sq"]
        return float(state["step"]), exp_avg, exp_avg_sq, exp_avg_sq

    def _step_whole_model(self, rule: str) -> None:
        """global_count / paper: update the moments of every parameter, count the
        votes, then step all of them with the one lr the votes chose."""
        pending: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, float, float]] = []
        votes_min: torch.Tensor | int = 0
        votes_max: torch.Tensor | int = 0
        for gi, group in enumerate(self.param_groups):
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                before = self.state[p].get("exp_avg_sq")  # None before the first step (v starts at 0)
                previous = (before.clone() if before is not None else torch.zeros_like(p)) if rule == "global_count" else None
                step, exp_avg, exp_avg_sq, second = self._update_moments(group, p)
                if rule == "global_count":
                    grew = (exp_avg_sq > previous).sum()
                    votes_min = votes_min + grew
                    votes_max = votes_max + (p.numel() - grew)
                else:
                    # The published code, term for term (see the module docstring).
                    mean_abs, mean = exp_avg_sq.abs().mean(), exp_avg_sq.mean()
                    f_min = ((mean_abs - mean).sign() + 1) / 2
                    f_max = ((mean - mean_abs).sign() + 1) / 2
                    votes_min = votes_min + (f_min != 0).sum()
                    votes_max = votes_max + (f_max != 0).sum()
                pending.append((gi, p, exp_avg, second, 1 - beta1**step, 1 - beta2**step))

        if not pending:
            self._record_stats([])
            self.last_switch_stats.update(votes_lr_min=0, votes_lr_max=0)
            return
        votes_min, votes_max = int(votes_min), int(votes_max)
        use_min = votes_max < votes_min
        group_counts: dict[int, list] = {}
        for gi, p, exp_avg, second, bias_correction1, bias_correction2 in pending:
            group = self.param_groups[gi]
            lr = group["lr_min"] if use_min else group["lr_max"]
            if rule == "paper":
                p.add_(exp_avg / second.sqrt().add(group["eps"]), alpha=-lr)
            else:
                denom = (second.sqrt() / math.sqrt(bias_correction2)).add_(group["eps"])
                p.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
            if self.track_lr_usage:
                if p not in self.lr_max_steps:
                    self.lr_max_steps[p] = torch.zeros_like(p, dtype=torch.int64)
                if not use_min:
                    self.lr_max_steps[p].add_(1)
            counts = group_counts.setdefault(gi, [gi, 0, 0, group["lr_min"], group["lr_max"]])
            counts[1] += 0 if use_min else p.numel()
            counts[2] += p.numel()
        self._record_stats([(c[0], torch.tensor(c[1]), c[2], c[3], c[4]) for c in group_counts.values()])
        self.last_switch_stats["votes_lr_min"] = votes_min
        self.last_switch_stats["votes_lr_max"] = votes_max

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
