"""Binarize genes (2-means or a threshold) and find each gene's transition point along pseudotime."""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from envs.errors import UserInputError, choices_error
from envs.inference.preprocess import dense

BINARIZE_METHODS = ("kmeans", "threshold")


def two_means_split(values: np.ndarray) -> tuple[float, float, float, float, float]:
    """Optimal 1-D 2-means split (exact, by prefix sums).

    Returns (threshold, low mean, high mean, low share, low std); the threshold is the
    midpoint between the two groups.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n < 2 or v[-1] - v[0] <= 1e-12:
        level = float(v[-1]) if n else 0.0
        return np.inf, level, level, 1.0, 0.0
    csum, csq = np.cumsum(v), np.cumsum(v * v)
    k = np.arange(1, n)  # size of the low group
    low_sse = csq[:-1] - csum[:-1] ** 2 / k
    high_sum, high_sq = csum[-1] - csum[:-1], csq[-1] - csq[:-1]
    high_sse = high_sq - high_sum**2 / (n - k)
    sse = low_sse + high_sse
    sse[v[1:] == v[:-1]] = np.inf  # equal values cannot be split apart
    split = int(np.argmin(sse)) + 1
    return (
        0.5 * (v[split - 1] + v[split]),
        float(csum[split - 1] / split),
        float(high_sum[split - 1] / (n - split)),
        split / n,
        float(np.sqrt(max(low_sse[split - 1], 0.0) / split)),
    )


def kmeans_thresholds(x: np.ndarray, dropout: float = 0.1) -> np.ndarray:
    """Per-gene 2-means thresholds, except for genes whose two groups are not 'off' and 'on'.

    A 2-means split always finds two groups, which would invent switches. The noise
    level is the typical spread of the genes' lower groups. A gene whose groups lie
    within 4 noise levels of each other has one group only: on everywhere when its
    median is above 4 noise levels, else off everywhere. A gene whose lower group is at
    least half its upper group (expressed in both), or holds no more cells than dropouts
    would empty (1.5 x `dropout`), is on everywhere.
    """
    splits = [two_means_split(x[:, j]) for j in range(x.shape[1])]
    noise = float(np.median([s[4] for s in splits]))
    cut = np.empty(x.shape[1])
    for j, (threshold, low, high, low_share, _) in enumerate(splits):
        if not np.isfinite(threshold) or high - low < 4 * noise:
            on = np.median(x[:, j]) > max(4 * noise, 0.0) and np.median(x[:, j]) > 0
            cut[j] = -np.inf if on else np.inf
        elif low >= 0.5 * high or low_share <= 1.5 * dropout:
            cut[j] = -np.inf
        else:
            cut[j] = threshold
    return cut


def binarize(
    adata,
    method: str = "kmeans",
    threshold: "float | dict[str, float] | None" = None,
    layer: str | None = None,
    dropout: float = 0.1,
):
    """Per-gene on/off calls in `layers['binary']` (uint8) and thresholds in `var['binary_threshold']`.

    `kmeans` splits each gene into two groups (IQCELL's choice; see `kmeans_thresholds`
    for genes without an off and an on group, with `dropout` the expected share of
    dropouts); `threshold` uses one value for all genes or a
    {gene: value} dict. `layer` picks the values to binarize (e.g. 'smoothed'); X otherwise.
    """
    if method not in BINARIZE_METHODS:
        raise choices_error("binarize method", method, BINARIZE_METHODS)
    adata = adata.copy()
    x = adata.layers[layer] if layer else adata.X
    x = dense(x)
    genes = [str(g) for g in adata.var_names]
    if method == "kmeans":
        cut = kmeans_thresholds(x, dropout)
    elif threshold is None:
        raise UserInputError("binarize method 'threshold' needs threshold=<value or {gene: value}>")
    elif isinstance(threshold, dict):
        missing = [g for g in genes if g not in threshold]
        if missing:
            raise choices_error("gene without a threshold", missing[0], list(threshold))
        cut = np.array([float(threshold[g]) for g in genes])
    else:
        cut = np.full(len(genes), float(threshold))
    adata.layers["binary"] = (x > cut[None, :]).astype(np.uint8)
    adata.var["binary_threshold"] = cut
    return adata


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average (the window shrinks at the ends)."""
    window = max(1, min(int(window), len(values)))
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    half = window // 2
    idx = np.arange(len(values))
    lo = np.clip(idx - half, 0, len(values))
    hi = np.clip(idx - half + window, 0, len(values))
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)


def crossing_times(binary: np.ndarray, pseudotime: np.ndarray, window: int) -> tuple[float, float]:
    """First and last pseudotime at which the smoothed binary signal crosses 0.5; inf if never."""
    order = np.argsort(pseudotime, kind="stable")
    side = running_mean(binary[order].astype(np.float64), window) >= 0.5
    changes = np.nonzero(side[1:] != side[:-1])[0] + 1
    if not len(changes):
        return np.inf, np.inf
    times = pseudotime[order]
    return float(times[changes[0]]), float(times[changes[-1]])


def transition_points(
    binary: np.ndarray,
    pseudotime: np.ndarray,
    lineages: "Sequence[np.ndarray]",
    window_share: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """(lineages, genes) first and last pseudotime at which each gene switches per lineage (inf: never).

    A branching process mixes lineages at equal pseudotime, so the binary signal is
    smoothed within each lineage (a boolean cell mask, e.g. one fate's cells plus the
    shared non-fate cells) and its crossings of 0.5 are read there. A gene that dips
    and recovers (on, off, on again) has its first and last switch apart.
    """
    first = np.full((len(lineages), binary.shape[1]), np.inf)
    last = first.copy()
    for l, mask in enumerate(lineages):
        if mask.sum() < 3:
            continue
        window = max(3, int(window_share * mask.sum()))
        for g in range(binary.shape[1]):
            first[l, g], last[l, g] = crossing_times(binary[mask, g], pseudotime[mask], window)
    return first, last


def regulation_allowed(first: np.ndarray, last: np.ndarray, slack: float = 0.0) -> np.ndarray:
    """allowed[r, g]: regulator r may act on gene g (IQCELL's ordering by transition points).

    r may act on g when, in some lineage where g switches, r first switches no later
    than g's last switch (within `slack`), or r does not switch there at all (present,
    or absent, throughout, it may gate g's switch). A gene that never switches may be
    regulated by any gene.
    """
    n = first.shape[1]
    allowed = np.zeros((n, n), dtype=bool)
    for g in range(n):
        lineages = np.isfinite(last[:, g])
        if not lineages.any():
            allowed[:, g] = True
            continue
        sub = first[lineages]
        ok = ~np.isfinite(sub) | (sub <= last[lineages][:, [g]] + slack)
        allowed[:, g] = ok.any(axis=0)
    return allowed


def undo_dropouts(binary: np.ndarray, dropout: float = 0.1, max_missing: int = 2, n_iter: int = 200) -> np.ndarray:
    """Reassign each cell to its most probable true state under a dropout model, fitted by EM.

    Dropouts and weak expression only turn genes off, so a cell seen in state o may come
    from any observed state s holding o's genes plus up to `max_missing` more, each lost
    with probability `dropout`: P(o | s) = dropout^|s - o| (1 - dropout)^|o|. EM fits the
    share of each true state; a state seen about as often as the dropout shadow of a
    common state would be gets no share, and its cells move to the common state. (Fitting
    the rate too is degenerate: every observed state may explain itself.)
    """
    binary = np.asarray(binary, dtype=np.uint8)
    if dropout <= 0:
        return binary.copy()
    if not 0 < dropout < 1:
        raise UserInputError(f"dropout={dropout}; valid choices: 0 <= dropout < 1")
    states, inverse, counts = np.unique(binary, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    index = {st.tobytes(): i for i, st in enumerate(states)}
    # Candidate (true state s, observed state o) pairs: s = o plus up to max_missing genes.
    pair_s, pair_o, pair_missing = [], [], []
    for o, st in enumerate(states):
        off = np.nonzero(st == 0)[0]
        for k in range(max_missing + 1):
            for genes in itertools.combinations(off, k):
                fuller = st.copy()
                fuller[list(genes)] = 1
                s_idx = index.get(fuller.tobytes())
                if s_idx is not None:
                    pair_s.append(s_idx)
                    pair_o.append(o)
                    pair_missing.append(k)
    pair_s, pair_o = np.array(pair_s), np.array(pair_o)
    size = states.sum(axis=1).astype(np.float64)
    log_like = np.array(pair_missing) * np.log(dropout) + size[pair_o] * np.log1p(-dropout)
    share = counts / counts.sum()
    for _ in range(n_iter):
        log_post = np.log(np.maximum(share[pair_s], 1e-300)) + log_like
        top = np.full(len(states), -np.inf)
        np.maximum.at(top, pair_o, log_post)
        post = np.exp(log_post - top[pair_o])
        post /= np.bincount(pair_o, post, minlength=len(states))[pair_o]
        new = np.bincount(pair_s, post * counts[pair_o], minlength=len(states)) / counts.sum()
        converged = np.abs(new - share).max() < 1e-10
        share = new
        if converged:
            break
    score = np.where(share[pair_s] > 0, np.log(np.maximum(share[pair_s], 1e-300)) + log_like, -np.inf)
    best = np.arange(len(states))
    best_score = np.full(len(states), -np.inf)
    for s_idx, o, value in zip(pair_s, pair_o, score):
        if value > best_score[o]:
            best_score[o], best[o] = value, s_idx
    return states[best[inverse]]
