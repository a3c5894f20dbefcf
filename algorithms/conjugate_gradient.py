"""Conjugate gradient and the flat-vector helpers TRPO's natural-gradient step needs.

TRPO solves F x = g with F the Fisher matrix (Hessian of the mean KL), which it only
ever touches through Fisher-vector products; conjugate gradient needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    max_steps: int = 15,
    residual_tol: float = 1e-10,
) -> torch.Tensor:
    """Approximate solution of A x = b for symmetric positive-definite A given as ``matvec``.

    Starts from x = 0 and stops after ``max_steps`` iterations or once the squared
    residual norm falls below ``residual_tol`` (Nocedal & Wright, Algorithm 5.2).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = torch.dot(r, r)
    for _ in range(max_steps):
        if rr <= residual_tol:
            break
        ap = matvec(p)
        alpha = rr / torch.dot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One 1-D vector from a list of tensors (parameters or their gradients)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def assign_flat(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy consecutive slices of ``flat`` into ``params`` in place (no autograd history)."""
    start = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[start : start + n].view_as(p))
            start += n
    if start != flat.numel():
        raise ValueError(f"flat vector has {flat.numel()} entries, parameters {start}")
