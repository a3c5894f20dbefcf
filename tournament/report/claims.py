"""Verdicts on the seed talk's four claims, from the final seeds of one or more run directories.

Each claim is a paired comparison of tournament.report.ablations (a variant and its baseline
that differ on one grid axis, matched on every other axis): the effect is the mean over matching
cells of (variant final-seed mean - baseline final-seed mean), with the 95% stratified-bootstrap
interval and the probability of improvement of ``stats.paired_difference``.

Verdict rules (on the effect's 95% interval):

- ``supported``: the interval lies above 0 (its low end > 0);
- ``contradicted``: the interval lies below 0 (its high end < 0);
- ``inconclusive``: the interval covers 0, or it is unknown (fewer than two final seeds a side);
- ``not testable``: the runs hold no matching pair of cells; the result names the cells needed.

There is no equivalence margin: a small effect whose interval excludes 0 still decides.

Which cells may be paired: two cells match when they differ only on the claim's axis and come
from runs whose *context* is equal: the spec's env, kinds, budget, hpo (without its search space,
which is per optimizer), early_stopping and evaluation. The tuning budget (hpo.trials_per_cell)
is part of the context, so both sides of every pair had the same number of tuning trials by
construction; the trials each cell actually recorded are shown too. A cell whose final seeds
overlap its own tuning seeds is left out (and named), though the spec checks forbid it.
The same cell with the same seed in two runs of one context counts once (the first run given).

Claim 4 (larger MAX_PERTURB makes the data sparser, where the methods matter most) is read as:
the claim-2 effect grows with MAX_PERTURB. Its effect is (claim-2 effect at the largest k) -
(at the smallest k), over cells matching on every axis but k. Since the paired statistic is
linear, it is computed as twice ``paired_difference`` of the largest-k cells against the
smallest-k cells with variant and baseline swapped; the probability of improvement has no
meaning for that contrast and is left empty (the per-k effects and probabilities are listed).

Claims 1 and 3 also report, on trap tasks (benchmark_view: greedy at least TRAP_GAP below the
best known), the fraction of final seeds of each side within NEAR_BEST of the best known value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from envs.errors import UserInputError
from tournament.engine.rundir import RunPaths
from tournament.report import stats
from tournament.report.ablations import PAIRS, AblationPair
from tournament.report.benchmark_view import NEAR_BEST, TRAP_GAP, task_rows
from tournament.report.leaderboard import CELL_AXES, RunData, final_seed_scores, load_run

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "contradicted", "inconclusive", "not testable"
CONTEXT_KEYS = ("env", "kinds", "budget", "hpo", "early_stopping", "evaluation")
_HPO_PER_OPTIMIZER = ("space", "extra")

CLAIM_COLUMNS = (
    "claim", "statement", "comparison", "variant", "baseline", "verdict", "effect", "ci_low", "ci_high",
    "prob_improvement", "n_cells", "n_variant_seeds", "n_baseline_seeds", "cells", "tuning_budget",
    "trap_tasks", "trap_variant_near_best", "trap_variant_seeds", "trap_baseline_near_best",
    "trap_baseline_seeds", "note",
)


def _pair(variant: str, baseline: str) -> AblationPair:
    return next(p for p in PAIRS if (p.variant, p.baseline) == (variant, baseline))


@dataclass(frozen=True)
class Claim:
    """One claim of the talk notes and the paired comparisons that test it."""

    number: int
    statement: str
    pairs: tuple[AblationPair, ...]
    by_max_perturb: bool = False
    trap_check: bool = False


CLAIMS: tuple[Claim, ...] = (
    Claim(1, "A few TRPO steps before PPO (TRPO_to_PPO: 1,000 of 100,000 steps) avoid local optima "
             "and reach a better solution than PPO.", (_pair("TRPO_to_PPO", "PPO"),), trap_check=True),
    Claim(2, "ASGDAdam / ASGDAmsgrad (switching between lr_min and lr_max) train better than Adam / "
             "AMSGrad on sparse data (sparsity from perturbations).",
          (_pair("asgd_adam", "adam"), _pair("asgd_amsgrad", "amsgrad"))),
    Claim(3, "Multistage LoRA (LoRA_staged: convex, then non-convex, then optional full fine-tuning) "
             "stabilizes training, improves sample efficiency and escapes local optima (vs PPO from scratch).",
          (_pair("LoRA_staged", "PPO"),), trap_check=True),
    Claim(4, "Larger MAX_PERTURB (4..10) makes the data sparser, where these methods matter most "
             "(tested: the claim-2 effect grows from the smallest to the largest MAX_PERTURB).",
          (_pair("asgd_adam", "adam"), _pair("asgd_amsgrad", "amsgrad")), by_max_perturb=True),
)


@dataclass
class ClaimResult:
    """One comparison of one claim: the effect, its interval, the verdict and what it rests on."""

    claim: int
    statement: str
    comparison: str
    variant: str
    baseline: str
    verdict: str
    effect: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    prob_improvement: float = math.nan
    n_cells: int = 0
    n_variant_seeds: int = 0
    n_baseline_seeds: int = 0
    cells: list[str] = field(default_factory=list)  # one line per matched pair: cells, runs, seeds
    tuning_budget: str = ""
    trap_tasks: int = 0
    trap_variant_near_best: int = 0
    trap_variant_seeds: int = 0
    trap_baseline_near_best: int = 0
    trap_baseline_seeds: int = 0
    note: str = ""

    def row(self) -> dict[str, Any]:
        d = {c: getattr(self, c) for c in CLAIM_COLUMNS}
        d["cells"] = "; ".join(self.cells)
        return d


def verdict(low: float, high: float) -> str:
    """The verdict of an effect's 95% interval (see the module docstring)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if low > 0:
        return SUPPORTED
    if high < 0:
        return CONTRADICTED
    return INCONCLUSIVE


# ---- runs ------------------------------------------------------------------------------------


@dataclass
class _Run:
    label: str
    data: RunData
    context: str
    context_parts: dict[str, str]
    trials_per_cell: int | None


def _spec_context(spec_text: str) -> tuple[dict[str, str], int | None]:
    """The spec settings that must be equal for cells of two runs to pair, and hpo.trials_per_cell."""
    from tournament.engine.spec import validate_spec_fields

    try:
        spec = validate_spec_fields(yaml.safe_load(spec_text)).model_dump(mode="json")
    except (UserInputError, yaml.YAMLError):
        return {}, None
    hpo = {k: v for k, v in spec["hpo"].items() if k not in _HPO_PER_OPTIMIZER}
    spec["hpo"] = hpo
    parts = {k: json.dumps(spec.get(k), sort_keys=True) for k in CONTEXT_KEYS}
    return parts, int(hpo["trials_per_cell"])


def load_runs(run_dirs: list[str | Path]) -> list[_Run]:
    """Read each run directory; a folder without spec.yaml is a user error."""
    runs = []
    for d in run_dirs:
        if not RunPaths(d).spec.is_file():
            raise UserInputError(f"{d} is not a run directory (no spec.yaml)")
        data = load_run(d)
        parts, tpc = _spec_context(data.spec_text)
        # A spec that does not validate pairs only within its own run.
        context = json.dumps(parts, sort_keys=True) if parts else f"unparsed spec of {d}"
        runs.append(_Run(str(d), data, context, parts, tpc))
    return runs


def _pool(runs: list[_Run]) -> tuple[pd.DataFrame, dict[tuple[str, str], set[int]]]:
    """Final-seed scores of every run with its run and context; tuning seeds per (run, cell)."""
    frames, tune_seeds = [], {}
    for r in runs:
        f = final_seed_scores(r.data)
        if not f.empty:
            frames.append(f.assign(run=r.label, context=r.context))
        tr = r.data.trials
        if not tr.empty and {"phase", "cell_id", "seed"} <= set(tr.columns):
            for cid, g in tr[tr["phase"] == "tune"].groupby("cell_id"):
                tune_seeds[(r.label, cid)] = {int(s) for s in g["seed"].dropna()}
    if not frames:
        return pd.DataFrame(columns=["run", "context", "cell_id", *CELL_AXES, "seed", "score"]), tune_seeds
    pool = pd.concat(frames, ignore_index=True)
    pool["seed"] = pool["seed"].astype(int)
    pool = pool.drop_duplicates(["context", *CELL_AXES, "seed"], keep="first")
    return pool.reset_index(drop=True), tune_seeds


@dataclass
class _Side:
    scores: np.ndarray
    cells: list[tuple[str, str, list[int]]]  # (run, cell_id, seeds)


@dataclass
class _Match:
    axes: dict[str, Any]  # every cell axis but the pair's
    variant: _Side
    baseline: _Side


def _sides(pool: pd.DataFrame, pair: AblationPair, axes: list[str], label: str) -> dict[tuple, _Side]:
    out = {}
    sub = pool[pool[pair.axis] == label]
    for key, g in sub.groupby(["context", *axes], sort=True):
        cells = [(run, cid, sorted(int(s) for s in cg["seed"]))
                 for (run, cid), cg in g.groupby(["run", "cell_id"], sort=True)]
        out[key] = _Side(g["score"].to_numpy(dtype=float), cells)
    return out


def _axes_text(axes: dict[str, Any]) -> str:
    return ", ".join(f"{a}={v}" for a, v in axes.items())


def _matches(pool: pd.DataFrame, pair: AblationPair, tune_seeds: dict, runs: list[_Run]) -> tuple[list[_Match], list[str]]:
    """Matched cells of a pair (sorted as paired_ablations sorts them) and why others did not match."""
    axes = [a for a in CELL_AXES if a != pair.axis]
    var, base = _sides(pool, pair, axes, pair.variant), _sides(pool, pair, axes, pair.baseline)
    out, problems = [], []
    for key in sorted(set(var) & set(base), key=str):
        overlap = [f"{cid} (run {run})" for side in (var[key], base[key]) for run, cid, seeds in side.cells
                   if set(seeds) & tune_seeds.get((run, cid), set())]
        if overlap:
            problems.append("left out: final seeds overlap tuning seeds in " + ", ".join(overlap))
            continue
        out.append(_Match(dict(zip(axes, key[1:])), var[key], base[key]))
    by_context = {r.context: r for r in runs}
    for have, want, sides_have, sides_want in ((pair.variant, pair.baseline, var, base),
                                               (pair.baseline, pair.variant, base, var)):
        for key in sorted(set(sides_have) - set(sides_want), key=str):
            where = ", ".join(sorted({run for run, _, _ in sides_have[key].cells}))
            text = f"a cell of {want} with {_axes_text(dict(zip(axes, key[1:])))} (to pair with {have} in {where})"
            elsewhere = [k for k in sides_want if k[1:] == key[1:]]
            if elsewhere:
                other = by_context[elsewhere[0][0]]
                differ = [k for k in CONTEXT_KEYS
                          if other.context_parts.get(k) != by_context[key[0]].context_parts.get(k)]
                runs_other = ", ".join(sorted({run for run, _, _ in sides_want[elsewhere[0]].cells}))
                text += (f"; {runs_other} has one, but its spec differs in "
                         f"{', '.join(differ) or 'its spec (unparsed)'}")
            problems.append("needs " + text)
    return out, problems


# ---- results ---------------------------------------------------------------------------------


def _cell_lines(matches: list[_Match], counts: dict[tuple[str, str], int]) -> list[str]:
    def side(s: _Side) -> str:
        return " + ".join(f"{cid} [run {run}; {counts.get((run, cid), 0)} tuning trial(s); final seeds "
                          f"{', '.join(map(str, seeds))}]" for run, cid, seeds in s.cells)
    return [f"{side(m.variant)} vs {side(m.baseline)}" for m in matches]


def _tuning_counts(runs: list[_Run]) -> dict[tuple[str, str], int]:
    out = {}
    for r in runs:
        tr = r.data.trials
        if not tr.empty and {"phase", "cell_id", "trial_id"} <= set(tr.columns):
            for cid, g in tr[tr["phase"] == "tune"].groupby("cell_id"):
                out[(r.label, cid)] = int(g["trial_id"].nunique())
    return out


def _budget_text(matches: list[_Match], runs: list[_Run]) -> str:
    used = sorted({run for m in matches for s in (m.variant, m.baseline) for run, _, _ in s.cells})
    tpc = {r.label: r.trials_per_cell for r in runs if r.label in used}
    return "; ".join(f"hpo.trials_per_cell = {v if v is not None else 'unknown'} on both sides (run {k})"
                     for k, v in tpc.items())


def _unequal_tuning(matches: list[_Match], counts: dict) -> list[str]:
    out = []
    for m in matches:
        n = {side: sorted({counts.get((run, cid), 0) for run, cid, _ in s.cells})
             for side, s in (("variant", m.variant), ("baseline", m.baseline))}
        if n["variant"] != n["baseline"]:
            out.append(f"tuning trials recorded differ ({n['variant']} vs {n['baseline']}) at {_axes_text(m.axes)}")
    return out


def _trap_counts(result: ClaimResult, matches: list[_Match], runs: list[_Run], pool: pd.DataFrame) -> None:
    """Final seeds within NEAR_BEST of the best known value on trap tasks, per side."""
    by_label = {r.label: r for r in runs}
    tasks: dict[str, dict] = {}
    trap_keys = set()
    for m in matches:
        if m.axes.get("task") != "steer":
            continue
        for attr in ("variant", "baseline"):
            for run, cid, seeds in getattr(m, attr).cells:
                if run not in tasks:
                    tasks[run] = {(t["world"], t["target"], t["max_perturb"]): t
                                  for t in task_rows(by_label[run].data.run_dir)}
                cell = pool[(pool["run"] == run) & (pool["cell_id"] == cid) & pool["seed"].isin(seeds)]
                if cell.empty:
                    continue
                task = (cell.iloc[0]["world"], cell.iloc[0]["target"], int(cell.iloc[0]["max_perturb"]))
                t = tasks[run].get(task)
                if not t or not t["trap"] or not (t["best_known"] > 0):
                    continue
                trap_keys.add((run, *task))
                scores = cell["score"].to_numpy(dtype=float)
                near = int(np.sum(scores >= NEAR_BEST * t["best_known"]))
                setattr(result, f"trap_{attr}_near_best", getattr(result, f"trap_{attr}_near_best") + near)
                setattr(result, f"trap_{attr}_seeds", getattr(result, f"trap_{attr}_seeds") + int(scores.size))
    result.trap_tasks = len(trap_keys)


def _base(claim: Claim, pair: AblationPair) -> ClaimResult:
    what = "change of the effect from smallest to largest MAX_PERTURB: " if claim.by_max_perturb else ""
    return ClaimResult(claim.number, claim.statement, what + f"{pair.variant} vs {pair.baseline}",
                       pair.variant, pair.baseline, NOT_TESTABLE)


def _paired(result: ClaimResult, matches: list[_Match], reps: int, seed: int) -> None:
    d = stats.paired_difference([m.variant.scores for m in matches], [m.baseline.scores for m in matches], reps, seed)
    result.effect, result.ci_low, result.ci_high, result.prob_improvement = d.difference, d.low, d.high, d.prob_improvement
    result.n_cells, result.n_variant_seeds, result.n_baseline_seeds = d.n_cells, d.n_variant_runs, d.n_baseline_runs
    result.verdict = verdict(d.low, d.high)


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"


def _by_max_perturb(result: ClaimResult, matches: list[_Match], reps: int, seed: int) -> list[_Match]:
    """Claim 4: effect at the largest minus at the smallest k, over cells matching on every other axis."""
    groups: dict[str, dict[int, _Match]] = {}
    for m in matches:
        rest = {a: v for a, v in m.axes.items() if a != "max_perturb"}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), {})[int(m.axes["max_perturb"])] = m
    usable = {g: ks for g, ks in groups.items() if len(ks) >= 2}
    if not usable:
        ks = sorted({int(m.axes["max_perturb"]) for m in matches})
        result.note = (f"needs matched {result.variant} / {result.baseline} cells at two or more MAX_PERTURB values "
                       f"that match on every other axis; found MAX_PERTURB {ks or 'none'}")
        return []
    lo = [ks[min(ks)] for ks in usable.values()]
    hi = [ks[max(ks)] for ks in usable.values()]
    # Linear statistic: mean over 2G strata of (hi: variant - baseline, lo: baseline - variant) is half the contrast.
    d = stats.paired_difference([m.variant.scores for m in hi] + [m.baseline.scores for m in lo],
                                [m.baseline.scores for m in hi] + [m.variant.scores for m in lo], reps, seed)
    result.effect, result.ci_low, result.ci_high = 2 * d.difference, 2 * d.low, 2 * d.high
    result.n_cells = len(lo) + len(hi)
    result.n_variant_seeds = sum(m.variant.scores.size for m in lo + hi)
    result.n_baseline_seeds = sum(m.baseline.scores.size for m in lo + hi)
    result.verdict = verdict(result.ci_low, result.ci_high)
    spans = sorted({(min(ks), max(ks)) for ks in usable.values()})
    per_k = []
    for k in sorted({int(m.axes["max_perturb"]) for m in lo + hi}):
        at = [m for m in lo + hi if int(m.axes["max_perturb"]) == k]
        e = stats.paired_difference([m.variant.scores for m in at], [m.baseline.scores for m in at], reps, seed)
        per_k.append(f"k={k}: {_fmt(e.difference)} [{_fmt(e.low)}, {_fmt(e.high)}], "
                     f"P(improvement) {_fmt(e.prob_improvement, 2)}")
    result.note = ("smallest vs largest MAX_PERTURB: " + ", ".join(f"{a} vs {b}" for a, b in spans)
                   + "; claim-2 effect by MAX_PERTURB: " + "; ".join(per_k))
    return lo + hi


def evaluate_claims(run_dirs: list[str | Path], reps: int = stats.DEFAULT_REPS,
                    seed: int = stats.DEFAULT_SEED) -> list[ClaimResult]:
    """One result per claim and comparison (claims 2 and 4 have two: Adam and AMSGrad)."""
    runs = load_runs(run_dirs)
    pool, tune_seeds = _pool(runs)
    counts = _tuning_counts(runs)
    out = []
    for claim in CLAIMS:
        for pair in claim.pairs:
            result = _base(claim, pair)
            matches, problems = _matches(pool, pair, tune_seeds, runs)
            if claim.by_max_perturb and matches:
                matches = _by_max_perturb(result, matches, reps, seed)
            elif matches:
                _paired(result, matches, reps, seed)
            notes = [result.note] if result.note else []
            if not matches and not problems and not notes:
                problems.append(f"needs final-seed cells of both {pair.variant} and {pair.baseline} that match on "
                                f"{', '.join(a for a in CELL_AXES if a != pair.axis)}; the runs have neither")
            if matches:
                result.cells = _cell_lines(matches, counts)
                result.tuning_budget = _budget_text(matches, runs)
                problems += _unequal_tuning(matches, counts)
                if claim.trap_check:
                    _trap_counts(result, matches, runs, pool)
            result.note = "; ".join(notes + problems)
            out.append(result)
    return out


# ---- output ----------------------------------------------------------------------------------


def claims_csv(results: list[ClaimResult]) -> str:
    return pd.DataFrame([r.row() for r in results], columns=list(CLAIM_COLUMNS)).to_csv(index=False)


def _trap_text(r: ClaimResult) -> str:
    if not r.cells:
        return "–"
    if not r.trap_tasks:
        return f"no trap task among the matched cells (a trap: greedy at least {TRAP_GAP} below the best known)"
    return (f"{r.trap_tasks} trap task(s); final seeds within {NEAR_BEST:.0%} of the best known: "
            f"{r.variant} {r.trap_variant_near_best} of {r.trap_variant_seeds}, "
            f"{r.baseline} {r.trap_baseline_near_best} of {r.trap_baseline_seeds}")


def claims_markdown(results: list[ClaimResult], run_dirs: list[str | Path]) -> str:
    """claims.md: the rules, then per claim its statement, comparisons, numbers, cells and seeds."""
    lines = ["# Claims of the seed talk", "", "Runs: " + ", ".join(str(d) for d in run_dirs), "",
             "Effect: mean over matching cells of (variant final-seed mean - baseline final-seed mean), in raw "
             "score; 95% stratified-bootstrap interval (seeds resampled within each cell, each side independently); "
             "P(improvement): P(variant seed > baseline seed), averaged over cells. Cells match when they differ "
             "only on the claim's axis and their runs share env, kinds, budget, hpo (so the same "
             "hpo.trials_per_cell), early_stopping and evaluation. Tuning and final seeds are disjoint.", "",
             "Verdicts: **supported** when the interval lies above 0; **contradicted** when it lies below 0; "
             "**inconclusive** when it covers 0 or is unknown (fewer than two seeds a side); **not testable** "
             "when the runs hold no matching cells (the cells needed are named). No equivalence margin.", "",
             "| claim | comparison | verdict | effect [95% CI] | P(improvement) | cells | seeds (variant / baseline) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.claim} | {r.comparison} | {r.verdict} | {_fmt(r.effect)} [{_fmt(r.ci_low)}, "
                     f"{_fmt(r.ci_high)}] | {_fmt(r.prob_improvement, 2)} | {r.n_cells} | "
                     f"{r.n_variant_seeds} / {r.n_baseline_seeds} |")
    for claim in CLAIMS:
        lines += ["", f"## Claim {claim.number}", "", f"> {claim.statement}", ""]
        for r in (r for r in results if r.claim == claim.number):
            lines += [f"### {r.comparison}: {r.verdict}", "",
                      f"- effect: {_fmt(r.effect)} [95% CI {_fmt(r.ci_low)}, {_fmt(r.ci_high)}], "
                      f"P(improvement) {_fmt(r.prob_improvement, 2)}, over {r.n_cells} cell(s), "
                      f"{r.n_variant_seeds} / {r.n_baseline_seeds} final seeds"]
            if r.tuning_budget:
                lines.append(f"- tuning budget: {r.tuning_budget}")
            if claim.trap_check:
                lines.append(f"- trap tasks: {_trap_text(r)}")
            if r.note:
                lines.append(f"- note: {r.note}")
            if r.cells:
                lines.append("- cells and seeds used:")
                lines += [f"  - {c}" for c in r.cells]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
