"""Find benchmark tasks whose answer is not known in advance, and write TASKS.md.

For every candidate task (world, start, condition, background mutations, pulses, target) it
computes the unperturbed target probability, greedy forward selection (its value at each
size), the best of beam / annealing / random search within a budget of simulated cells, AEON
control's proposals (binary worlds only), the exact time-0 optimum where the chain is small
(myeloid, 11 genes) and, for timing tasks, the exact optimum over timed and pulsed policies
(`envs.dynamic_oracle`). A task is kept when its target is not already the default outcome
(p < 0.95) and is a *trap* when greedy is at least TRAP_GAP below the best known set.

Run from the repository root (a few minutes on 2 cores):

    .venv/bin/python experiments/benchmark/discover_tasks.py --out experiments/benchmark/TASKS.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from algorithms.baselines import run_baseline  # noqa: E402
from envs.dynamic_oracle import dynamic_optimum  # noqa: E402
from envs.oracle import best_perturbations, fate_distribution  # noqa: E402
from envs.world import load_world  # noqa: E402

WORLDS = "experiments/worlds"
CACACE = f"{WORLDS}/cacace_tcell.world.yaml"
COLLOMBET = f"{WORLDS}/collombet_bcell_macrophage.world.yaml"
SELVAGGIO = f"{WORLDS}/selvaggio_emt.world.yaml"
LARGE_KS = (4, 6, 8, 10)
TRAP_GAP = 0.10
DEFAULT_CUTOFF = 0.95


@dataclass
class Task:
    """One candidate: where the cell starts, what is done to it, where it should go."""

    key: str
    world: str
    target: str
    ks: tuple[int, ...]
    start: "str | None" = None
    condition: "str | None" = None
    background: tuple[str, ...] = ()
    pulse_stages: "int | None" = None
    n_stages: "int | None" = None
    note: str = ""
    result: dict = field(default_factory=dict)


def candidates() -> list[Task]:
    """The candidate tasks, per family (a: timing, b: myeloid rescue/reprogramming, c-e: published worlds)."""
    out = []
    # (a) myeloid timing tasks: one pulse of 1-2 stages; n_stages 3 (found by a scan of
    # targets x pulse 1, 2 x MAX_PERTURB 1, 2: the dynamic optimum beats the time-0 one only at 1).
    for target in ("Ery", "Neu"):
        for pulse in (1, 2):
            out.append(Task(f"myeloid-timing-{target}-pulse{pulse}", "myeloid", target, (1, 2),
                            pulse_stages=pulse, n_stages=3, note="timing"))
    # (b) myeloid rescue and reprogramming
    out.append(Task("myeloid-rescue-Pu.1oe-Ery", "myeloid", "Ery", (1, 2, 3), background=("Pu.1=oe",), note="rescue"))
    out.append(Task("myeloid-rescue-Gfi1ko-Neu", "myeloid", "Neu", (1, 2, 3), background=("Gfi1=ko",), note="rescue"))
    out.append(Task("myeloid-reprogram-Ery-to-Neu", "myeloid", "Neu", (1, 2, 3), start="attractor:Ery", note="reprogramming"))
    out.append(Task("myeloid-reprogram-Ery-to-Mo", "myeloid", "Mo", (1, 2, 3), start="attractor:Ery", note="reprogramming"))
    # (c) Cacace T-cell commitment
    out.append(Task("cacace-DN3", CACACE, "DN3", LARGE_KS, note="minority fate"))
    out.append(Task("cacace-rescue-NotchKO-DN3", CACACE, "DN3", LARGE_KS, background=("Notch_gene=ko",), note="rescue"))
    out.append(Task("cacace-rescue-Pu1oe-DN3", CACACE, "DN3", LARGE_KS, background=("Pu1=oe",), note="rescue"))
    out.append(Task("cacace-Myeloid", CACACE, "Myeloid", LARGE_KS, note="minority fate"))
    # (d) Collombet B cell / macrophage
    out.append(Task("collombet-reprogram-B-to-Mac", COLLOMBET, "Macrophage", LARGE_KS, start="attractor:Bcell",
                    note="reprogramming"))
    out.append(Task("collombet-reprogram-Mac-to-B", COLLOMBET, "Bcell", LARGE_KS, start="attractor:Macrophage",
                    note="reprogramming"))
    out.append(Task("collombet-rescue-Ikzf1ko-B", COLLOMBET, "Bcell", LARGE_KS, background=("Ikzf1=ko",), note="rescue"))
    # (e) Selvaggio EMT
    out.append(Task("selvaggio-block-EMT-TGFB", SELVAGGIO, "Epithelial", LARGE_KS, condition="TGFB", note="rescue"))
    out.append(Task("selvaggio-reprogram-M-to-E", SELVAGGIO, "Epithelial", LARGE_KS, start="attractor:Mesenchymal",
                    condition="TGFB", note="reprogramming"))
    out.append(Task("selvaggio-Hybrid-IL6", SELVAGGIO, "Hybrid", LARGE_KS, note="minority fate"))
    return out


def _respect_background() -> None:
    """Make the baselines' scorer refuse sets that touch a background gene, as the environment does.

    `algorithms.baselines` and `envs.oracle` enumerate every gene, so on a rescue world they would
    "rescue" by undoing the background mutation itself; here such a set scores 0 and costs nothing.
    """
    from algorithms.baselines import common

    if getattr(common.Scorer, "_respects_background", False):
        return
    call = common.Scorer.__call__

    def guarded(self, moves):
        fixed = {self.world.gene_index(g) for g in self.world.background_genes}
        if any(g in fixed for g, _ in moves):
            self.values.setdefault(tuple(sorted(moves)), 0.0)  # beam reads the values back
            return 0.0
        return call(self, moves)

    common.Scorer.__call__ = guarded
    common.Scorer._respects_background = True


def evaluate(task: Task, n_cells: int, budget_sets: int) -> Task:
    """Fill `task.result` (see the module docstring)."""
    t0 = time.perf_counter()
    _respect_background()
    world = load_world(task.world)
    if task.background:
        world = world.with_background(list(task.background))
    kw = dict(start=task.start, condition=task.condition, n_cells=n_cells, seed=0)
    r: dict = {"world_name": world.name, "genes": world.n_genes, "variables": world.network.n_genes}
    default = fate_distribution(world, [], task.start, n_cells=4 * n_cells, seed=0, condition=task.condition)
    r["default"] = {f: round(float(p), 3) for f, p in default.probabilities.items()}
    r["p_default"] = r["default"][task.target]
    kmax = max(task.ks)
    greedy = run_baseline("greedy", world, task.target, kmax, budget_cells=40 * world.n_genes * kmax * n_cells, **kw)
    path = greedy.details["values_by_size"]
    r["greedy_by_size"] = [round(step["value"], 3) for step in path]
    r["greedy_set"] = path[-1]["set"]
    r["greedy"] = {k: round(path[min(k, len(path) - 1)]["value"], 3) for k in task.ks}
    r["best"], r["aeon"], r["exact"] = {}, {}, {}
    small = world.network.n_genes <= 16
    for k in task.ks:
        best = ("greedy", r["greedy"][k], [list(m) for m in _greedy_set(path, k)])
        for name in ("beam", "annealing", "random"):
            res = run_baseline(name, world, task.target, k, budget_cells=budget_sets * n_cells, **kw)
            if not math.isnan(res.value) and res.value > best[1] + 1e-9:
                best = (name, round(res.value, 3), [list(m) for m in res.best])
        if not world.is_multivalued:
            aeon = run_baseline("aeon_control", world, task.target, k, budget_cells=50 * n_cells, time_limit_s=20.0, **kw)
            r["aeon"][k] = {"value": None if math.isnan(aeon.value) else round(aeon.value, 3),
                            "set": [list(m) for m in aeon.best], "reason": aeon.reason[:80]}
            if not math.isnan(aeon.value) and aeon.value > best[1] + 1e-9:
                best = ("aeon_control", round(aeon.value, 3), [list(m) for m in aeon.best])
        if small and world.background:
            # the oracle would pin the background genes too; the dynamic solver's time-0 optimum does not
            # one stage of one update: the time-0 value is the same, the work the smallest
            d = dynamic_optimum(world, task.target, k, n_stages=1, updates_per_stage=1, start=task.start,
                                condition=task.condition)
            r["exact"][k] = {"value": round(d.static_value, 3), "exact": True, "set": d.static_action}
            if d.static_value > best[1] + 1e-9:
                best = ("exact oracle", round(d.static_value, 3), [list(m) for m in d.static_action])
        elif small:
            ex = best_perturbations(world, task.target, k, start=task.start, condition=task.condition)
            r["exact"][k] = {"value": round(ex.optimum, 3), "exact": ex.exact,
                             "set": ex.best[0]["perturbations"] if ex.best else []}
            if ex.optimum > best[1] + 1e-9:
                best = ("exact oracle", round(ex.optimum, 3), ex.best[0]["perturbations"])
        r["best"][k] = {"by": best[0], "value": best[1], "set": best[2]}
    if task.pulse_stages is not None:
        r["dynamic"] = {}
        for k in task.ks:
            d = dynamic_optimum(world, task.target, k, n_stages=task.n_stages, pulse_stages=task.pulse_stages,
                                start=task.start, condition=task.condition)
            r["dynamic"][k] = {"value": round(d.value, 3), "static": round(d.static_value, 3),
                               "first_action": d.first_action}
    gaps = {k: round(r["best"][k]["value"] - r["greedy"][k], 3) for k in task.ks}
    r["trap_gap"] = max(gaps.values())
    r["trap"] = r["trap_gap"] >= TRAP_GAP
    r["timing_gap"] = max((v["value"] - v["static"] for v in r.get("dynamic", {}).values()), default=0.0)
    r["seconds"] = round(time.perf_counter() - t0, 1)
    task.result = r
    print(f"{task.key}: p_default {r['p_default']}, greedy {r['greedy']}, best "
          f"{ {k: v['value'] for k, v in r['best'].items()} }, {r['seconds']} s", flush=True)
    return task


def _greedy_set(path: list[dict], k: int) -> list:
    return path[min(k, len(path) - 1)]["set"]


def _run(args) -> Task:
    return evaluate(*args)


def _fmt_set(s) -> str:
    return " + ".join(f"{g} {kind.replace('overexpression', 'OE').replace('knockout', 'KO')}" for g, kind in s) or "none"


def markdown(tasks: list[Task], command: str, n_cells: int, budget_sets: int) -> str:
    lines = [
        "# Benchmark tasks",
        "",
        "Candidate steer tasks whose answer is not known in advance, scored by the non-RL baselines and, where",
        "the chain is small, the exact oracles. Written by:",
        "",
        f"    {command}",
        "",
        f"Monte-Carlo: {n_cells} cells a set (seed 0; a baseline's best set re-estimated on fresh cells); beam,",
        f"annealing and random search get {budget_sets} sets ({budget_sets * n_cells:,} simulated cells) each, per",
        "MAX_PERTURB; greedy runs to the largest MAX_PERTURB (its value at each size is its search estimate). AEON",
        "control only runs on binary worlds (the published worlds have multi-valued genes). \"exact\" is the exact",
        "time-0 optimum (absorbing chain, myeloid only); \"dynamic\" the exact optimum over timed policies with",
        f"pulsed perturbations vs the best pulsed set at time 0. A trap: greedy at least {TRAP_GAP} below the best",
        f"known set at some MAX_PERTURB. Tasks whose target is already the default outcome (p >= {DEFAULT_CUTOFF}) are",
        "dropped. Values are success probabilities of the target fate. On timing tasks the greedy, best and",
        "exact columns score permanent time-0 sets (the static task); the task itself is the pulsed one, whose",
        "reference is the dynamic optimum. On rescue tasks a set may not touch a background gene (as in the",
        "environment); inputs (signals) may be perturbed, as in the environment.",
        "",
        "| task | world | start / condition / background / pulse | target | MAX_PERTURB | default p | greedy | best known (by) | AEON | exact | trap (gap) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    kept = [t for t in tasks if t.result["p_default"] < DEFAULT_CUTOFF]
    for t in kept:
        r = t.result
        setting = " / ".join([
            t.start or "default start", t.condition or "default condition",
            ", ".join(t.background) or "no background", f"pulse {t.pulse_stages}" if t.pulse_stages else "permanent",
        ])
        greedy = ", ".join(f"{r['greedy'][k]:.2f}" for k in t.ks)
        best = ", ".join(f"{v['value']:.2f}" for v in r["best"].values())
        by = sorted({v["by"] for v in r["best"].values()})
        aeon = ", ".join("-" if v["value"] is None else f"{v['value']:.2f}" for v in r["aeon"].values()) or "n/a"
        exact = ", ".join(f"{v['value']:.2f}" for v in r["exact"].values()) or "n/a"
        if "dynamic" in r:
            exact += "; dynamic " + ", ".join(f"{v['value']:.2f} vs {v['static']:.2f}" for v in r["dynamic"].values())
        trap = f"**yes** ({r['trap_gap']:.2f})" if r["trap"] else f"no ({r['trap_gap']:.2f})"
        lines.append(
            f"| {t.key} | {Path(t.world).name.replace('.world.yaml', '')} | {setting} | {t.target} | "
            f"{', '.join(map(str, t.ks))} | {r['p_default']:.2f} | {greedy} | {best} ({', '.join(by)}) | {aeon} | {exact} | {trap} |"
        )
    lines += ["", "Best known sets (largest MAX_PERTURB) and greedy's path:", ""]
    for t in kept:
        r = t.result
        kmax = max(t.ks)
        lines.append(f"- {t.key}: best {_fmt_set(r['best'][kmax]['set'])} ({r['best'][kmax]['value']:.2f}); greedy "
                     f"{_fmt_set(r['greedy_set'])}, by size {r['greedy_by_size']}; default {r['default']}")
    dropped = [t for t in tasks if t.result["p_default"] >= DEFAULT_CUTOFF]
    if dropped:
        lines += ["", "Dropped (target already the default outcome): " + ", ".join(t.key for t in dropped)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="experiments/benchmark/TASKS.md")
    ap.add_argument("--json", default="", help="also write the raw results here")
    ap.add_argument("--cells", type=int, default=1000, help="Monte-Carlo cells per set")
    ap.add_argument("--budget-sets", type=int, default=150, help="sets per search baseline and MAX_PERTURB")
    ap.add_argument("--only", default="", help="comma-separated task keys (default: all)")
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    tasks = candidates()
    if args.only:
        tasks = [t for t in tasks if t.key in args.only.split(",")]
    with Pool(args.processes) as pool:
        tasks = pool.map(_run, [(t, args.cells, args.budget_sets) for t in tasks], chunksize=1)
    command = " ".join([".venv/bin/python", "experiments/benchmark/discover_tasks.py"] + sys.argv[1:])
    Path(args.out).write_text(markdown(tasks, command, args.cells, args.budget_sets))
    if args.json:
        Path(args.json).write_text(json.dumps({t.key: t.result for t in tasks}, indent=1, default=str))


if __name__ == "__main__":
    main()
