"""An established control method as a baseline: AEON's phenotype control (biodivine-aeon).

Beneš et al., "Phenotype control of partially specified Boolean networks" (CMSB 2023),
as `biodivine_aeon.Control.phenotype_permanent`: the perturbations (variables pinned for
good, from the start) under which every attractor that the asynchronous dynamics can
reach lies inside a phenotype. The phenotype is the target fate's defining markers (a
subspace) less the states that also match a fate that outranks it (a world names a
state after its best-ranked matching fate), so a proposal guarantees the fate: success
probability 1 in the chain, the strongest claim a set can make. AEON only proposes sets; each is scored by the same
evaluator as the search baselines, within the same cell budget (`common`).

Mapping the task, and what it cannot say:
- AEON's initial states are states, while a time-0 perturbation changes the start state;
  given the start state alone, a perturbation that contradicts it leaves no initial state
  and passes vacuously. So AEON runs once per way the allowed pins can move the start (a
  set of variables pinned against their start value, at most max_perturb of them), from
  that moved start, keeping only the sets that move it exactly so: the task's question,
  exactly. Where that takes more than `max_runs` runs (large networks), it runs once per
  size j from every state within j flips of the start, which asks for success from more
  states than the task does: it may then miss a set the task accepts, never the reverse
  (`details["exact_mapping"]` says which was used).
- It proposes only sets that guarantee the fate; where the best set falls short of 1 it
  proposes nothing, and the row says so (value NaN, with the reason).
- Multi-valued genes (AEON would pin single bits of the thermometer code) and update
  schemes other than asynchronous are rows with a reason, not a crash.
AEON runs in a child process that is killed after `time_limit_s`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from envs.boolean_rules import tokenize
from envs.network import KNOCKOUT, OVEREXPRESSION
from envs.world import World

from algorithms.baselines.common import OutOfBudget, Scorer

TIME_LIMIT_S = 60.0
MAX_RUNS = 300  # AEON runs for the exact start mapping; past it, the Hamming-ball approximation
_WORKER = Path(__file__).with_name("_aeon_worker.py")
_OPERATORS = set("()!&|")
_CONSTANTS = {"0": "false", "1": "true"}


def aeon_bnet(world: World) -> tuple[str, list[str]]:
    """The world's network as bnet text with variables renamed v0, v1, ... (AEON's parser
    rejects names such as Pu.1 or Nkx2-5), and the AEON name of each variable."""
    names = [f"v{i}" for i in range(world.network.n_genes)]
    rename = dict(zip(world.variables, names))
    lines = ["targets, factors"]
    for var, rule in zip(world.variables, world.network.rules):
        tokens = tokenize(rule, where=f"rule of {var}")
        text = " ".join(t if t in _OPERATORS else _CONSTANTS.get(t) or rename[t] for t in tokens)
        lines.append(f"{rename[var]}, {text}")
    return "\n".join(lines) + "\n", names


def aeon_control(
    world, target: str, max_perturb: int, *, time_limit_s: float = TIME_LIMIT_S, max_runs: int = MAX_RUNS, **kw
):
    """AEON phenotype control's sets of at most max_perturb genes, each scored; the best one.

    Keywords as for the search baselines (`common.Scorer`). Only sets of the allowed
    `kinds` are asked for; at most budget_cells / n_cells of them are scored,
    smallest first, as AEON lists them.
    """
    score = Scorer("aeon_control", world, target, max_perturb, **kw)
    w = score.world
    details: dict = {"library": "biodivine-aeon", "method": "Control.phenotype_permanent (oscillation forbidden)"}
    if w.is_multivalued:
        return score.finish(details, reason="multi-valued genes: AEON would pin single bits of a gene's level code")
    if w.scheme != "async":
        return score.finish(details, reason=f"AEON controls asynchronous dynamics; world {w.name} uses {w.scheme!r} updates")
    bnet, names = aeon_bnet(w)
    start = w.start_state(score.start, score.condition)
    # World.classify's ranking: more markers first, then declaration order.
    rank = w.care.sum(axis=1) * (len(w.fates) + 1) + (len(w.fates) - np.arange(len(w.fates)))

    def subspace(f: int) -> dict[str, bool]:
        return {names[v]: bool(w.markers[f, v]) for v in range(len(names)) if w.care[f, v]}

    request = {
        "bnet": bnet,
        "phenotype": subspace(score.t),
        # A state that also matches a fate that outranks the target (more markers) is named after that fate.
        "excluded": [subspace(f) for f in range(len(w.fates)) if rank[f] > rank[score.t]],
        "start": {name: bool(b) for name, b in zip(names, start)},
        "size_limit": score.k,
        "result_limit": score.budget // score.n_cells,
        "values": sorted({kd == OVEREXPRESSION for kd in score.kinds}),
        "max_runs": max_runs,
    }
    lines, finished, failure = _run_worker(request, time_limit_s)
    head = lines[0] if lines else {}
    proposals = sorted((p for m in lines for p in m.get("proposals", ())), key=len)
    details |= {"exact_mapping": head.get("exact"), "aeon_runs": head.get("runs"), "aeon_finished": finished}
    if failure and not proposals:
        return score.finish(details, reason=failure)
    var_gene = {names[vs[0]]: g for g, vs in enumerate(w.gene_vars)}
    sets, dropped = [], 0
    for p in proposals:
        moves = tuple(sorted((var_gene[v], OVEREXPRESSION if on else KNOCKOUT) for v, on in p.items()))
        if (len(moves) > score.k or any(kd not in score.kinds for _, kd in moves)
                or any(g not in score.genes for g, _ in moves)):  # a background gene stays as the mutation holds it
            dropped += 1
            continue
        sets.append(moves)
    details |= {"proposals": len(proposals), "dropped": dropped}
    try:
        for s in sets:
            score(s)
    except OutOfBudget:
        pass
    details["scored"] = len(score.values)
    if score.values:
        details["worst_scored"] = min(score.values.values())  # a guarantee that held gives 1 here
    if failure:
        details["stopped"] = failure  # the sets AEON listed before it was stopped still count
    reason = ""
    if not sets:
        reason = failure or (
            f"AEON found no set of at most {score.k} perturbations that guarantees {target} "
            "(every reachable attractor inside its markers)"
            + ("" if head.get("exact") else "; from all states within max_perturb flips of the start, a conservative mapping")
        )
    return score.finish(details, reason=reason)


def _run_worker(request: dict, time_limit_s: float) -> tuple[list[dict], bool, str]:
    """The worker's JSON lines, whether it finished, and why not (killed at the time limit:
    the lines written by then still count)."""
    proc = subprocess.Popen(
        [sys.executable, str(_WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    failure = ""
    try:
        out, err = proc.communicate(json.dumps(request), timeout=time_limit_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        failure = f"AEON ran past its time limit of {time_limit_s:g} s"
    lines = []
    for line in out.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by the kill
    finished = bool(lines) and lines[-1].get("done", False)
    if not failure and proc.returncode != 0:
        failure = "AEON failed: " + (err.strip().splitlines() or ["no message"])[-1]
    return lines, finished, failure
