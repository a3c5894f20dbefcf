"""`tournament plan`: the cost model adds up, scales with the budget, and warns over a limit."""

import pytest

from cli_helpers import one_line_error, run_cli
from tournament.engine.plan import plan
from tournament.engine.spec import parse_spec

# The scripted runner spends `work_s` CPU seconds per 200-step iteration: 1,000 steps/s.
SPEC = {
    "name": "plantest",
    "world": "myeloid",
    "target": "Mo",
    "grid": {"algorithm": ["PPO", "A2C"], "optimizer": ["adam"], "max_perturb": [1, 2], "module": ["mlp"]},
    "algorithm_settings": {"PPO": {"train_batch_size": 200, "work_s": 0.2}, "A2C": {"train_batch_size": 200, "work_s": 0.2}},
    "budget": {"env_steps": 2000},
    "hpo": {"trials_per_cell": 2},
    "final": {"seeds": 1},
    "execution": {"runner": "tournament.engine.scripted:ScriptedRunner"},
}


def test_the_estimate_follows_the_calibrated_speed():
    spec = parse_spec(SPEC)
    full = plan(spec, budget_s=0.5)
    assert full["cells"] == 4 and full["trials"] == 4 * 3 and full["env_steps"] == 12 * 2000
    assert set(full["calibration"]) == {"steer/PPO/mlp", "steer/A2C/mlp"}
    rate = full["calibration"]["steer/PPO/mlp"]["env_steps_per_s"]
    assert 300 < rate < 1100  # 200 steps per 0.2 CPU-seconds, less on a busy machine
    trial_s = full["per_cell"][0]["trial_s"]
    assert trial_s == pytest.approx(2000 / rate + 1.6, rel=0.2)
    half = plan(spec, scale=0.5, budget_s=0.5)
    assert half["env_steps"] == full["env_steps"] // 2 and half["core_hours"] < full["core_hours"]


def test_the_cli_warns_over_the_limit_and_refuses_a_bad_scale(tmp_path, capsys):
    import yaml

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    code, out, err = run_cli(["plan", str(path), "--calibrate-s", "0.3", "--max-core-hours", "0.000001"], capsys)
    assert code == 0 and "4 cells, 12 trials" in out and "estimated total" in out
    assert "over --max-core-hours" in err
    code, _, err = run_cli(["plan", str(path), "--scale", "0"], capsys)
    one_line_error(code, err, "--scale must be positive")


def test_run_scale_gives_a_reduced_copy_under_its_own_name(tmp_path, capsys):
    import yaml

    from tournament.engine.spec import scaled

    spec = parse_spec(SPEC)
    small = scaled(spec, 0.1)
    assert small.budget.env_steps == 200 and small.name == "plantest_x0.1"
    assert small.grid == spec.grid and small.hpo == spec.hpo
    assert scaled(spec, 1.0) is spec
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    for bad in ("0", "1.5", "-1"):
        code, _, err = run_cli(["run", str(path), "--scale", bad], capsys)
        one_line_error(code, err, "--scale must be in (0, 1]")


def test_sac_is_calibrated_at_its_steady_rate_not_in_its_warm_up():
    """A calibration's short SAC iteration must take a gradient step per env step, as the rest of
    a trial does: with learning_starts 100, 156 of a 256-step iteration did, overstating SAC's speed 1.6x."""
    from algorithms.registry import build_algorithm_config
    from tournament.engine.cells import expand_grid
    from tournament.engine.plan import calibration_plan

    spec = parse_spec({**SPEC, "grid": {**SPEC["grid"], "algorithm": ["SAC"], "max_perturb": [1]},
                       "algorithm_settings": {"SAC": {"learning_starts": 500}}, "execution": {}})
    (cell,) = expand_grid(spec)
    trial = cell.trial_plan(spec, {"lr": 3e-4}, {}, seed=0)
    calibrated = calibration_plan(spec, cell)
    assert build_algorithm_config(trial).num_steps_sampled_before_learning_starts == 500
    assert build_algorithm_config(calibrated).num_steps_sampled_before_learning_starts == 0
