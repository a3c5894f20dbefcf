"""The exact oracle: chain solution against hand calculations and Monte-Carlo, and the searches."""

import dataclasses
import math

import numpy as np
import pytest

import envs.markov as markov
from envs import BooleanNetwork, UserInputError, load_world, make_world
from envs.oracle import (
    bayes_optimal_accuracy,
    best_perturbations,
    exact_fates,
    fate_distribution,
)
from envs.simulate import monte_carlo_fates


@pytest.fixture(scope="module")
def myeloid():
    return load_world("myeloid")


def commit_world():
    """A toggle switch whose A arm needs a slow input C: P(A) = 1/4, P(B) = 3/4 from 000.

    From 000 each gene is updated with probability 1/3: A stays off (C is off), B turns
    on (then 010 -> 011, a B fixed point), C turns on (001). From 001, A on gives the A
    fixed point 101, B on gives 011, C is a self-loop: 1/2 each. So P(A) = 1/2 * 1/2.
    """
    net = BooleanNetwork.from_rules({"A": "C & !B", "B": "!A", "C": "1"})
    return make_world(
        "commit", net, {"Aon": {"A": 1, "B": 0}, "Bon": {"A": 0, "B": 1}}, {"zero": []}
    )


def oscillator_world():
    """A = !A, B = A: all four states form one cyclic attractor.

    With the self-loops (each gene has probability 1/2; B's update is a no-op in 00 and
    11, A's never is) the stationary law is 00: 1/3, 10: 1/6, 11: 1/3, 01: 1/6. A chain
    that dropped self-loops would give 1/4 each.
    """
    net = BooleanNetwork.from_rules({"A": "!A", "B": "A"})
    return make_world(
        "osc", net, {"both": {"A": 1, "B": 1}, "none": {"A": 0, "B": 0}}, {"zero": []}
    )


def assert_agrees(exact, mc, n_cells, z=4.0):
    for fate, p in exact.probabilities.items():
        se = math.sqrt(p * (1 - p) / n_cells)
        assert abs(p - mc.probabilities[fate]) <= z * se + 1e-9, (fate, p, mc.probabilities[fate])


@pytest.mark.parametrize(
    "perturbations",
    [(), [("Cebpa", "knockout")], [("Gata1", "overexpression")], [("Gata2", "ko"), ("Gfi1", "ko")]],
)
def test_exact_matches_monte_carlo_on_myeloid(myeloid, perturbations):
    exact = exact_fates(myeloid, perturbations)
    assert exact.method.startswith("exact") and all(v == 0 for v in exact.stderr.values())
    assert sum(exact.probabilities.values()) == pytest.approx(1.0, abs=1e-12)
    mc = monte_carlo_fates(myeloid, perturbations, n_cells=4000, seed=7)
    assert_agrees(exact, mc, 4000)


def test_hand_computed_absorption_with_self_loops():
    world = commit_world()
    p = exact_fates(world).probabilities
    assert p["Aon"] == pytest.approx(0.25, abs=1e-12)
    assert p["Bon"] == pytest.approx(0.75, abs=1e-12)
    # Knocking out B leaves only the A fixed point; overexpressing A pins the start to 100.
    assert exact_fates(world, [("B", "knockout")]).probabilities["Aon"] == pytest.approx(1.0)
    assert exact_fates(world, [("A", "overexpression")]).probabilities["Aon"] == pytest.approx(1.0)


@pytest.mark.parametrize("solver", ["dense", "sparse_lu", "power"])
def test_cyclic_attractor_split_by_stationary_law_with_self_loops(monkeypatch, solver):
    if solver != "dense":
        monkeypatch.setattr(markov, "DENSE_SOLVE", 0)
    if solver == "power":
        monkeypatch.setattr(markov, "DIRECT_LIMIT", 0)
    world = oscillator_world()
    dist = exact_fates(world)
    assert dist.probabilities["both"] == pytest.approx(1 / 3, abs=1e-12)
    assert dist.probabilities["none"] == pytest.approx(1 / 3, abs=1e-12)
    assert dist.probabilities["aberrant"] == pytest.approx(1 / 3, abs=1e-12)
    assert_agrees(dist, monte_carlo_fates(world, n_cells=4000, seed=3), 4000)


def test_single_gene_oscillator():
    net = BooleanNetwork.from_rules({"A": "!A"})
    world = make_world("blink", net, {"on": {"A": 1}, "off": {"A": 0}}, {"zero": []})
    p = exact_fates(world).probabilities
    assert p["on"] == pytest.approx(0.5) and p["off"] == pytest.approx(0.5)


def test_sorted_array_search_matches_dense_scratch(monkeypatch, myeloid):
    # Networks over DENSE_GENES genes use sorted arrays; force that path on a fresh copy.
    monkeypatch.setattr(markov, "DENSE_GENES", 0)
    copy = dataclasses.replace(
        myeloid, network=BooleanNetwork.from_rules(dict(zip(myeloid.genes, myeloid.network.rules)))
    )
    for perturbations in [(), [("Gata1", "oe")], [("Pu.1", "ko"), ("Fli1", "oe")]]:
        a = exact_fates(myeloid, perturbations).probabilities
        b = exact_fates(copy, perturbations).probabilities
        assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("solver", ["dense", "series", "gmres"])
def test_linear_solvers_agree(monkeypatch, myeloid, solver):
    dense, steps, settle = {"dense": (10**6, 2000, 10**6), "series": (0, 2000, 0), "gmres": (0, 0, 0)}[solver]
    monkeypatch.setattr(markov, "DENSE_SOLVE", dense)
    monkeypatch.setattr(markov, "SERIES_STEPS", steps)
    monkeypatch.setattr(markov, "SETTLE_MIN", settle)
    code = int(sum(1 << i for i, v in enumerate(myeloid.start_state()) if v))
    probs, _ = markov.fate_probabilities(myeloid.network, myeloid.classify, 5, code)
    assert probs == pytest.approx([0.25, 0.25, 0.125, 0.375, 0.0], abs=1e-9)
    pinned = 1 << myeloid.network.gene_index("Gata2")
    probs, _ = markov.fate_probabilities(myeloid.network, myeloid.classify, 5, code, pinned, pinned)
    assert probs == pytest.approx(list(exact_fates(myeloid, [("Gata2", "oe")]).probabilities.values()), abs=1e-9)


def test_monte_carlo_fallback_past_the_state_cap(myeloid):
    # A fresh copy: answers already known exactly are served from the cache whatever the cap.
    myeloid = dataclasses.replace(myeloid)
    with pytest.raises(UserInputError, match="reachable states"):
        exact_fates(myeloid, max_states=5)
    dist = fate_distribution(myeloid, max_states=5, n_cells=500)
    assert dist.method.startswith("monte-carlo") and dist.n_samples == 500
    assert sum(dist.probabilities.values()) == pytest.approx(1.0)
    assert fate_distribution(myeloid).method.startswith("exact")


@pytest.mark.parametrize("k, n_sets", [(1, 1 + 11 * 2), (2, 1 + 11 * 2 + 55 * 4)])
def test_best_perturbations_for_monocytes(myeloid, k, n_sets):
    result = best_perturbations(myeloid, "Mo", k)
    assert result.exact and result.n_sets_evaluated == n_sets
    assert result.optimum >= result.baseline["Mo"]
    assert result.optimum == result.best[0]["probability"]
    probs = [b["probability"] for b in result.best]
    assert probs == sorted(probs, reverse=True)
    best_set = [tuple(p) for p in result.best[0]["perturbations"]]
    assert result.optimum == exact_fates(myeloid, best_set).probabilities["Mo"]
    assert 1 <= len(best_set) <= k
    mc = monte_carlo_fates(myeloid, best_set, n_cells=4000, seed=11)
    se = math.sqrt(result.optimum * (1 - result.optimum) / 4000)
    assert abs(mc.probabilities["Mo"] - result.optimum) <= 4 * se + 1e-9
    js = result.to_json()
    assert {"baseline", "best", "optimum", "exact", "method", "target", "max_perturb"} <= set(js)


def test_ties_prefer_fewer_perturbations():
    result = best_perturbations(commit_world(), "Aon", 2)
    # B knockout alone already gives certainty; supersets that also reach 1 rank after it.
    assert result.best[0]["perturbations"] in ([["B", "knockout"]], [["A", "overexpression"]])
    assert result.optimum == pytest.approx(1.0)
    assert all(len(b["perturbations"]) >= 1 for b in result.best[1:3])


def test_beam_search_is_a_lower_bound(myeloid):
    exhaustive = best_perturbations(myeloid, "Ery", 2)
    searched = best_perturbations(myeloid, "Ery", 2, exhaustive_limit=30, beam_width=3)
    assert "beam" in searched.method
    # A searched result is exact only where it found certain success, which nothing beats.
    assert searched.exact == (searched.optimum >= 1.0)
    assert searched.n_sets_evaluated < exhaustive.n_sets_evaluated
    assert searched.optimum <= exhaustive.optimum + 1e-12


@pytest.mark.parametrize(
    "kwargs",
    [{"target": "Platelet"}, {"target": "other"}, {"target": "Mo", "kinds": ["silence"]}, {"target": "Mo", "max_perturb": 99}],
)
def test_bad_requests_raise_user_errors(myeloid, kwargs):
    kwargs = {"max_perturb": 1, **kwargs}
    with pytest.raises(UserInputError):
        best_perturbations(myeloid, **kwargs)


def test_unknown_gene_raises(myeloid):
    with pytest.raises(UserInputError, match="Gata9"):
        exact_fates(myeloid, [("Gata9", "ko")])


def test_bayes_optimal_accuracy_by_hand():
    # Size 0 (weight 1/2): best guess B, right 3/4 of the time; every single knockout
    # (weight 1/6 each) makes the fate certain. 1/2 * 3/4 + 1/2 * 1 = 7/8.
    world = commit_world()
    exact = bayes_optimal_accuracy(world, 1, kinds=("knockout",))
    assert exact["exact"] and exact["optimum"] == pytest.approx(7 / 8)
    sampled = bayes_optimal_accuracy(world, 1, kinds=("knockout",), exhaustive_limit=0, n_sample_sets=20)
    assert not sampled["exact"] and sampled["optimum"] == pytest.approx(7 / 8)


def test_bayes_optimum_bounds_on_myeloid(myeloid):
    acc = bayes_optimal_accuracy(myeloid, 2)
    baseline = max(exact_fates(myeloid).probabilities.values())
    assert acc["exact"] and acc["stderr"] == 0.0
    assert baseline <= 1.0 and 1 / 5 <= acc["optimum"] <= 1.0
    # Matches a direct enumeration with the sampling scheme's weights.
    genes = myeloid.genes
    total = 0.0
    for size, sets in [(0, [()]), (1, [((g, k),) for g in genes for k in ("ko", "oe")])]:
        total += np.mean([max(exact_fates(myeloid, s).probabilities.values()) for s in sets]) / 3
    pairs = [
        ((a, ka), (b, kb))
        for i, a in enumerate(genes)
        for b in genes[i + 1 :]
        for ka in ("ko", "oe")
        for kb in ("ko", "oe")
    ]
    total += np.mean([max(exact_fates(myeloid, s).probabilities.values()) for s in pairs]) / 3
    assert acc["optimum"] == pytest.approx(total, abs=1e-12)


def test_naive_reference_agrees_and_bench_reports(myeloid):
    from tournament.cli.bench.oracle_bench import _naive_fates, bench_oracle

    for perturbations in [[("Gata1", "overexpression")], [("Cebpa", "knockout"), ("Fli1", "knockout")]]:
        naive = _naive_fates(myeloid, perturbations)
        exact = exact_fates(myeloid, perturbations).probabilities
        assert naive == pytest.approx(exact, abs=1e-6)
    (row,) = bench_oracle(max_k=(1,), naive_sample=1)
    assert row["sets_evaluated"] == 23 and row["exact"] and row["seconds"] > 0
    assert row["speedup_vs_naive"] > 0 and row["vs_reference_260s"] is None
