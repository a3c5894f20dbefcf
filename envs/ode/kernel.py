"""The Euler-Maruyama loop compiled with numba: the same steps as the numpy engine, per cell.

Plain Python over arrays so numba can compile it (cached on disk); `envs.ode.integrate`
calls it with the same pre-drawn normals as the numpy engine, so both engines follow the
same trajectory (to rounding). Returns -1, or the step at which the state diverged.
"""

from __future__ import annotations

import math

import numpy as np


def euler_kernel(y, z, dt, sigma, boolode, proteins, n_vars, m, lx, r, lp, hill, K,
                 inputs, n_inputs, tables, kd, act, limit, scratch, new):
    n_steps, n_cells, n_species = z.shape
    sq = math.sqrt(dt)
    a = np.empty(n_vars)
    for t in range(n_steps):
        for b in range(n_cells):
            for v in range(n_vars):
                reg = y[b, n_vars + v] if proteins else y[b, v]
                if reg < 0.0:
                    reg = 0.0
                h = (reg / K) ** hill
                a[v] = h / (1.0 + h)
            for g in range(n_vars):
                k = n_inputs[g]
                for c in range(1 << k):
                    scratch[c] = tables[g, c]
                for j in range(k - 1, -1, -1):
                    half = 1 << j
                    aj = a[inputs[g, j]]
                    for c in range(half):
                        scratch[c] = scratch[c] + (scratch[c + half] - scratch[c]) * aj
                f = scratch[0] * (1.0 - kd[b, g])
                f = f + act[b, g] * (1.0 - f)
                x = y[b, g]
                prod = m * f
                dec = lx * x
                step = (prod - dec) * dt
                if sigma > 0.0:
                    amp = math.sqrt(abs(x)) if boolode else math.sqrt(prod + dec)
                    step += sigma * sq * amp * z[t, b, g]
                val = x + step
                new[b, g] = x if val < 0.0 else val
                if proteins:
                    p = y[b, n_vars + g]
                    prod = r * x
                    dec = lp * p
                    step = (prod - dec) * dt
                    if sigma > 0.0:
                        amp = math.sqrt(abs(p)) if boolode else math.sqrt(prod + dec)
                        step += sigma * sq * amp * z[t, b, n_vars + g]
                    val = p + step
                    new[b, n_vars + g] = p if val < 0.0 else val
            for s in range(n_species):
                val = new[b, s]
                if not (val <= limit[s]):  # also catches NaN
                    return t
                y[b, s] = val
    return -1


_COMPILED = False  # False: not tried yet; None: numba unavailable


def compiled_kernel():
    """The kernel compiled with numba, or None where numba does not import."""
    global _COMPILED
    if _COMPILED is False:
        try:
            import numba

            _COMPILED = numba.njit(cache=True, nogil=True)(euler_kernel)
        except Exception:  # pragma: no cover - numba comes with scanpy
            _COMPILED = None
    return _COMPILED
