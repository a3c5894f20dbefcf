"""Perturbation phenotypes the built-in worlds must reproduce (docs: biology.md)."""

import numpy as np
import pytest

from envs import load_world
from envs.formats import parse_bnet
from envs.network import Pins, codes_to_states, states_to_codes
from envs.simulate import monte_carlo_fates

N_CELLS = 1500


@pytest.fixture(scope="module")
def tcell():
    return load_world("tcell")


@pytest.fixture(scope="module")
def myeloid():
    return load_world("myeloid")


def fates(world, perturbations=(), seed=0):
    return monte_carlo_fates(world, list(perturbations), n_cells=N_CELLS, seed=seed).probabilities


def t_fate(p: dict) -> float:
    """Probability of a T-lineage outcome past commitment."""
    return p["DN2b"] + p["DN3"]


# ---- T-cell specification ---------------------------------------------------------------


def test_tcell_world_shape(tcell):
    assert tcell.stages == ("ETP", "DN2a", "DN2b", "DN3")
    assert {"B_like", "Myeloid", "NK_like"} <= set(tcell.fates)
    assert 15 <= tcell.n_genes <= 30
    assert tcell.inputs == ("Delta",)
    start = tcell.start_state("ETP")
    assert tcell.fate_labels[tcell.classify(start)[0]] == "ETP"
    on = {g for g, v in zip(tcell.genes, start) if v}
    assert {"Delta", "Spi1", "Lmo2", "Lyl1", "Kit"} <= on
    assert not on & {"Bcl11b", "Ptcra", "Rag1", "Cd3e"}


def test_unperturbed_notch_on_reaches_dn3(tcell):
    p = fates(tcell)
    assert p["DN3"] >= 0.8
    assert p["B_like"] == 0.0 and p["aberrant"] == 0.0
    # Uncommitted cells keep NK potential: some divert, so the outcome is not deterministic.
    assert 0.02 <= p["NK_like"] <= 0.2


@pytest.mark.parametrize("gene", ["Delta", "Notch1"])
def test_no_notch_gives_b_or_myeloid_not_t(tcell, gene):
    p = fates(tcell, [(gene, "ko")])
    assert t_fate(p) <= 0.05
    assert p["B_like"] + p["Myeloid"] >= 0.8
    # Radtke 1999: B cells dominate; the myeloid branch is a genuine minority outcome.
    assert p["B_like"] > p["Myeloid"] >= 0.05


def test_tcf7_knockout_has_no_t_fate(tcell):
    p = fates(tcell, [("Tcf7", "ko")])
    assert t_fate(p) <= 0.02


def test_gata3_knockout_arrests_before_dn2(tcell):
    p = fates(tcell, [("Gata3", "ko")])
    assert t_fate(p) <= 0.02
    assert p["DN2a"] <= 0.02
    assert p["ETP"] >= 0.8


def test_bcl11b_knockout_arrests_uncommitted_and_turns_nk_like(tcell):
    p = fates(tcell, [("Bcl11b", "ko")])
    assert p["DN3"] == 0.0 and p["DN2b"] == 0.0
    assert p["NK_like"] + p["DN2a"] >= 0.8


def test_pu1_overexpression_diverts_to_myeloid(tcell):
    p = fates(tcell, [("Spi1", "oe")])
    assert t_fate(p) <= 0.02
    assert p["Myeloid"] >= 0.8


def test_id2_overexpression_gives_nk_like_not_dn3(tcell):
    p = fates(tcell, [("Id2", "oe")])
    assert p["DN3"] <= 0.02
    assert p["NK_like"] >= 0.8


def test_hes1_knockout_lets_myeloid_diversion_compete(tcell):
    # De Obaldia 2013: without Hes1, C/EBP-alpha diverts Notch-signalled progenitors.
    p = fates(tcell, [("Hes1", "ko")])
    assert p["Myeloid"] >= 0.5
    assert 0.05 <= p["DN3"] <= 0.45


def test_commitment_survives_loss_of_notch(tcell):
    net = tcell.network
    rng = np.random.default_rng(2)
    cells = np.repeat(tcell.start_state()[None], 300, axis=0)
    cells = net.run_to_attractor(cells, rng, Pins.empty(len(cells), net.n_genes))
    dn3 = cells[tcell.classify(cells) == tcell.fate_index("DN3")]
    assert len(dn3) > 200
    pins = Pins.from_sets(net, [[("Delta", "ko")]] * len(dn3))
    after = net.run_to_attractor(pins.apply(dn3), rng, pins)
    assert (tcell.classify(after) == tcell.fate_index("DN3")).all()


def test_stages_are_passed_in_order(tcell):
    net = tcell.network
    rng = np.random.default_rng(5)
    n_cells, n_updates = 600, 40 * net.n_genes
    cells = np.repeat(tcell.start_state()[None], n_cells, axis=0)
    pins = Pins.empty(n_cells, net.n_genes)
    first = {s: np.full(n_cells, -1) for s in tcell.stages}
    for t in range(n_updates):
        label = tcell.classify(cells)
        for stage in tcell.stages:
            hit = (label == tcell.fate_index(stage)) & (first[stage] < 0)
            first[stage][hit] = t
        cells = net.step(cells, rng, pins)
    reached = first["DN3"] >= 0
    assert reached.mean() >= 0.75
    ordered = (
        (first["ETP"] == 0)
        & (first["DN2a"] > 0)
        & (first["DN2a"] < first["DN2b"])
        & (first["DN2b"] < first["DN3"])
    )
    assert ordered[reached].mean() >= 0.8


def reachable_count(world, perturbations=()) -> int:
    """Number of states the async dynamics can visit from the default start (bitmask BFS)."""
    net = world.network
    pins = Pins.from_sets(net, [list(perturbations)])
    known = states_to_codes(pins.apply(world.start_state()[None]))
    frontier = known
    genes = np.arange(net.n_genes)
    while len(frontier):
        states = np.repeat(codes_to_states(frontier, net.n_genes), net.n_genes, axis=0)
        which = np.tile(genes, len(frontier))
        states[np.arange(len(states)), which] = net.next_values(states, which)
        new = np.setdiff1d(states_to_codes(pins.apply(states)), known)
        known = np.union1d(known, new)
        frontier = new
    return len(known)


@pytest.mark.parametrize("perturbations", [(), (("Hes1", "ko"),), (("Delta", "ko"),)])
def test_reachable_state_space_stays_small_for_the_exact_oracle(tcell, perturbations):
    assert 1 <= reachable_count(tcell, perturbations) < 50_000


# ---- myeloid progenitors (Krumsiek 2011) ---------------------------------------------------

MYELOID_FATES = ("Ery", "Mk", "Mo", "Neu")


def test_myeloid_unperturbed_reaches_all_four_fates(myeloid):
    p = fates(myeloid)
    for fate in MYELOID_FATES:
        assert p[fate] > 0.05, fate


@pytest.mark.parametrize(
    "perturbation, removed, kept",
    [
        (("Pu.1", "ko"), ("Mo", "Neu"), ("Ery", "Mk")),
        (("Gata1", "ko"), ("Ery", "Mk"), ("Mo", "Neu")),
        (("Fli1", "ko"), ("Mk",), ("Ery",)),
        (("EKLF", "ko"), ("Ery",), ("Mk",)),
        (("Gata1", "oe"), ("Mo", "Neu"), ("Ery", "Mk")),
        (("Pu.1", "oe"), ("Ery", "Mk"), ("Mo", "Neu")),
    ],
)
def test_myeloid_perturbations_remove_fates(myeloid, perturbation, removed, kept):
    p = fates(myeloid, [perturbation])
    for fate in removed:
        assert p[fate] <= 0.01, fate
    for fate in kept:
        assert p[fate] > 0.05, fate


# ---- bnet round trip -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tcell", "myeloid"])
def test_bnet_round_trip_keeps_truth_tables(name):
    world = load_world(name)
    again = parse_bnet(world.network.to_bnet())
    assert again.genes == world.network.genes
    rng = np.random.default_rng(0)
    states = rng.integers(0, 2, size=(4000, world.n_genes), dtype=np.uint8)
    assert (again.sync_update(states) == world.network.sync_update(states)).all()
    assert sorted(again.edges) == sorted(world.network.edges)
