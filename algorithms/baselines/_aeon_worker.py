"""AEON phenotype control in a child process, so the caller can cap its run time by killing it.

Run as a script (not imported as part of the package, which would pull in RLlib): reads one
JSON request on stdin (bnet, phenotype, excluded, start, size_limit, result_limit,
values, max_runs),
writes JSON lines on stdout as it goes (see `propose`).
"""

from __future__ import annotations

import itertools
import json
import sys


def hamming_ball(graph, start: dict[str, bool], radius: int):
    """The states within `radius` flips of `start`, as an AEON VertexSet."""
    import biodivine_aeon as aeon

    ctx = graph.symbolic_context()
    bdds = ctx.bdd_variable_set()
    # levels[j]: the states that differ from start in exactly j of the variables seen so far.
    levels = [bdds.mk_true()] + [bdds.mk_false()] * radius
    for name, value in start.items():
        var = ctx.find_network_bdd_variable(graph.find_network_variable(name))
        same, flip = bdds.mk_literal(var, value), bdds.mk_literal(var, not value)
        levels = [levels[0].l_and(same)] + [
            levels[j].l_and(same).l_or(levels[j - 1].l_and(flip)) for j in range(1, radius + 1)
        ]
    ball = levels[0]
    for level in levels[1:]:
        ball = ball.l_or(level)
    return aeon.VertexSet(ctx, ball)


def only_values(graph, found, values: list[bool]):
    """The part of `found` whose perturbed variables all take one of `values` (e.g. knockouts
    only), selected symbolically so a result limit counts only sets of the allowed kinds."""
    import biodivine_aeon as aeon

    if set(values) == {False, True}:
        return found
    ctx = graph.symbolic_context()
    bdds = ctx.bdd_variable_set()
    keep = found.to_bdd()
    for var, param in graph.perturbation_bdd_variables().items():
        state = ctx.find_network_bdd_variable(var)
        keep = keep.l_and(bdds.mk_literal(param, False).l_or(bdds.mk_literal(state, values[0])))
    return aeon.ColoredPerturbationSet(graph, keep)


def flipped_start(graph, found, start: dict[str, bool], flips: tuple[str, ...]):
    """The part of `found` whose sets move the start state by exactly `flips`: those
    variables pinned against their start value, every other pin agreeing with it."""
    import biodivine_aeon as aeon

    ctx = graph.symbolic_context()
    bdds = ctx.bdd_variable_set()
    keep = found.to_bdd()
    for var, param in graph.perturbation_bdd_variables().items():
        name = graph.get_network_variable_name(var)
        state = ctx.find_network_bdd_variable(var)
        if name in flips:
            keep = keep.l_and(bdds.mk_literal(param, True)).l_and(bdds.mk_literal(state, not start[name]))
        else:
            keep = keep.l_and(bdds.mk_literal(param, False).l_or(bdds.mk_literal(state, start[name])))
    return aeon.ColoredPerturbationSet(graph, keep)


def flip_sets(request: dict) -> "list[tuple[str, ...]]":
    """Every way a set of allowed kinds of at most size_limit pins can move the start."""
    movable = [v for v, on in request["start"].items() if (not on) in request["values"]]
    return [f for j in range(request["size_limit"] + 1) for f in itertools.combinations(movable, j)]


def propose(request: dict, emit) -> None:
    """AEON's guaranteed sets of at most size_limit pins, emitted run by run.

    Exact: one run per way the pins can move the start state (`flip_sets`), from that
    moved start, its answer restricted to the sets that move it so. When there are more
    than max_runs such ways, one run per size j from all states within j flips of the
    start, which asks for more than the task does (conservative). `emit` gets
    {"exact", "runs"} first, then {"proposals": [...]} after each run, then {"done": True},
    so a caller that stops this process early keeps what was found."""
    import biodivine_aeon as aeon

    network = aeon.BooleanNetwork.from_bnet(request["bnet"])
    graph = aeon.AsynchronousPerturbationGraph(network)
    phenotype = graph.mk_subspace_vertices(request["phenotype"])
    for outranking in request["excluded"]:  # states the world names after another fate
        phenotype = phenotype.minus(graph.mk_subspace_vertices(outranking))
    start, k, limit = request["start"], request["size_limit"], request["result_limit"]
    flips = flip_sets(request)
    exact = len(flips) <= request["max_runs"]
    emit({"exact": exact, "runs": len(flips) if exact else k + 1})
    found_so_far = 0
    for item in flips if exact else range(k + 1):
        if found_so_far >= limit:
            break
        if exact:
            state = {v: (not b) if v in item else b for v, b in start.items()}
            initial, size = graph.mk_subspace_vertices(state), k
        else:
            initial, size = hamming_ball(graph, start, item), item
        found = aeon.Control.phenotype_permanent(
            graph, phenotype, oscillation_type="forbidden", size_limit=size, initial_states=initial
        )
        found = only_values(graph, found, request["values"])
        found = flipped_start(graph, found, start, item) if exact else found.select_by_size(size=size, up_to=False)
        good = found.select_by_size(size=k, up_to=True).select_by_robustness(threshold=1.0, result_limit=limit - found_so_far)
        found_so_far += len(good)
        emit({"proposals": [dict(m[0].perturbed_named_dict()) for m in good]})
    emit({"done": True})


def _emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    propose(json.load(sys.stdin), _emit)
