"""Statistics for the leaderboard: IQM, mean, stratified-bootstrap intervals, paired differences.

Definitions follow rliable (Agarwal et al., 2021, "Deep RL at the Edge of the Statistical
Precipice"): IQM is the 25% trimmed mean over runs; intervals are 95% percentile intervals of a
stratified bootstrap (runs resampled with replacement within each task, here: within each grid
cell); the probability of improvement is P(X > Y) from the Mann-Whitney U statistic, averaged
over tasks. rliable draws its bootstrap indices from NumPy's *global* RNG (its ``random_state``
argument is ignored by the arch version it runs on), so every bootstrap here runs inside
:func:`seeded_global_rng` to make reports reproducible without disturbing the caller's RNG.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from rliable import library as rly
from rliable import metrics

DEFAULT_REPS = 2000
DEFAULT_SEED = 0
CONFIDENCE = 0.95


DASH = "–"  # a value that does not exist (no interval, no optimum)


def with_ci(point: float, low: float, high: float) -> str:
    """An estimate as the tables write it: 'point [low, high]', the point alone without an
    interval, DASH without a point."""
    if not np.isfinite(point):
        return DASH
    if np.isfinite(low) and np.isfinite(high):
        return f"{point:.3f} [{low:.3f}, {high:.3f}]"
    return f"{point:.3f}"

@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval (NaN bounds when it cannot be estimated)."""

    point: float
    low: float
    high: float

    @property
    def known(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high))


@dataclass(frozen=True)
class PairedDifference:
    """Variant minus baseline over matching cells, with interval and probability of improvement."""

    difference: float
    low: float
    high: float
    prob_improvement: float
    n_cells: int
    n_variant_runs: int
    n_baseline_runs: int


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed NumPy's global RNG for the duration of a block, then restore the caller's state."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean (25% trimmed mean) of the finite scores, NaN when there are none."""
    x = _finite(scores)
    return float(metrics.aggregate_iqm(x.reshape(-1, 1))) if x.size else float("nan")


def mean(scores: Sequence[float] | np.ndarray) -> float:
    """Mean of the finite scores, NaN when there are none."""
    x = _finite(scores)
    return float(np.mean(x)) if x.size else float("nan")


def _finite(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(scores, dtype=float).ravel()
    return x[np.isfinite(x)]


def _bootstrap(score_dict: dict, func: Callable, reps: int, seed: int) -> tuple[dict, dict]:
    with seeded_global_rng(seed), warnings.catch_warnings():
        # arch warns about degenerate resamples (all runs equal); the interval is still right.
        warnings.simplefilter("ignore")
        return rly.get_interval_estimates(
            score_dict, func, reps=reps, confidence_interval_size=CONFIDENCE
        )


def interval(
    scores: Sequence[float] | np.ndarray,
    statistic: str = "iqm",
    reps: int = DEFAULT_REPS,
    seed: int = DEFAULT_SEED,
) -> Estimate:
    """``statistic`` ("iqm" or "mean") of one cell's per-seed scores with its bootstrap interval.

    With fewer than two finite scores there is no spread to resample: the bounds are NaN, so a
    single provisional score never looks more certain than it is.
    """
    stat = {"iqm": metrics.aggregate_iqm, "mean": metrics.aggregate_mean}.get(statistic)
    if stat is None:
        raise ValueError(f"unknown statistic {statistic!r}; valid choices: iqm, mean")
    x = _finite(scores)
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    point = float(np.squeeze(stat(x.reshape(-1, 1))))
    if x.size < 2:
        return Estimate(point, float("nan"), float("nan"))
    _, ci = _bootstrap({"x": x.reshape(-1, 1)}, lambda s: np.atleast_1d(stat(s)).ravel(), reps, seed)
    return Estimate(point, float(ci["x"][0, 0]), float(ci["x"][1, 0]))


def column_means(
    runs: np.ndarray, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of each column of a (runs x K) matrix with its 95% bootstrap interval, in one bootstrap.

    Each column is a stratum (rliable's StratifiedBootstrap resamples runs within it), so each
    column's interval is that of :func:`interval` with "mean"; NaN bounds for a single run.
    """
    runs = np.asarray(runs, dtype=float)
    m = runs.mean(axis=0)
    if runs.shape[0] < 2:
        nan = np.full_like(m, np.nan)
        return m, nan, nan.copy()
    _, ci = _bootstrap({"x": runs}, lambda s: np.mean(s, axis=0), reps, seed)
    return m, ci["x"][0], ci["x"][1]


def curve_band(
    runs: np.ndarray, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean learning curve over runs (rows) with a pointwise 95% bootstrap band.

    ``runs`` is (n_runs, n_points); returns (mean, low, high), the band NaN for a single run.
    """
    runs = np.asarray(runs, dtype=float)
    m = np.nanmean(runs, axis=0)
    if runs.shape[0] < 2:
        nan = np.full_like(m, np.nan)
        return m, nan, nan.copy()
    _, ci = _bootstrap(
        {"x": runs[:, None, :]}, lambda s: np.nanmean(s, axis=(0, 1)), reps, seed
    )
    return m, ci["x"][0], ci["x"][1]


def performance_profile(
    score_dict: dict[str, np.ndarray], taus: np.ndarray, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's score-distribution performance profile of each method with its 95% band.

    ``score_dict`` maps a method to a (runs x tasks) matrix; the profile at tau is the share of
    runs (over all tasks) scoring above tau, the band from a bootstrap of runs within each task.
    Returns (profiles, bands), each band (2, len(taus)).
    """
    with seeded_global_rng(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rly.create_performance_profile(score_dict, taus, reps=reps, confidence_interval_size=CONFIDENCE)


def probability_of_improvement(
    variant: Sequence[Sequence[float]], baseline: Sequence[Sequence[float]]
) -> float:
    """P(variant > baseline), rliable's definition, averaged over matching cells.

    Each argument is a list (one entry per matching cell) of that cell's per-seed scores; cells
    may have different seed counts, so rliable's function is applied cell by cell.
    """
    probs = []
    for x, y in zip(variant, baseline, strict=True):
        x, y = _finite(x), _finite(y)
        if x.size and y.size:
            probs.append(metrics.probability_of_improvement(x[:, None], y[:, None]))
    return float(np.mean(probs)) if probs else float("nan")


def probability_of_improvement_interval(
    variant: Sequence[Sequence[float]],
    baseline: Sequence[Sequence[float]],
    reps: int = DEFAULT_REPS,
    seed: int = DEFAULT_SEED,
) -> Estimate:
    """P(variant > baseline) over matching cells with a 95% stratified-bootstrap interval.

    The point is :func:`probability_of_improvement` (rliable's Mann-Whitney definition); the
    interval resamples each side's seeds within each cell independently (rliable's
    StratifiedIndependentBootstrap scheme) and recomputes the same statistic, vectorized over
    resamples: U / (n_x n_y) is the share of (x, y) pairs with x > y, ties counting one half.
    """
    pairs = [(_finite(x), _finite(y)) for x, y in zip(variant, baseline, strict=True)]
    pairs = [(x, y) for x, y in pairs if x.size and y.size]
    nan = float("nan")
    if not pairs:
        return Estimate(nan, nan, nan)
    point = probability_of_improvement([p[0] for p in pairs], [p[1] for p in pairs])
    if all(x.size < 2 and y.size < 2 for x, y in pairs):
        return Estimate(point, nan, nan)
    rng = np.random.default_rng(seed)
    total = np.zeros(reps)
    for x, y in pairs:
        bx = x[rng.integers(0, x.size, size=(reps, x.size))][:, :, None]
        by = y[rng.integers(0, y.size, size=(reps, y.size))][:, None, :]
        total += ((bx > by).mean(axis=(1, 2)) + 0.5 * (bx == by).mean(axis=(1, 2)))
    total /= len(pairs)
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.percentile(total, [100 * alpha, 100 * (1 - alpha)])
    return Estimate(point, float(low), float(high))


def paired_difference(
    variant: Sequence[Sequence[float]],
    baseline: Sequence[Sequence[float]],
    reps: int = DEFAULT_REPS,
    seed: int = DEFAULT_SEED,
) -> PairedDifference:
    """Mean over matching cells of (mean variant score - mean baseline score), with interval.

    Cells are the strata: each side's seeds are resampled with replacement within each cell,
    independently for variant and baseline (rliable's StratifiedIndependentBootstrap). When
    every cell has the same seed count on a side, rliable does the resampling; otherwise (a
    failed seed makes the data ragged, which rliable's matrices cannot hold) the same scheme runs
    here directly.
    """
    pairs = [
        (_finite(x), _finite(y)) for x, y in zip(variant, baseline, strict=True)
    ]
    pairs = [(x, y) for x, y in pairs if x.size and y.size]
    nan = float("nan")
    if not pairs:
        return PairedDifference(nan, nan, nan, nan, 0, 0, 0)
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    point = float(np.mean([x.mean() - y.mean() for x, y in pairs]))
    prob = probability_of_improvement(xs, ys)
    n_x, n_y = sum(x.size for x in xs), sum(y.size for y in ys)
    if all(x.size < 2 for x in xs) and all(y.size < 2 for y in ys):
        return PairedDifference(point, nan, nan, prob, len(pairs), n_x, n_y)
    if len({x.size for x in xs}) == 1 and len({y.size for y in ys}) == 1:
        x_mat, y_mat = np.stack(xs, axis=1), np.stack(ys, axis=1)
        _, ci = _bootstrap(
            {"d": [x_mat, y_mat]},
            lambda a, b: np.array([np.mean(a.mean(axis=0) - b.mean(axis=0))]),
            reps,
            seed,
        )
        low, high = float(ci["d"][0, 0]), float(ci["d"][1, 0])
    else:
        low, high = _ragged_bootstrap(xs, ys, reps, seed)
    return PairedDifference(point, low, high, prob, len(pairs), n_x, n_y)


def _ragged_bootstrap(
    xs: list[np.ndarray], ys: list[np.ndarray], reps: int, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    diffs = np.zeros(reps)
    for x, y in zip(xs, ys):
        bx = x[rng.integers(0, x.size, size=(reps, x.size))].mean(axis=1)
        by = y[rng.integers(0, y.size, size=(reps, y.size))].mean(axis=1)
        diffs += bx - by
    diffs /= len(xs)
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.percentile(diffs, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def intervals_overlap(a_low: float, a_high: float, b_low: float, b_high: float) -> bool | None:
    """Whether two closed intervals overlap; None when either interval is unknown (NaN)."""
    if not all(np.isfinite(v) for v in (a_low, a_high, b_low, b_high)):
        return None
    return bool(a_low <= b_high and b_low <= a_high)
