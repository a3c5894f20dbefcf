"""ODE worlds: BoolODE's production term, determinism, the Boolean limit, graded perturbations,
bad input, the gymnasium env over them and the seed's trajectory metrics."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import BooleanNetwork, UserInputError, load_world
from envs.attractors import all_attractors
from envs.ode import OdeParams, UnstableStep, ode_world, simulate, steady_state
from envs.ode.env import OdeCellFateEnv
from envs.ode.metrics import average_precision, trajectory_metrics
from envs.ode.model import OdeModel
from envs.ode.perturb import parse_perturbation, production_scaling, weights_from


def boolode_production(rule_fn, regulators: list[str], levels: dict[str, float], k: float, n: float) -> float:
    """BoolODE's formula written out: (alpha_0 + sum_S alpha_S prod h) / (1 + sum_S prod h)."""
    h = {r: (levels[r] / k) ** n for r in regulators}
    num, den = float(rule_fn(set())), 1.0
    for size in range(1, len(regulators) + 1):
        for subset in combinations(regulators, size):
            term = float(np.prod([h[r] for r in subset]))
            num += rule_fn(set(subset)) * term
            den += term
    return num / den


def test_production_is_boolodes_subset_formula():
    net = BooleanNetwork.from_rules({"a": "a | b", "b": "!a & c", "c": "(a & !b) | (b & c)"})
    model = OdeModel.from_network(net)
    rules = {
        "a": lambda on: ("a" in on) or ("b" in on),
        "b": lambda on: ("a" not in on) and ("c" in on),
        "c": lambda on: (("a" in on) and ("b" not in on)) or (("b" in on) and ("c" in on)),
    }
    regs = {"a": ["a", "b"], "b": ["a", "c"], "c": ["a", "b", "c"]}
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 2, size=(20, 3))
    f = model.production_fraction(y)
    for i in range(len(y)):
        levels = dict(zip(net.genes, y[i]))
        for g, gene in enumerate(net.genes):
            want = boolode_production(rules[gene], regs[gene], levels, model.regulator_threshold, 10.0)
            assert f[i, g] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_same_seed_same_trajectory_and_engines_agree():
    ow = ode_world("myeloid")
    y0 = ow.start(n_cells=8)
    a = simulate(ow.model, y0, 0.5, np.random.default_rng(7), engine="numpy")
    b = simulate(ow.model, y0, 0.5, np.random.default_rng(7), engine="numpy")
    c = simulate(ow.model, y0, 0.5, np.random.default_rng(8), engine="numpy")
    d = simulate(ow.model, y0, 0.5, np.random.default_rng(7), engine="auto")
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a, d, atol=1e-9)
    env1, env2 = OdeCellFateEnv({"action": "continuous"}), OdeCellFateEnv({"action": "continuous"})
    o1, _ = env1.reset(seed=3)
    o2, _ = env2.reset(seed=3)
    act = np.linspace(-1, 1, env1.n_genes).astype(np.float32)
    for _ in range(2):
        o1, r1, *_ = env1.step(act)
        o2, r2, *_ = env2.step(act)
        assert np.array_equal(o1["x"], o2["x"]) and r1 == r2


@pytest.mark.parametrize("name", ["myeloid", "tcell"])
@pytest.mark.parametrize("proteins", [False, True])
def test_noise_free_steady_states_are_the_boolean_attractors(name, proteins):
    ow = ode_world(name, {"proteins": proteins, "noise": "none"})
    net = ow.world.network
    fixed = np.array([a.states[0] for a in all_attractors(net) if a.is_fixed_point])
    assert len(fixed) > 0
    # every Boolean fixed point, started at its high/low levels, is an ODE steady state
    y, converged = steady_state(ow.model, ow.model.state_from_bits(fixed), duration=10.0)
    assert converged.all()
    assert np.array_equal(ow.model.binarize(y), fixed)
    np.testing.assert_allclose(ow.model.mrna(y), fixed * ow.params.x_max, atol=0.05 * ow.params.x_max)
    # and every steady state reached from random levels that is clearly high/low is a Boolean fixed point
    rng = np.random.default_rng(0)
    y0 = ow.model.state_from_bits(rng.integers(0, 2, size=(48, net.n_genes))) * rng.uniform(0.2, 1.3, (48, ow.model.n_species))
    y, converged = steady_state(ow.model, y0, duration=20.0)
    x = ow.model.mrna(y)
    clear = converged & (np.abs(x - ow.model.expression_threshold) > 0.1 * ow.params.x_max).all(axis=1)
    assert clear.mean() > 0.5
    bits = ow.model.binarize(y[clear])
    assert net.is_fixed_point(bits).all()
    np.testing.assert_allclose(x[clear], bits * ow.params.x_max, atol=0.05 * ow.params.x_max)


def test_knockdown_lies_between_knockout_and_wild_type():
    ow = ode_world("myeloid", {"noise": "none"})
    ery = ow.world.start_state("attractor:Ery")  # Gata1, Fog1, EKLF, SCL on
    y0 = ow.model.state_from_bits(ery[None, :])
    g1, fog1 = ow.world.gene_index("Gata1"), ow.world.gene_index("Fog1")
    out = {}
    for label, pert in (("wt", []), ("kd", ["Gata1=kd:0.3"]), ("ko", ["Gata1=ko"])):
        w = weights_from(ow.world, pert)
        y = ow.simulate(y0, 5.0, weights=w[None, :])
        out[label] = ow.gene_expression(y)[0]
    for g in (g1, fog1):
        assert out["ko"][g] < out["kd"][g] < out["wt"][g]
    assert ow.classify(ow.simulate(y0, 5.0, weights=weights_from(ow.world, ["Gata1=ko"])[None, :]))[0] != ow.world.fate_index("Ery")


def test_graded_perturbation_syntax_and_scaling():
    w = load_world("myeloid")
    assert parse_perturbation("Gata1=kd:0.25") == ("Gata1", -0.25)
    assert parse_perturbation("Pu.1=act:1") == ("Pu.1", 1.0)
    assert parse_perturbation("Pu.1=oe") == ("Pu.1", 1.0)
    kd, act = production_scaling(w, weights_from(w, ["Gata1=ko", "Pu.1=act:0.5"]))
    assert kd[0, w.gene_index("Gata1")] == 1.0 and act[0, w.gene_index("Pu.1")] == 0.5
    assert kd.sum() == 1.0 and act.sum() == 0.5


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: parse_perturbation("Gata1=kd:1.5"), "knockdown fraction must be in [0, 1], got '1.5'"),
        (lambda: parse_perturbation("Gata1=act:-0.1"), "activation fraction must be in [0, 1]"),
        (lambda: OdeParams(hill=-2), "Hill coefficient must be > 0, got -2"),
        (lambda: OdeParams(mrna_decay=-1.0), "mRNA decay rate must be > 0"),
        (lambda: OdeParams(protein_decay=0), "protein decay rate must be > 0"),
        (lambda: OdeCellFateEnv({"ode": {"hil": 3}}), "unknown ODE parameter 'hil'"),
    ],
)
def test_bad_input_is_one_line(call, fragment):
    with pytest.raises(UserInputError) as err:
        call()
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unstable_time_step_is_detected_not_nan():
    ow = ode_world("myeloid", {"dt": 0.05})
    with pytest.raises(UnstableStep) as err:
        simulate(ow.model, ow.start(), 1.0, np.random.default_rng(0))
    msg = str(err.value)
    assert "dt=0.05" in msg and "use dt <=" in msg and "\n" not in msg
    simulate(ode_world("myeloid", {"dt": 0.02, "proteins": True}).model, ode_world("myeloid", {"proteins": True}).start(), 0.1,
             np.random.default_rng(0))  # the protein layer is less stiff: 0.02 is fine


@pytest.mark.parametrize("config", [
    {"action": "continuous"},
    {"action": "continuous", "task": "trajectory", "observation": "flat"},
    {"task": "predict"},
])
def test_check_env_passes(config):
    check_env(OdeCellFateEnv({**config, "n_stages": 2, "settle_time": 1.0}), skip_render_check=True)


def test_continuous_action_respects_budget_and_background():
    env = OdeCellFateEnv({"action": "continuous", "max_perturb": 2, "background": ["Gfi1=ko"]})
    env.reset(seed=0)
    action = np.full(env.n_genes, -0.5, dtype=np.float32)
    action[env.world.gene_index("Gata1")] = 1.0
    action[env.world.gene_index("Gfi1")] = 1.0  # background: cannot be perturbed
    env.step(action)
    assert np.count_nonzero(env.weights) == 2
    assert env.weights[env.world.gene_index("Gata1")] == 1.0 and env.weights[env.world.gene_index("Gfi1")] == 0.0


def test_trajectory_task_reward_is_the_distance_decrease():
    env = OdeCellFateEnv({"task": "trajectory", "action": "continuous", "n_stages": 3})
    _, info = env.reset(seed=5)
    d0, total = info["distance"], 0.0
    done = False
    while not done:
        _, r, done, _, info = env.step(np.zeros(env.n_genes, dtype=np.float32))
        total += r
    assert total == pytest.approx(d0 - info["distance"])
    for key in ("direction_accuracy", "macro_f1", "auprc", "mse", "r2", "pearson"):
        assert key in info
    # a target given as data
    target = env.ode.gene_expression(env.ode.start("attractor:Mo"))[0]
    _, info = env.reset(seed=1, options={"target_profile": target})
    assert info["distance"] > 0


def test_trajectory_metrics_on_known_profiles():
    start = np.array([0.0, 2.0, 1.0, 0.0])
    target = np.array([2.0, 0.0, 1.0, 1.5])
    m = trajectory_metrics(start, target, target, scale=2.0)
    assert m["direction_accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["auprc"] == 1.0
    assert m["mse"] == 0.0 and m["r2"] == 1.0 and m["pearson"] == pytest.approx(1.0)
    m = trajectory_metrics(start, start, target, scale=2.0)  # nothing moved
    assert m["direction_accuracy"] == 0.25 and m["r2"] < 0
    labels = np.array([1, 0, 1, 1, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.7, 0.3, 0.2, 0.1])
    # by hand: thresholds 0.9 (P=1, R=.25), 0.8 (1/2, .25), 0.7 (3/4, .75), 0.3, 0.2, 0.1 (4/7, 1)
    assert average_precision(labels, scores) == pytest.approx(0.25 * 1 + 0.5 * 0.75 + 0.25 * 4 / 7)


@pytest.mark.parametrize("name", ["HSC", "mCAD", "VSC"])
def test_branch_fractions_match_boolodes_beeline_data(name):
    from envs.ode.beeline import compare_with_beeline
    from shared_data import shared_data_file

    root = shared_data_file("beeline-boolode")
    out = compare_with_beeline(root / "models", root / "simulated" / f"{name}_2000_0", name, n_traj=300, seed=0)
    assert all(r["fraction_ok"] for r in out["rows"]), out["rows"]
    assert max(r["max_mean_diff"] for r in out["rows"]) < 0.2
