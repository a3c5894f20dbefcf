"""Continuous actions on ODE worlds: the Gaussian heads (masking, greedy actions), SAC's continuous
forward pass, PPO and SAC trials, the spec's action axis and dynamics, and a tiny ODE tournament."""

from __future__ import annotations

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from algorithms.common import env_config
from algorithms.modules import model_config, module_class
from algorithms.modules.base import MASKED_LOG_STD
from algorithms.registry import algorithm_stages
from algorithms.sac import SAC_MODULES
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from cli_helpers import run_cli
from envs.errors import UserInputError
from envs.world import load_world
from tournament.engine.spec import parse_spec
from tournament_helpers import with_changes

WORLD = load_world("myeloid")
KINDS = ("knockout", "overexpression")


def _module(kind: str, sac: bool = False):
    cfg = model_config(WORLD, "steer", KINDS, kind, {"q_heads": 2} if sac else {}, action="continuous")
    cls = module_class(kind)
    cls = SAC_MODULES[cls] if sac else cls
    return cls(observation_space=None, action_space=gym.spaces.Box(-1, 1, (WORLD.n_genes,)), model_config=cfg), cfg


def _obs(cfg: dict, batch: int, mask: torch.Tensor | None = None) -> dict:
    torch.manual_seed(0)
    x = torch.rand(batch, cfg["n_genes"], cfg["node_features"])
    return {"x": x, "action_mask": torch.ones(batch, cfg["n_genes"]) if mask is None else mask}


@pytest.mark.parametrize("kind", ["gnn", "mlp"])
def test_gaussian_head_fixes_masked_genes_and_gives_them_no_gradient(kind):
    module, cfg = _module(kind)
    n = cfg["n_genes"]
    mask = torch.ones(3, n)
    mask[:, [0, 4]] = 0.0
    inputs = module.action_logits({Columns.OBS: _obs(cfg, 3, mask)})
    assert inputs.shape == (3, 2 * n)
    mean, log_std = inputs[:, :n], inputs[:, n:]
    assert torch.all(mean[:, [0, 4]] == 0) and torch.all(log_std[:, [0, 4]] == MASKED_LOG_STD)
    assert torch.all(mean[:, 1] != 0)  # the other genes keep the network's values
    (mean[:, [0, 4]].sum() + log_std[:, [0, 4]].sum()).backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in module.parameters())


def test_greedy_action_is_the_mean_for_ppo_and_the_squashed_mean_for_sac():
    ppo, cfg = _module("mlp")
    sac, _ = _module("mlp", sac=True)
    inputs = torch.tensor([[3.0] * cfg["n_genes"] + [0.0] * cfg["n_genes"]])
    assert torch.allclose(ppo.deterministic_actions(inputs), torch.full((1, cfg["n_genes"]), 3.0))
    assert torch.allclose(sac.deterministic_actions(inputs), torch.full((1, cfg["n_genes"]), float(np.tanh(3.0))))


@pytest.mark.parametrize("kind", ["gnn", "mlp"])
def test_sac_actor_term_moves_the_policy_not_the_q_networks(kind):
    module, cfg = _module(kind, sac=True)
    module.make_target_networks()
    obs = _obs(cfg, 4)
    batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: torch.rand(4, cfg["n_genes"]) * 2 - 1}
    out = module._forward_train(batch)
    for key in ("q_curr", "q_target_next", "logp_resampled", "logp_next_resampled"):
        assert out[key].shape == (4,), key
    assert out[Columns.ACTION_DIST_INPUTS].shape == (4, 2 * cfg["n_genes"])
    out["q_curr"].sum().backward()
    q_params = module.q_parameters(0) + module.q_parameters(1)
    assert all(p.grad is None for p in q_params)
    assert any(p.grad is not None and torch.any(p.grad != 0) for p in module.actor_parameters())
    assert not out["q_target_next"].requires_grad


def _plan(algorithm: str, **changes) -> TrialPlan:
    hparams = ({"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "num_envs_per_env_runner": 4}
               if algorithm == "PPO" else {"learning_starts": 32, "steps_per_iteration": 64, "batch_size": 32})
    return TrialPlan(**{"world": "myeloid", "dynamics": "ode", "action": "continuous", "algorithm": algorithm,
                        "module": "mlp", "max_perturb": 2, "env_steps": 128, "seed": 3, "algo_hparams": hparams,
                        **changes})


@pytest.mark.parametrize("algorithm", ["PPO", "SAC"])
def test_continuous_trial_trains_and_evaluates_on_an_ode_world(algorithm, ray_local):
    runner = TrialRunner(_plan(algorithm, task="trajectory" if algorithm == "SAC" else "steer"))
    try:
        while not runner.done:
            runner.train_iteration()
        assert runner.env_steps >= 128
        if algorithm == "SAC":
            actions = runner.algo.flat_buffer.columns["actions"]
            assert actions.dtype == np.float32 and actions.shape[1:] == (WORLD.n_genes,)
        ev = runner.evaluate(4, 11)
    finally:
        runner.stop()
    for weights in ev["perturbation_sets"]:  # {gene: weight}, at most max_perturb of them
        assert len(weights) <= 2 and all(-1.0 <= w <= 1.0 and w != 0 for w in weights.values())
    if algorithm == "SAC":
        tm = ev["trajectory_metrics"]
        assert tm["n_episodes"] == 4 and ev["score"] == tm["distance_closed"] and 0.0 <= tm["direction_accuracy"] <= 1.0
    else:
        assert 0.0 <= ev["score"] <= 1.0 and "trajectory_metrics" not in ev


def test_bad_combinations_are_one_line_errors():
    with pytest.raises(UserInputError, match="action 'continuous' needs dynamics 'ode'"):
        env_config(_plan("PPO", dynamics="boolean"))
    with pytest.raises(UserInputError, match="A2C has no continuous-action form.*PPO, SAC"):
        algorithm_stages(_plan("A2C"))
    with pytest.raises(UserInputError, match="predict task's action is a fate"):
        algorithm_stages(_plan("PPO", task="predict"))
    with pytest.raises(UserInputError, match="unknown dynamics 'mystery'; valid choices: boolean, ode"):
        env_config(_plan("PPO", dynamics="mystery"))


def _ode_spec(tmp_path, **changes) -> dict:
    data = {
        "name": "ode_tiny", "world": "myeloid", "dynamics": "ode", "task": ["steer", "trajectory"], "target": "Mo",
        "env": {"ode": {"noise_scale": 0.5}},
        "grid": {"algorithm": ["PPO", "SAC"], "optimizer": ["adam"], "max_perturb": [2], "module": ["mlp"],
                 "action": ["continuous"]},
        "algorithm_settings": {"PPO": {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1,
                                       "num_envs_per_env_runner": 4},
                               "SAC": {"learning_starts": 32, "steps_per_iteration": 64, "batch_size": 32}},
        "budget": {"env_steps": 128}, "hpo": {"trials_per_cell": 1, "seed": 0},
        "final": {"seeds": 2, "eval_episodes": 4}, "evaluation": {"every_iterations": 1, "episodes": 4},
        "execution": {"storage": str(tmp_path), "max_failures": 0},
    }
    return with_changes(data, changes)


def test_spec_checks_the_action_axis_against_the_dynamics(tmp_path):
    for changes, message in (
        ({"dynamics": "boolean", "task": ["steer"]}, "grid.action: continuous .* needs dynamics: ode"),
        ({"dynamics": "boolean", "task": ["trajectory"], "grid": {"action": ["discrete"]}},
         "task: trajectory .* needs dynamics: ode"),
        ({"grid": {"action": ["sideways"]}}, "grid.action\\[0\\].*sideways"),
        ({"grid": {"algorithm": ["TRPO"]}}, "TRPO has no continuous-action form"),
    ):
        with pytest.raises(UserInputError, match=message):
            parse_spec(_ode_spec(tmp_path, **changes))


def test_tiny_ode_tournament_reports_the_seed_metrics(tmp_path, ray_local):
    from tournament.engine.runner import run_tournament

    spec = parse_spec(_ode_spec(tmp_path))
    run = run_tournament(spec, progress=False, build_report=True)
    with open(run / "final_scores.csv", newline="") as fh:
        finals = list(csv.DictReader(fh))
    assert len(finals) == 4 * 2 and {r["action"] for r in finals} == {"continuous"}
    trajectory = [r for r in finals if r["task"] == "trajectory"]
    assert {r["algorithm"] for r in trajectory} == {"PPO", "SAC"}
    for r in trajectory:
        assert 0.0 <= float(r["trajectory_direction_accuracy"]) <= 1.0 and float(r["trajectory_mse"]) >= 0.0
        assert float(r["score"]) == pytest.approx(float(r["trajectory_distance_closed"]))
    assert all(r["trajectory_mse"] == "" for r in finals if r["task"] == "steer")
    oracle = json.loads((run / "oracle.json").read_text())
    assert all(e["reference"] == "none" and "ODE" in e["method"] for e in oracle.values())
    assert json.loads((run / "baselines.json").read_text()) == {}
    report = (run / "report.html").read_text()
    assert "trajectory" in report and "Direction accuracy" in report


def test_cli_rejects_a_continuous_spec_on_a_boolean_world(tmp_path, capsys):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_ode_spec(tmp_path, dynamics="boolean", task=["steer"])))
    code, _, err = run_cli(["plan", str(path)], capsys)
    assert code == 2 and "grid.action: continuous" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--perturb", "Gata1=kd:1.5"], "knockdown fraction must be in [0, 1], got '1.5'"),
    (["--ode", "hill=-2"], "Hill coefficient must be > 0, got -2"),
    (["--ode", "mrna_decay=-1"], "mRNA decay rate must be > 0"),
    (["--ode", "dt=1"], "time step dt=1 makes the integration unstable"),
])
def test_simulate_ode_bad_input_is_one_line_exit_2(args, message, capsys):
    code, out, err = run_cli(["simulate", "--world", "myeloid", "--dynamics", "ode", "--cells", "10", *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_simulate_ode_knockdown_lies_between_wild_type_and_knockout(capsys):
    def mono(*perturb):
        args = ["simulate", "--world", "myeloid", "--dynamics", "ode", "--cells", "400", "--json"]
        code, out, _ = run_cli(args + [a for p in perturb for a in ("--perturb", p)], capsys)
        assert code == 0
        return json.loads(out)["probabilities"]["Ery"]

    wild, half, knockout = mono(), mono("Gata1=kd:0.5"), mono("Gata1=ko")
    assert wild > knockout and min(wild, knockout) <= half <= max(wild, knockout)


def test_spec_with_an_unstable_ode_step_is_refused_before_the_run(tmp_path):
    with pytest.raises(UserInputError, match="makes the integration unstable"):
        parse_spec(_ode_spec(tmp_path, env={"ode": {"dt": 1.0}}))


def test_ode_sac_bench_times_both_sides_at_matched_settings(ray_local):
    from tournament.cli.bench.ode_sac_bench import bench_ode_sac

    (row,) = bench_ode_sac(env_steps=150, repetitions=1, modules=("mlp",))
    assert row["ours_steps_per_s"] > 0 and row["sb3_steps_per_s"] > 0
    assert row["ratio_vs_sb3"] == pytest.approx(row["ours_steps_per_s"] / row["sb3_steps_per_s"], rel=0.01)
    assert "batch_size=256" in row["settings"] and "1 thread" in row["settings"]


def test_trajectory_metrics_pool_the_genes_of_all_episodes():
    from types import SimpleNamespace

    from algorithms.evaluation import _trajectory_summary

    def episode(start, reached, target, distance):
        return SimpleNamespace(start_profile=np.array(start), target_profile=np.array(target), distance=distance,
                               reached_profile=lambda: np.array(reached), ode=SimpleNamespace(params=SimpleNamespace(x_max=2.0)))

    # the second target is flat over genes: its own R2 would be 1 - 0.02 / 0 (undefined) or hugely negative
    envs = [episode([0, 0, 2], [1, 0, 1], [2, 0, 0], 0.5), episode([1, 1, 1], [1.1, 0.9, 1.0], [1, 1, 1], 0.25)]
    score, m = _trajectory_summary(envs, [1.0, 0.5])
    assert score == pytest.approx(((1 - 0.5) + (0.5 - 0.25) / 0.5) / 2)
    target = np.array([2, 0, 0, 1, 1, 1.0])
    reached = np.array([1, 0, 1, 1.1, 0.9, 1.0])
    resid = np.sum((target - reached) ** 2)
    assert m["mse"] == pytest.approx(resid / 6)
    assert m["r2"] == pytest.approx(1 - resid / np.sum((target - target.mean()) ** 2))
    # directions (flat below 0.1 x 2.0): true [+, 0, -, 0, 0, 0], reached [+, 0, -, 0, 0, 0]
    assert m["direction_accuracy"] == 1.0 and m["n_episodes"] == 2
