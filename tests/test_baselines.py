"""Non-RL steer baselines: budgets kept, values re-scored independently, greedy's trap, bad input."""

import dataclasses
import math

import pytest

from algorithms.baselines import BASELINES, run_baseline
from envs import BooleanNetwork, UserInputError, load_world, make_world
from envs.oracle import best_perturbations, exact_fates, sets_of_size
from envs.simulate import monte_carlo_fates

N_CELLS = 200


@pytest.fixture(scope="module")
def myeloid():
    return load_world("myeloid")


def trap_world():
    """X, Y and W each need both inputs A and B; the target needs all three on.

    A single overexpression changes nothing (P = 0 for every set of one), A and B
    together give certainty: greedy stops at size 0, the optimum at size 2 is 1.
    """
    net = BooleanNetwork.from_rules({"A": "A", "B": "B", "X": "A & B", "Y": "A & B", "W": "A & B"})
    return make_world("trap", net, {"on": {"X": 1, "Y": 1, "W": 1}, "off": {"X": 0}}, {"zero": []})


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_stays_within_max_perturb_and_budget(myeloid, name):
    budget = 30 * N_CELLS
    r = run_baseline(name, myeloid, "Ery", 2, budget_cells=budget, n_cells=N_CELLS)
    assert r.name == name and r.budget_cells == budget
    assert len(r.best) <= 2 and len({g for g, _ in r.best}) == len(r.best)
    assert r.used_cells <= budget
    assert r.used_cells == r.sets_evaluated * N_CELLS  # each new set costs n_cells, exact ones too
    assert r.exact and r.stderr == 0.0 and r.recheck_cells == 0
    values = [v for _, v in r.trace]
    assert values == sorted(values) and r.trace[-1] == (r.used_cells, r.search_value)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_exact_value_equals_the_oracle_rescore(myeloid, name):
    r = run_baseline(name, myeloid, "Mo", 2, budget_cells=40 * N_CELLS, n_cells=N_CELLS)
    assert r.value == exact_fates(myeloid, list(r.best)).probabilities["Mo"]


@pytest.mark.parametrize("name", ["random", "greedy", "beam", "annealing"])
def test_monte_carlo_value_is_a_fresh_estimate_that_matches_an_independent_one(myeloid, name):
    n = 400
    # A state cap of 1 makes every set fall back to Monte-Carlo; a copy of the world, so no
    # exact answer cached for the original stands in.
    world = dataclasses.replace(myeloid)
    r = run_baseline(name, world, "Neu", 1, budget_cells=8 * n, n_cells=n, seed=3, max_states=1)
    assert not r.exact and r.recheck_cells == 4 * n and "fresh" in r.scoring
    other = monte_carlo_fates(myeloid, list(r.best), n_cells=4 * n, seed=1234)
    se = math.hypot(r.stderr, other.stderr["Neu"])
    assert abs(r.value - other.probabilities["Neu"]) <= 4 * se + 1e-9
    exact = exact_fates(myeloid, list(r.best)).probabilities["Neu"]
    assert abs(r.value - exact) <= 4 * max(r.stderr, math.sqrt(exact * (1 - exact) / (4 * n))) + 1e-9


@pytest.mark.parametrize("fate", ["Ery", "Neu"])
@pytest.mark.parametrize("k", [1, 2])
def test_greedy_reaches_the_exhaustive_optimum_on_myeloid(myeloid, fate, k):
    r = run_baseline("greedy", myeloid, fate, k, n_cells=N_CELLS, budget_cells=10**6)
    assert r.value == best_perturbations(myeloid, fate, k).optimum
    sizes = r.details["values_by_size"]
    assert sizes[0]["size"] == 0 and sizes[0]["value"] == exact_fates(myeloid).probabilities[fate]


def test_greedy_is_trapped_where_two_perturbations_only_help_together():
    world = trap_world()
    optimum = best_perturbations(world, "on", 2).optimum
    assert optimum == 1.0
    g = run_baseline("greedy", world, "on", 2, n_cells=N_CELLS)
    assert g.value == 0.0 < optimum and g.best == ()
    assert g.details["stopped"].startswith("no single addition improves")
    b = run_baseline("beam", world, "on", 2, n_cells=N_CELLS)
    assert b.value == 1.0 and set(b.best) == {("A", "overexpression"), ("B", "overexpression")}


def test_searches_are_seeded(myeloid):
    for name in ("random", "annealing"):
        a = run_baseline(name, myeloid, "Mk", 3, budget_cells=25 * N_CELLS, n_cells=N_CELLS, seed=5)
        b = run_baseline(name, myeloid, "Mk", 3, budget_cells=25 * N_CELLS, n_cells=N_CELLS, seed=5)
        assert (a.best, a.trace) == (b.best, b.trace)


def test_random_search_of_any_size(myeloid):
    r = run_baseline("random", myeloid, "Ery", 3, sizes="any", budget_cells=20 * N_CELLS, n_cells=N_CELLS)
    assert r.sets_evaluated == 20 and len(r.best) <= 3


def test_control_proposes_exactly_the_sets_that_guarantee_the_fate(myeloid):
    r = run_baseline("aeon_control", myeloid, "Ery", 2, n_cells=N_CELLS, budget_cells=10**6)
    certain = {
        tuple(sorted((myeloid.genes[g], kd) for g, kd in s))
        for size in range(3)
        for s in sets_of_size(myeloid.n_genes, ("knockout", "overexpression"), size)
        if exact_fates(myeloid, [(myeloid.genes[g], kd) for g, kd in s]).probabilities["Ery"] == 1.0
    }
    assert r.details["exact_mapping"] and r.details["proposals"] == r.sets_evaluated == len(certain)
    assert tuple(sorted(r.best)) in certain and r.value == 1.0 and r.reason == ""
    assert r.details["worst_scored"] == 1.0


def test_control_conservative_mapping_proposes_only_certain_sets(myeloid):
    r = run_baseline("aeon_control", myeloid, "Mo", 3, n_cells=N_CELLS, budget_cells=10**6, max_runs=0)
    assert r.details["exact_mapping"] is False and r.value == 1.0
    assert r.details["scored"] > 0 and r.details["worst_scored"] == 1.0


def test_control_within_a_small_budget_and_kinds(myeloid):
    r = run_baseline("aeon_control", myeloid, "Ery", 2, kinds=("knockout",), n_cells=N_CELLS, budget_cells=N_CELLS)
    assert r.used_cells <= N_CELLS and r.sets_evaluated == 1
    assert all(kd == "knockout" for _, kd in r.best) and r.value == 1.0


def test_control_without_a_guaranteeing_set_is_a_row_with_a_reason(myeloid):
    r = run_baseline("aeon_control", myeloid, "Ery", 1, n_cells=N_CELLS)
    assert math.isnan(r.value) and r.best == () and "no set of at most 1" in r.reason
    assert r.to_json()["value"] is None


def test_control_reports_what_it_cannot_express():
    net = BooleanNetwork.from_rules({"G_b1": "G_b1 | S", "G_b2": "G_b1 & S", "S": "S"})
    world = make_world("mv", net, {"high": {"G": 2}, "low": {"G": 0}}, {"zero": []}, genes={"G": ["G_b1", "G_b2"]})
    r = run_baseline("aeon_control", world, "high", 1, n_cells=N_CELLS)
    assert math.isnan(r.value) and "multi-valued" in r.reason
    slow = run_baseline("aeon_control", load_world("myeloid"), "Ery", 2, n_cells=N_CELLS, time_limit_s=1e-3)
    assert math.isnan(slow.value) and "time limit" in slow.reason


def test_bad_input_names_the_value(myeloid):
    with pytest.raises(UserInputError, match="'nope'.*greedy"):
        run_baseline("nope", myeloid, "Ery", 2)
    for budget in (0, -5):
        with pytest.raises(UserInputError, match=f"budget_cells.*{budget}"):
            run_baseline("greedy", myeloid, "Ery", 2, budget_cells=budget)
    for k in (0, 12):
        with pytest.raises(UserInputError, match=f"max_perturb.*{k}"):
            run_baseline("beam", myeloid, "Ery", k)
    with pytest.raises(UserInputError, match="'Tcell'"):
        run_baseline("random", myeloid, "Tcell", 2)
    with pytest.raises(UserInputError, match="width.*0"):
        run_baseline("beam", myeloid, "Ery", 2, width=0)
    with pytest.raises(UserInputError, match="sizes.*'some'"):
        run_baseline("random", myeloid, "Ery", 2, sizes="some")


def test_no_search_perturbs_a_gene_the_background_fixes():
    # PU.1 forced on: Ery is out of reach unless PU.1 could be knocked out again, which a rescue may not do
    world = load_world("myeloid").with_background(["Pu.1=oe"])
    assert best_perturbations(world, "Ery", 2).optimum == 0.0
    for name in ("random", "greedy", "beam", "annealing"):
        res = run_baseline(name, world, "Ery", 2, budget_cells=60_000, n_cells=1000)
        assert res.value == 0.0 and all(g != "Pu.1" for g, _ in res.best), name
