"""The seed's expression-level metrics: direction of change per gene, and profile agreement.

Given a start profile, the profile reached and the target (a later cell's profile), each
gene's direction of change is up, down or flat (|change| below `flat` of the on level):
direction accuracy over genes, macro-F1 over the three classes (those present in the target
or the prediction), AUPRC (average precision of the reached change as a score for the genes
that truly go up, and of minus it for those that go down; their mean); and for the profiles,
MSE, R2 of the target by the reached profile, and Pearson's r.
"""

from __future__ import annotations

import numpy as np

DIRECTIONS = (-1, 0, 1)
FLAT = 0.1  # a change below 10% of the on level counts as no change


def directions(change: np.ndarray, scale: float = 1.0, flat: float = FLAT) -> np.ndarray:
    return np.where(np.abs(change) < flat * scale, 0, np.sign(change)).astype(np.int64)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (sklearn's definition); NaN
    without positives."""
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s, y = np.asarray(scores)[order], labels[order]
    # one threshold per distinct score
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def macro_f1(true: np.ndarray, pred: np.ndarray) -> float:
    scores = []
    for c in DIRECTIONS:
        t, p = true == c, pred == c
        if not (t.any() or p.any()):
            continue
        tp = np.sum(t & p)
        denom = t.sum() + p.sum()
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores)) if scores else float("nan")


def trajectory_metrics(start: np.ndarray, reached: np.ndarray, target: np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """Metrics of one cell (1-D profiles over genes, in expression units with on level `scale`)."""
    start, reached, target = (np.asarray(a, dtype=np.float64).ravel() for a in (start, reached, target))
    true_dir = directions(target - start, scale)
    pred_dir = directions(reached - start, scale)
    change = reached - start
    aps = [average_precision(true_dir == 1, change), average_precision(true_dir == -1, -change)]
    aps = [a for a in aps if np.isfinite(a)]
    resid = np.sum((target - reached) ** 2)
    total = np.sum((target - target.mean()) ** 2)
    if reached.std() > 0 and target.std() > 0:
        pearson = float(np.corrcoef(reached, target)[0, 1])
    else:
        pearson = float("nan")
    return {
        "direction_accuracy": float(np.mean(true_dir == pred_dir)),
        "macro_f1": macro_f1(true_dir, pred_dir),
        "auprc": float(np.mean(aps)) if aps else float("nan"),
        "mse": float(resid / len(target)),
        "r2": float(1 - resid / total) if total > 0 else float("nan"),
        "pearson": pearson,
    }


METRIC_NAMES = ("direction_accuracy", "macro_f1", "auprc", "mse", "r2", "pearson")
