"""The Boolean engine: parsing, compilation, formats and dynamics."""

import re

import numpy as np
import pytest

from envs import BooleanNetwork, Pins, UserInputError, load_world
from envs.formats import parse_bnet, parse_sim_model, read_network
from envs.world import make_world, read_world, save_world


def brute_force(rule_fn, states):
    return np.array([rule_fn(*s) for s in states], dtype=np.uint8)


def test_compiled_rules_match_python_semantics():
    net = BooleanNetwork.from_rules(
        {"A": "A & !(B | C)", "B": "A or not C", "C": "(A and B) or (not A and not B)"}
    )
    states = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.uint8)
    nxt = net.sync_update(states)
    assert (nxt[:, 0] == brute_force(lambda a, b, c: a and not (b or c), states)).all()
    assert (nxt[:, 1] == brute_force(lambda a, b, c: a or not c, states)).all()
    assert (nxt[:, 2] == brute_force(lambda a, b, c: (a and b) or (not a and not b), states)).all()
    for g in range(3):
        genes = np.full(len(states), g)
        assert (net.next_values(states, genes) == nxt[:, g]).all()


def test_signed_edges_follow_literal_polarity():
    net = BooleanNetwork.from_rules({"A": "A & !B", "B": "A | (B & !A)"})
    edges = {(s, t): sign for s, t, sign in net.edges}
    assert edges[("A", "A")] == 1 and edges[("B", "A")] == -1
    assert edges[("A", "B")] == 0  # A acts both ways on B


@pytest.mark.parametrize(
    "rules, message",
    [
        ({"A": "A & Z"}, "unknown gene 'Z'"),
        ({"A": ""}, "empty rule"),
        ({"A": "(A & A"}, "missing ')'"),
        ({"A": "A &"}, "ends unexpectedly"),
        ({"A": "A $ A"}, "cannot parse"),
    ],
)
def test_bad_rules_give_one_line_errors(rules, message):
    with pytest.raises(UserInputError, match=re.escape(message)) as info:
        BooleanNetwork.from_rules(rules)
    assert "\n" not in str(info.value)


def test_bnet_duplicate_target_and_bad_line():
    with pytest.raises(UserInputError, match="duplicate target 'A'"):
        parse_bnet("A, A\nA, !A\n")
    with pytest.raises(UserInputError, match="line 2"):
        parse_bnet("A, A\nB A\n")


def test_bnet_round_trip_of_myeloid_world():
    world = load_world("myeloid")
    again = parse_bnet(world.network.to_bnet())
    rng = np.random.default_rng(0)
    states = rng.integers(0, 2, size=(256, world.n_genes)).astype(np.uint8)
    assert again.genes == world.genes
    assert (again.sync_update(states) == world.network.sync_update(states)).all()


def test_sim_model_reader_keeps_rules_and_skips_coupling_list():
    net = parse_sim_model("# header\nX = X and not Y\nY = \n# coupling list:\nX  Y  -1.0\n")
    assert net.genes == ("X", "Y")
    assert net.rules == ("X & !Y", "Y")


def test_pins_hold_genes_and_async_updates_one_gene():
    net = BooleanNetwork.from_rules({"A": "!A", "B": "!B", "C": "C"})
    rng = np.random.default_rng(0)
    states = np.zeros((500, 3), dtype=np.uint8)
    pins = Pins.from_sets(net, [[("A", "ko")]] * 500)
    out = net.step(states, rng, pins)
    assert (out[:, 0] == 0).all()
    changed = (out != states).sum(axis=1)
    assert changed.max() == 1
    # B flips only when B was the gene drawn: about a third of cells.
    assert 0.25 < out[:, 1].mean() < 0.42


def test_world_files_round_trip(tmp_path):
    net = BooleanNetwork.from_rules({"A": "A | B", "B": "!A"})
    world = make_world("toy", net, {"high": {"A": 1}, "low": {"A": 0, "B": 1}}, {"s": ["B"]})
    save_world(world, tmp_path / "toy")
    again = read_world(tmp_path / "toy")
    assert again.fates == world.fates and (again.signatures == world.signatures).all()
    assert (again.start_state("s") == world.start_state("s")).all()
    assert (load_world(str(tmp_path / "toy")).network.tables == net.tables).all()


def test_world_loading_errors_name_the_choices(tmp_path):
    with pytest.raises(UserInputError, match="valid choices: myeloid, tcell"):
        load_world("nonsense")
    with pytest.raises(UserInputError, match="valid choices: Ery, Mk, Mo, Neu"):
        load_world("myeloid").fate_index("Xyz")
    (tmp_path / "bad.bnet").write_text("A, B &\n")
    with pytest.raises(UserInputError, match="rule ends unexpectedly"):
        read_network(tmp_path / "bad.bnet")


def test_a_bnet_regulator_without_a_rule_is_a_free_input(tmp_path):
    (tmp_path / "free.bnet").write_text("A, B & !C\nC, A\n")
    net = read_network(tmp_path / "free.bnet")
    assert net.genes == ("A", "C", "B")
    assert net.constant_genes == ("B",)
    with pytest.raises(UserInputError, match="unknown gene 'B'"):
        BooleanNetwork.from_rules({"A": "B"})  # hand-written rules stay strict


def test_classify_needs_every_marker_and_calls_the_rest_aberrant():
    world = load_world("myeloid")
    for fate in world.fates:
        sig = world.signatures[world.fate_index(fate)]
        state = np.where(sig == -1, 0, sig).astype(np.uint8)
        assert world.fate_labels[world.classify(state[None])[0]] == fate
        markers = world.markers[world.fate_index(fate)]
        # Break one defining marker: no fate, however close the rest of the profile is.
        broken = state.copy()
        v = int(np.flatnonzero(markers != -1)[0])
        broken[v] = 1 - markers[v]
        assert world.classify(broken[None])[0] != world.fate_index(fate)
    all_on = np.ones((1, world.n_genes), dtype=np.uint8)
    assert world.fate_labels[world.classify(all_on)[0]] == "aberrant"
