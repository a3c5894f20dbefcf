"""The benchmark view: per task, the optimum, each baseline, the best RL entry per algorithm.

A task is one (run, world, target, MAX_PERTURB) of steer runs, with the run's env settings
(start, condition, background mutations, pulses) that make it a rescue, a reprogramming or a
timing task. For each task the view shows:

- the default probability of the target (the unperturbed cell) and the oracle's optimum with
  what it is (exact dynamic optimum, exact static optimum, lower bound);
- the best known value: the best of the exact oracle, every baseline and every RL entry (an RL
  entry by its final-seed mean), with its source;
- each baseline's value, and greedy's gap to the best known (a trap when it is at least
  TRAP_GAP: the local optimum the seed's staged algorithms claim to escape);
- per RL algorithm its best cell (over optimizers and modules): IQM with its 95% interval, the
  IQM normalized by the best known, and how many of its final seeds came within 95% of the best
  known;
- whether some pair of entries has intervals that do not overlap, and whether the best RL entry
  is at or above the best non-RL answer (every baseline and the exhaustive time-0 optimum);
- which perturbations of the best baseline set pin a defining marker of the target fate.

Built from run directories only (`tournament benchmark RUN [RUN...]`), like the report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tournament.report.leaderboard import ENTRY_BASELINE, ENTRY_RL, SOURCE_FINAL, build_leaderboard, final_seed_scores, load_run
from tournament.engine.rundir import oracle_key

TRAP_GAP = 0.1  # greedy this far below the best known marks a local-optimum trap
NEAR_BEST = 0.95  # a final seed "reaches" the best known at this fraction of it
BASELINE_ORDER = ("random", "greedy", "beam", "annealing", "aeon_control")


def task_description(spec_text: str) -> str:
    """The run's task kind in words (background, start, condition, pulses), from its spec."""
    return _describe(_task_settings(spec_text))


def _task_settings(spec_text: str) -> dict[str, Any]:
    try:
        env = (yaml.safe_load(spec_text) or {}).get("env") or {}
    except yaml.YAMLError:
        env = {}
    keep = ("start", "condition", "background", "pulse_stages", "n_stages")
    return {k: env[k] for k in keep if env.get(k) not in (None, [], "")}


def _describe(settings: dict[str, Any]) -> str:
    parts = []
    if "background" in settings:
        bg = settings["background"]
        parts.append("background " + (", ".join(bg) if isinstance(bg, list) else str(bg)))
    if "start" in settings:
        parts.append(f"start {settings['start']}")
    if "condition" in settings:
        parts.append(f"condition {settings['condition']}")
    if "pulse_stages" in settings:
        parts.append(f"pulses of {settings['pulse_stages']} stage(s)")
    return "; ".join(parts) or "default start"


def _spec_worlds(spec_text: str) -> dict[str, Any]:
    """World name -> the loaded World of each world the spec names (those that load here)."""
    from envs.world import load_world

    try:
        names = (yaml.safe_load(spec_text) or {}).get("world") or ["myeloid"]
    except yaml.YAMLError:
        return {}
    out = {}
    for name in names if isinstance(names, list) else [names]:
        try:
            world = load_world(name)
        except Exception:  # a world this machine cannot load (data elsewhere): no marker check
            continue
        out[world.name] = world
    return out


def marker_pins(world: Any, target: str, perturbations: list) -> list[str]:
    """The perturbations of a set that pin a defining marker of the target fate to its value.

    Such a set reaches the fate's label partly by writing its readout (overexpressing a marker the
    fate requires on, knocking out one it requires off); a biologist reads that as a weaker answer
    than a set acting through the regulators, so the view names them.
    """
    from envs.network import PERTURBATION_KINDS, pin_value

    markers = world.markers[world.fate_index(target)]
    out = []
    for gene, kind, *_ in perturbations:
        if kind not in PERTURBATION_KINDS or gene not in world.gene_names:
            continue
        value = pin_value(kind)
        if any(markers[v] == value for v in world.gene_vars[world.gene_names.index(gene)]):
            out.append(f"{gene} {kind}")
    return out


def _overlap_free_pair(rows: pd.DataFrame) -> bool:
    """Whether two entries of the task have known 95% intervals that do not overlap."""
    known = rows[np.isfinite(rows["ci_low"].astype(float)) & np.isfinite(rows["ci_high"].astype(float))]
    if len(known) < 2:
        return False
    return bool(known["ci_low"].max() > known["ci_high"].min())


def task_rows(run_dir: "str | Path") -> list[dict[str, Any]]:
    """One row per steer task of a run directory."""
    run = load_run(run_dir)
    board = build_leaderboard(run)
    if board.empty:
        return []
    finals = final_seed_scores(run)
    worlds = _spec_worlds(run.spec_text)
    name = Path(run.run_dir).name
    out = []
    steer = board[board["task"] == "steer"]
    for (world, target, k), rows in steer.groupby(["world", "target", "max_perturb"], sort=True):
        orc = run.oracle.get(oracle_key(world, "steer", target, int(k))) or {}
        default = (orc.get("baseline") or {}).get(target)
        row: dict[str, Any] = {"run": name, "world": world, "target": target, "max_perturb": int(k),
                               "task": task_description(run.spec_text), "default_probability": default,
                               "optimum": orc.get("optimum"), "reference": orc.get("reference", "none")}
        candidates = []
        if orc.get("optimum") is not None and orc.get("exact"):
            candidates.append((float(orc["optimum"]), f"oracle ({orc.get('reference', 'exact')})"))
        static = orc.get("static_optimum")
        row["time0_optimum"] = float(static) if static is not None and orc.get("exact") else None
        base = rows[rows["entry"] == ENTRY_BASELINE].set_index("algorithm")
        best_set: list = []
        for b in BASELINE_ORDER:
            if b in base.index:
                v = float(base.loc[b, "mean"])
                row[b] = v if math.isfinite(v) else None
                if math.isfinite(v):
                    candidates.append((v, f"baseline {b}"))
                    if v >= max((c[0] for c in candidates if c[1].startswith("baseline")), default=-1.0):
                        best_set = json.loads(base.loc[b, "details"] or "{}").get("set", [])
        rl = rows[(rows["entry"] == ENTRY_RL) & (rows["score_source"] == SOURCE_FINAL)]
        for _, r in rl.iterrows():
            if math.isfinite(float(r["mean"])):
                candidates.append((float(r["mean"]), f"RL {r['cell_id']}"))
        best, source = max(candidates, key=lambda c: c[0]) if candidates else (float("nan"), "none")
        row.update(best_known=best, best_known_source=source)
        greedy = row.get("greedy")
        row["greedy_gap"] = best - greedy if greedy is not None and math.isfinite(best) else None
        row["trap"] = bool(row["greedy_gap"] is not None and row["greedy_gap"] >= TRAP_GAP)
        best_rl = -math.inf
        for algorithm, cells in rl.groupby("algorithm", sort=True):
            top = cells.sort_values(["iqm", "mean"], ascending=False).iloc[0]
            seeds = finals[finals["cell_id"] == top["cell_id"]]["score"].to_numpy(dtype=float)
            near = int(np.sum(seeds >= NEAR_BEST * best)) if best > 0 else 0
            row[f"rl:{algorithm}"] = {"cell_id": top["cell_id"], "iqm": float(top["iqm"]), "ci_low": float(top["ci_low"]),
                                      "ci_high": float(top["ci_high"]),
                                      "normalized": float(top["iqm"]) / best if best > 0 else float("nan"),
                                      "seeds_near_best": near, "n_seeds": int(seeds.size)}
            best_rl = max(best_rl, float(top["iqm"]))
        world_obj = worlds.get(world)
        row["baseline_set_pins_markers"] = (marker_pins(world_obj, target, best_set) if world_obj is not None
                                            else None)
        # the best non-RL answer: every baseline, and the exhaustive time-0 optimum under the task's timing
        best_base = max((v for b in (*BASELINE_ORDER, "time0_optimum") if (v := row.get(b)) is not None),
                        default=None)
        row["best_rl_iqm"] = best_rl if math.isfinite(best_rl) else None
        row["rl_at_or_above_baselines"] = (None if row["best_rl_iqm"] is None or best_base is None
                                           else bool(row["best_rl_iqm"] >= best_base))
        row["separated_pair"] = _overlap_free_pair(rows[rows["score_source"].isin([SOURCE_FINAL]) | (rows["entry"] == ENTRY_BASELINE)])
        out.append(row)
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def is_hard(row: dict[str, Any]) -> bool:
    """A task where a cheap answer is not the answer: greedy is trapped, timing pays (the dynamic
    optimum beats the time-0 one), or no exact optimum is known and nothing has reached certainty
    (a best known value of 1 cannot be beaten, whoever found it)."""
    timing_pays = (row["reference"] == "exact dynamic optimum" and row.get("time0_optimum") is not None
                   and row["optimum"] is not None and row["optimum"] > row["time0_optimum"] + 0.01)
    unknown = (row["reference"] not in ("exact dynamic optimum", "exact static optimum")
               and not row["best_known"] >= 1.0 - 1e-9)
    return bool(row["trap"] or timing_pays or unknown)


def benchmark_markdown(rows: list[dict[str, Any]]) -> str:
    """The benchmark view as markdown: one table of tasks, one of RL entries, and a summary."""
    lines = ["# Benchmark", "",
             "Per task (run, world, target, MAX_PERTURB): the unperturbed probability of the target, the optimum "
             "and what it is, the best known value (the best of the exact oracle, every baseline and every RL "
             "entry's final-seed mean) and its source, the exhaustive time-0 optimum under the task's timing "
             "(what no timed policy is needed for), each baseline's value, and greedy's gap to the best known "
             f"(a trap when >= {TRAP_GAP}). A task is hard when greedy is trapped, when timing pays (the dynamic "
             "optimum beats the time-0 one), or when no exact optimum is known and no entry reached certainty. The last column names perturbations "
             "of the best baseline set that pin a defining marker of the target (they write the readout).", ""]
    head = ["run", "world", "target", "k", "task", "default", "optimum (reference)", "time-0 optimum",
            "best known (source)", *BASELINE_ORDER, "greedy gap", "trap", "hard", "best baseline set pins target markers"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        opt = f"{_fmt(r['optimum'])} ({r['reference']})" if r["optimum"] is not None else "–"
        pins = r.get("baseline_set_pins_markers")
        cells = [r["run"], r["world"], r["target"], str(r["max_perturb"]), r["task"], _fmt(r["default_probability"]),
                 opt, _fmt(r.get("time0_optimum")), f"{_fmt(r['best_known'])} ({r['best_known_source']})",
                 *(_fmt(r.get(b)) for b in BASELINE_ORDER), _fmt(r["greedy_gap"]), _fmt(r["trap"]), _fmt(is_hard(r)),
                 "–" if pins is None else (", ".join(pins) or "no")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## RL entries", "",
              f"Per task and algorithm its best cell: IQM [95% CI] of the final seeds, IQM / best known, and how "
              f"many final seeds came within {NEAR_BEST:.0%} of the best known.", "",
              "| run | target | k | algorithm | cell | IQM [95% CI] | normalized | seeds near best |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for key in sorted(k for k in r if k.startswith("rl:")):
            e = r[key]
            lines.append(f"| {r['run']} | {r['target']} | {r['max_perturb']} | {key[3:]} | {e['cell_id']} | "
                         f"{_fmt(e['iqm'])} [{_fmt(e['ci_low'])}, {_fmt(e['ci_high'])}] | {_fmt(e['normalized'])} | "
                         f"{e['seeds_near_best']} of {e['n_seeds']} |")
    hard = [r for r in rows if is_hard(r)]
    judged = [r for r in hard if r["rl_at_or_above_baselines"] is not None]
    lines += ["", "## Summary", "",
              f"- tasks: {len(rows)}; hard (a greedy trap, timing that pays, or an open optimum): {len(hard)}",
              f"- hard tasks with a pair of entries whose intervals do not overlap: "
              f"{sum(bool(r['separated_pair']) for r in hard)} of {len(hard)}",
              f"- hard tasks where the best RL entry (IQM) is at or above the best non-RL baseline: "
              f"{sum(bool(r['rl_at_or_above_baselines']) for r in judged)} of {len(judged)}", ""]
    return "\n".join(lines)


def benchmark_csv(rows: list[dict[str, Any]]) -> str:
    flat = []
    for r in rows:
        base = {k: v for k, v in r.items() if not k.startswith("rl:")}
        base["rl"] = json.dumps({k[3:]: v for k, v in r.items() if k.startswith("rl:")}, sort_keys=True)
        flat.append(base)
    return pd.DataFrame(flat).to_csv(index=False)
