"""Fixed-step Euler-Maruyama for a batch of cells, seeded, with the step checked for stability.

One step: y <- y + (production - decay) dt + noise * sqrt(dt) * z, z ~ N(0, 1) per species
and cell, drawn from the caller's `np.random.Generator` (same seed, same trajectory). A
species that would go negative keeps its previous value (BoolODE's rule; concentrations
stay non-negative without biasing the drift).

Stability. Explicit Euler on dy = -lambda y is stable for lambda dt <= 2; the bound used is
`OdeModel.stiffness()` (fastest decay plus steepest Hill production slope). A step past it
is refused before integrating (`UnstableStep`, a UserInputError with the largest safe step),
and a trajectory that still leaves the finite range or exceeds STATE_LIMIT times the
maximal steady state is stopped with the same error rather than returning NaN.
"""

from __future__ import annotations

import numpy as np

from envs.errors import UserInputError, choices_error
from envs.ode.kernel import compiled_kernel
from envs.ode.model import OdeModel

EULER_STABILITY = 2.0  # lambda * dt beyond which explicit Euler diverges
STATE_LIMIT = 10.0  # a state above this many times the on steady state means divergence


class UnstableStep(UserInputError):
    """The time step makes the integration unstable."""


def check_step(model: OdeModel, dt: "float | None" = None) -> float:
    """The step, checked against the stability bound; raises UnstableStep past it."""
    dt = float(model.params.dt if dt is None else dt)
    if not (np.isfinite(dt) and dt > 0):
        raise UserInputError(f"time step dt must be > 0, got {dt!r}")
    stiff = model.stiffness()
    if stiff * dt > EULER_STABILITY:
        raise UnstableStep(
            f"time step dt={dt:g} makes the integration unstable (stiffness {stiff:.3g} x dt = {stiff * dt:.3g} > "
            f"{EULER_STABILITY:g}); use dt <= {EULER_STABILITY / stiff:.3g}"
        )
    return dt


def _limits(model: OdeModel) -> np.ndarray:
    p = model.params
    top = np.full(model.n_species, p.x_max)
    if p.proteins:
        top[model.n_vars:] = p.p_max
    return top * STATE_LIMIT


ENGINES = ("auto", "numba", "numpy")
CHUNK_ELEMENTS = 1 << 20  # normals drawn per call: bounds memory, not the stream (chunks concatenate)


def simulate(
    model: OdeModel,
    y0: np.ndarray,
    duration: float,
    rng: "np.random.Generator | None" = None,
    *,
    knockdown: "np.ndarray | None" = None,
    activation: "np.ndarray | None" = None,
    record_every: "int | None" = None,
    dt: "float | None" = None,
    engine: str = "auto",
) -> "np.ndarray | tuple[np.ndarray, np.ndarray]":
    """Integrate (B, species) states for `duration` time units; the final states, or with
    `record_every=s` also the (T, B, species) states every s steps (the start included).

    `knockdown` / `activation`: (B, vars) or (vars,) fractions in [0, 1] on each variable's
    mRNA production (`OdeModel.rates`). `rng` is needed unless the noise is off. Engines:
    `numpy` (one array step for the whole batch), `numba` (a compiled loop, much faster for a
    few cells), `auto` (numba when it imports). Both consume the same normals, in the same
    order, so they follow the same trajectory to rounding."""
    if engine not in ENGINES:
        raise choices_error("ODE engine", engine, ENGINES)
    dt = check_step(model, dt)
    sigma = model.params.sigma
    if sigma > 0 and rng is None:
        raise ValueError("a random generator is needed for a noisy simulation")
    y = np.array(np.atleast_2d(y0), dtype=np.float64)
    if y.shape[1] != model.n_species:
        raise UserInputError(f"state has {y.shape[1]} columns; this ODE model has {model.n_species} species")
    n_cells, n_vars = y.shape[0], model.n_vars
    kd = None if knockdown is None else np.broadcast_to(np.asarray(knockdown, dtype=np.float64), (n_cells, n_vars))
    act = None if activation is None else np.broadcast_to(np.asarray(activation, dtype=np.float64), (n_cells, n_vars))
    n_steps = int(round(duration / dt))
    kernel = compiled_kernel() if engine in ("auto", "numba") else None
    if engine == "numba" and kernel is None:
        raise UserInputError("ODE engine 'numba' needs numba, which does not import here; use engine: numpy")
    chunk = record_every or max(1, min(n_steps, CHUNK_ELEMENTS // max(1, y.size)))
    frames = [y.copy()] if record_every else None
    done = 0
    while done < n_steps:
        c = min(chunk, n_steps - done)
        z = rng.standard_normal((c,) + y.shape) if sigma > 0 else np.zeros((c,) + y.shape)
        if kernel is not None:
            y = _run_kernel(kernel, model, y, z, dt, kd, act, done)
        else:
            y = _run_numpy(model, y, z, dt, kd, act, done)
        done += c
        if record_every:
            frames.append(y.copy())
    if record_every:
        return y, np.stack(frames)
    return y


def _diverged(step: int, dt: float) -> UnstableStep:
    return UnstableStep(f"integration diverged at step {step + 1} (t={(step + 1) * dt:g}) with dt={dt:g}; use a smaller time step")


def _run_numpy(model: OdeModel, y, z, dt, kd, act, offset: int) -> np.ndarray:
    sigma = model.params.sigma
    limit = _limits(model)
    sqrt_dt = np.sqrt(dt)
    boolode = model.params.noise == "boolode"
    for t in range(z.shape[0]):
        prod, decay = model.rates(y, kd, act)
        step = (prod - decay) * dt
        if sigma > 0:
            amp = np.sqrt(np.abs(y)) if boolode else np.sqrt(prod + decay)
            step += sigma * sqrt_dt * amp * z[t]
        new = y + step
        y = np.where(new < 0, y, new)
        if not (y <= limit).all():  # also NaN
            raise _diverged(offset + t, dt)
    return y


def _run_kernel(kernel, model: OdeModel, y, z, dt, kd, act, offset: int) -> np.ndarray:
    p, net = model.params, model.network
    n_cells = y.shape[0]
    zeros = np.zeros((n_cells, model.n_vars))
    width = int(net.n_inputs.max()) if net.n_genes else 0
    y = np.ascontiguousarray(y)
    bad = kernel(
        y, np.ascontiguousarray(z), float(dt), float(p.sigma), p.noise == "boolode", bool(p.proteins), model.n_vars,
        float(p.transcription), float(p.mrna_decay), float(p.translation), float(p.protein_decay), float(p.hill),
        float(model.regulator_threshold), net.inputs, net.n_inputs, net.tables.astype(np.float64),
        zeros if kd is None else np.array(kd), zeros if act is None else np.array(act),  # writable: one compiled signature
        _limits(model), np.empty(1 << width), np.empty_like(y),
    )
    if bad >= 0:
        raise _diverged(offset + bad, dt)
    return y


def steady_state(model: OdeModel, y0: np.ndarray, *, duration: float = 20.0, tol: float = 1e-3, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free states after `duration` and whether each cell has converged (max |dy/dt| < tol)."""
    quiet = OdeModel(model.network, model.params.without_noise(), model.groups)
    y = simulate(quiet, y0, duration, **kwargs)
    prod, decay = quiet.rates(y, kwargs.get("knockdown"), kwargs.get("activation"))
    return y, np.abs(prod - decay).max(axis=1) < tol
