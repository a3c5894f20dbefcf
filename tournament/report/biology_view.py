"""Biology view: which perturbation sets the best steering policies use, checked against the oracle.

For each steer cell, the sets its greedy policy applied in the final seeds' evaluation episodes
(``final_scores.csv`` column ``perturbation_sets``) are counted; each frequent set is looked up
among the oracle's best sets for the same world/target/MAX_PERTURB (``oracle.json``), giving
its oracle rank and exact success probability where the oracle lists it (for the empty set:
the unperturbed baseline probability of the target). The oracle applies
its sets at time 0; a policy may spread the same set over stages, so a match says the policy
found the right genes, not necessarily the same timing.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd

from envs.network import KIND_ALIASES, KNOCKOUT, OVEREXPRESSION
from tournament.report.leaderboard import GROUP_AXES, RunData
from tournament.engine.rundir import oracle_key

NO_PERTURBATION = "(none)"
BIOLOGY_COLUMNS = (
    *GROUP_AXES, "max_perturb", "rank", "cell_id", "algorithm", "optimizer", "module",
    "set", "count", "frequency", "in_oracle_best", "oracle_rank", "oracle_probability",
    "optimum",
)

PerturbationSet = tuple[tuple, ...]  # (gene, kind) or (gene, kind, stage) entries


def _short_kind(kind: str) -> str:
    full = KIND_ALIASES.get(str(kind).lower(), str(kind))
    return {KNOCKOUT: "ko", OVEREXPRESSION: "oe"}.get(full, str(kind))


def graded_kind(weight: float) -> str:
    """An ODE world's gene weight as a kind: ko / oe at -1 / +1, else knock-down ("kd") or
    activation ("act") by its fraction, to the nearest 10% so that nearby weights count together."""
    w = float(weight)
    if w <= -1.0 or w >= 1.0:
        return "ko" if w < 0 else "oe"
    return f"{'kd' if w < 0 else 'act'} {int(round(abs(w) * 10)) * 10}%"


def canonical_set(perturbations: "list | dict") -> PerturbationSet:
    """A perturbation set in canonical form: sorted (gene, ko|oe) pairs, (gene, ko|oe, stage) for one
    applied after stage 0 (a timed perturbation), so a schedule and a time-0 set stay apart; an
    ODE world's {gene: weight} as (gene, graded_kind(weight)) pairs."""
    if isinstance(perturbations, dict):
        return tuple(sorted((str(g), graded_kind(w)) for g, w in perturbations.items()))
    out = []
    for p in perturbations:
        g, k, *rest = p
        stage = int(rest[0]) if rest else 0
        out.append((str(g), _short_kind(k)) if stage == 0 else (str(g), _short_kind(k), stage))
    return tuple(sorted(out))


def format_set(s: PerturbationSet) -> str:
    """A readable set, e.g. ``Cebpa oe + Gfi1 ko @stage 2``."""
    return " + ".join(f"{p[0]} {p[1]}" + (f" @stage {p[2]}" if len(p) > 2 else "") for p in s) if s else NO_PERTURBATION


def _policy_sets(rows: pd.DataFrame) -> Counter:
    counts: Counter = Counter()
    for text in rows.get("perturbation_sets", pd.Series(dtype=str)):
        try:
            episodes = json.loads(text) if text else []
        except (json.JSONDecodeError, TypeError):
            continue
        for ep in episodes:
            counts[canonical_set(ep)] += 1
    return counts


def biology_view(
    run: RunData, leaderboard: pd.DataFrame, cells_per_group: int = 3, sets_per_cell: int = 3
) -> pd.DataFrame:
    """Top perturbation sets of the best-ranked steer cells of each group, against the oracle."""
    fs = run.final_scores
    if fs.empty or "perturbation_sets" not in fs or leaderboard.empty:
        return pd.DataFrame(columns=list(BIOLOGY_COLUMNS))
    rl = leaderboard[(leaderboard["task"] == "steer") & (leaderboard.get("entry", "rl") == "rl")]
    lb = rl[rl.groupby(list(GROUP_AXES))["rank"].rank(method="first") <= cells_per_group]
    rows = []
    for _, cell in lb.sort_values([*GROUP_AXES, "rank"]).iterrows():
        counts = _policy_sets(fs[fs["cell_id"] == cell["cell_id"]])
        total = sum(counts.values())
        if not total:
            continue
        orc = run.oracle.get(oracle_key(cell["world"], cell["task"], cell["target"],
                                        cell["max_perturb"]))
        best = orc.get("best", []) if isinstance(orc, dict) else []
        oracle_sets = {}
        for i, b in enumerate(best):
            oracle_sets.setdefault(canonical_set(b.get("perturbations", [])),
                                   (i + 1, b.get("probability")))
        # Doing nothing has a known exact probability too: the unperturbed baseline.
        baseline = orc.get("baseline", {}) if isinstance(orc, dict) else {}
        p_none = baseline.get(cell["target"]) if isinstance(baseline, dict) else None
        # Most frequent first; equal counts in set order so rebuilds are identical.
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:sets_per_cell]
        for s, n in top:
            hit = oracle_sets.get(s)
            p_exact = float(hit[1]) if hit and hit[1] is not None else float("nan")
            if not s and hit is None and isinstance(p_none, (int, float)):
                p_exact = float(p_none)
            rows.append({
                **{a: cell[a] for a in GROUP_AXES}, "max_perturb": cell["max_perturb"],
                "rank": cell["rank"], "cell_id": cell["cell_id"], "algorithm": cell["algorithm"],
                "optimizer": cell["optimizer"], "module": cell["module"], "set": format_set(s),
                "count": n, "frequency": n / total,
                "in_oracle_best": (hit is not None) if best else pd.NA,
                "oracle_rank": hit[0] if hit else pd.NA,
                "oracle_probability": p_exact,
                "optimum": cell["optimum"],
            })
    df = pd.DataFrame(rows, columns=list(BIOLOGY_COLUMNS))
    df["in_oracle_best"] = df["in_oracle_best"].astype("boolean")
    df["oracle_rank"] = df["oracle_rank"].astype("Int64")
    return df


def oracle_table(run: RunData, top: int = 3) -> pd.DataFrame:
    """The oracle's optimum per world/task/target/MAX_PERTURB with its method and best sets."""
    rows = []
    for key in sorted(run.oracle):
        o = run.oracle[key]
        if not isinstance(o, dict):
            continue
        world, task, target, k = (key.split("|") + ["", "", "", ""])[:4]
        best = o.get("best", [])[:top]
        baseline = o.get("baseline", {}) or {}
        rows.append({
            "world": world, "task": task, "target": target, "max_perturb": k,
            "optimum": o.get("optimum"),
            "optimum_is": "exact optimum" if o.get("exact") else (
                "best known (lower bound)" if o.get("optimum") is not None else "none (the best entry is the reference)"),
            "method": o.get("method", ""),
            "baseline": ", ".join(f"{f}: {p:.3f}" for f, p in sorted(baseline.items())
                                  if isinstance(p, (int, float))),
            "best_sets": "; ".join(
                f"{format_set(canonical_set(b.get('perturbations', [])))}"
                f" ({b['probability']:.3f})" if isinstance(b.get("probability"), (int, float))
                else format_set(canonical_set(b.get("perturbations", [])))
                for b in best),
        })
    return pd.DataFrame(rows, columns=["world", "task", "target", "max_perturb", "optimum",
                                       "optimum_is", "method", "baseline", "best_sets"])
