"""Greedy evaluation of a trained module on fresh episodes (Boolean or ODE worlds), run in lockstep.

All episodes advance together: one batched forward pass per step for every
episode still running, so evaluating 100 episodes costs about as many forward
passes as one episode has steps. On the predict task the policy's softmax over
fates is kept at every stage, so per-stage accuracy, macro-F1 and AUPRC of the
fate prediction are scored from the same episodes (`predict_metrics`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from envs.cell_fate_env import CellFateEnv
from envs.ode.metrics import trajectory_metrics


def masked_logits(module: Any, observations: list[dict[str, np.ndarray]]) -> np.ndarray:
    """The module's (masked) action logits for a list of observations, (n, n_actions)."""
    device = next(module.parameters()).device
    obs = {
        key: torch.as_tensor(np.stack([o[key] for o in observations]), device=device)
        for key in observations[0]
    }
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    return logits.float().cpu().numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in y_true or y_pred
    (scikit-learn's f1_score(average="macro") with its default labels)."""
    labels = np.union1d(y_true, y_pred)
    f1 = []
    for c in labels:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        f1.append(2.0 * tp / (2.0 * tp + fp + fn))
    return float(np.mean(f1))


def average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: sum over distinct score
    thresholds (highest first) of (recall gain) x precision; NaN without a positive."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=float), kind="mergesort")
    s, p = np.asarray(score, dtype=float)[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # ties share one threshold
    tp = np.cumsum(p)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def prediction_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of the argmax, and macro AUPRC (one-vs-rest average precision,
    averaged over the fates that occur in y_true) for one stage's predictions."""
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(axis=-1)
    aps = [average_precision(y_true == c, probs[:, c]) for c in np.unique(y_true)]
    return {"accuracy": float(np.mean(y_pred == y_true)), "macro_f1": macro_f1(y_true, y_pred),
            "auprc": float(np.mean(aps))}


def _predict_metrics(fates: list[int], probs: list[list[np.ndarray]], labels: tuple[str, ...]) -> dict[str, Any]:
    """Per stage (0 = before the cell developed) the fate-prediction metrics of all episodes."""
    y_true = np.asarray(fates)
    stages = []
    for s in range(len(probs[0])):
        p = np.stack([episode[s] for episode in probs])
        stages.append({"stage": s, **prediction_metrics(y_true, p)})
    seen = sorted(set(fates))
    return {"n_episodes": len(fates), "fates": [labels[i] for i in seen],
            "fate_counts": [int(np.sum(y_true == i)) for i in seen], "stages": stages}


def _trajectory_summary(envs: list[Any], start_distances: list[float]) -> tuple[float, dict[str, Any]]:
    """Score (the mean fraction of the start distance to the target profile closed) and the
    seed's metrics over all episodes' genes pooled (as a metric over a data set's cells is): one
    R2 of every (episode, gene) target by the profile reached, not a mean of per-episode R2s,
    which a target with little spread over genes would dominate."""
    finals = [env.distance for env in envs]
    closed = [(d0 - d) / d0 if d0 > 0 else 0.0 for d0, d in zip(start_distances, finals)]
    pooled = trajectory_metrics(np.concatenate([env.start_profile for env in envs]),
                                np.concatenate([env.reached_profile() for env in envs]),
                                np.concatenate([env.target_profile for env in envs]), envs[0].ode.params.x_max)
    return float(np.mean(closed)), {"n_episodes": len(envs), "distance_closed": float(np.mean(closed)), **pooled}


def evaluate_module(module: Any, env_config: dict, n_episodes: int, seed: int, env_class: type = CellFateEnv) -> dict[str, Any]:
    """Score (steer: success rate; predict: mean per-stage accuracy; trajectory: mean fraction of
    the distance to the target profile closed), mean return, and per episode the perturbations
    used (with the stage each was applied at) and the fate reached; on the predict task also
    `predict_metrics` (per stage accuracy, macro-F1, AUPRC), on the trajectory task
    `trajectory_metrics` (the seed's: direction accuracy, macro-F1, AUPRC; MSE, R2, Pearson).
    Episode i is seeded seed + i; `env_class` is CellFateEnv or envs.ode's OdeCellFateEnv."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    envs = [env_class(dict(env_config)) for _ in range(n_episodes)]
    resets = [env.reset(seed=seed + i) for i, env in enumerate(envs)]
    obs = [o for o, _ in resets]
    start_distances = [float(info.get("distance", 0.0)) for _, info in resets]
    task = envs[0].task
    returns = np.zeros(n_episodes)
    finals: list[dict[str, Any] | None] = [None] * n_episodes
    stage_probs: list[list[np.ndarray]] = [[] for _ in range(n_episodes)]
    active = list(range(n_episodes))
    was_training = module.training
    module.eval()
    try:
        while active:
            logits = masked_logits(module, [obs[i] for i in active])
            if task == "predict":
                for i, p in zip(active, _softmax(logits)):
                    stage_probs[i].append(p)
            with torch.no_grad():
                actions = module.deterministic_actions(torch.as_tensor(logits)).numpy()
            still = []
            for i, action in zip(active, actions):
                obs[i], reward, terminated, truncated, info = envs[i].step(action if action.ndim else int(action))
                returns[i] += reward
                if terminated or truncated:
                    finals[i] = info
                else:
                    still.append(i)
            active = still
    finally:
        module.train(was_training)
    out: dict[str, Any] = {}
    if task == "steer":
        score = float(np.mean([bool(f.get("success", False)) for f in finals]))
    elif task == "trajectory":
        score, out["trajectory_metrics"] = _trajectory_summary(envs, start_distances)
    else:
        score = float(np.mean([f.get("accuracy", 0.0) for f in finals]))
        out["predict_metrics"] = _predict_metrics([env.realized_fate for env in envs], stage_probs,
                                                  envs[0].world.fate_labels)
    return {
        "score": score,
        "episode_return_mean": float(returns.mean()),
        # Boolean worlds: [gene, kind, stage], the stage it was applied at (0 = before the cell
        # developed); ODE worlds: {gene: weight} of the last step
        "perturbation_sets": [_perturbation_set(f) for f in finals],
        "fates": [f.get("fate") for f in finals],
        **out,
    }


def _perturbation_set(final: dict[str, Any]) -> Any:
    perturbations = final.get("perturbations", [])
    if isinstance(perturbations, dict):
        return perturbations
    if final.get("perturbation_stages"):
        return [[g, k, int(st)] for (g, k), st in zip(perturbations, final["perturbation_stages"])]
    return [[g, k] for g, k in perturbations]
