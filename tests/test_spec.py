"""Tournament spec: the minimal spec means what it says; every mistake is one line with its key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from algorithms.trial_plan import TrialPlan
from envs.errors import UserInputError
from tournament.engine.cells import expand_grid
from tournament.engine.spec import load_spec, parse_spec, resolved_space

MINIMAL = textwrap.dedent(
    """
    name: tiny
    world: myeloid
    task: steer
    target: Mo
    grid:
      algorithm: [PPO, A2C]
      optimizer: [adam, asgd_adam]
      max_perturb: [2]
    budget: {env_steps: 4000}
    hpo: {trials_per_cell: 2, seed: 0}
    final: {seeds: 2}
    """
)
EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def base(**changes) -> dict:
    data = yaml.safe_load(MINIMAL)
    for key, value in changes.items():
        data[key] = value
    return data


def error_of(data: dict) -> str:
    with pytest.raises(UserInputError) as info:
        parse_spec(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_minimal_spec_means_what_it_says(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(MINIMAL)
    spec = load_spec(path)
    cells = expand_grid(spec)
    assert len(cells) == 4
    assert {(c.algorithm, c.optimizer) for c in cells} == {
        ("PPO", "adam"), ("PPO", "asgd_adam"), ("A2C", "adam"), ("A2C", "asgd_adam")
    }
    assert all((c.world_name, c.task, c.target, c.max_perturb) == ("myeloid", "steer", "Mo", 2) for c in cells)
    assert spec.budget.env_steps == 4000
    assert (spec.hpo.trials_per_cell, spec.hpo.seed, spec.final.seeds) == (2, 0, 2)
    assert spec.execution.storage == "runs" and spec.execution.address is None
    assert cells[0].cell_id == "myeloid-steer-Mo-PPO-adam-k2-gnn"
    assert cells[0].oracle_key == "myeloid|steer|Mo|2"
    plan = cells[1].trial_plan(spec, {"lr_min": 1e-4, "lr_max": 1e-3}, {}, seed=7)
    assert plan.env_steps == 4000 and plan.seed == 7 and plan.optimizer == "asgd_adam"
    assert TrialPlan.from_dict(plan.to_dict()) == plan  # what crosses the Tune boundary comes back whole
    with pytest.raises(UserInputError, match="unknown trial plan key 'sed'"):
        TrialPlan.from_dict({**plan.to_dict(), "sed": 1})
    # the spec as run round-trips with every default filled in
    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again == spec


def test_scalars_stand_for_one_element_lists():
    spec = parse_spec(base(grid={"algorithm": "PPO", "optimizer": "adam", "max_perturb": 3}))
    assert spec.grid.algorithm == ["PPO"] and spec.grid.max_perturb == [3]


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"grd": {}}, "unknown key 'grd'; valid keys: name,"),
        ({"grid": {"algorithm": ["PPO"], "optimiser": ["adam"]}}, "unknown key 'optimiser' in grid; valid keys: algorithm, optimizer"),
        ({"hpo": {"trials": 3}}, "unknown key 'trials' in hpo; valid keys: trials_per_cell"),
        ({"budget": {"env_steps": 4000, "steps": 1}}, "unknown key 'steps' in budget"),
    ],
)
def test_unknown_keys_name_their_path(changes, expected):
    assert expected in error_of(base(**changes))


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"grid": {"algorithm": ["PPO", "DQN"]}}, "grid.algorithm[1]: unknown algorithm 'DQN'; valid choices: PPO, A2C"),
        ({"grid": {"optimizer": ["sgd"]}}, "grid.optimizer[0]: unknown optimizer 'sgd'; valid choices: adam, amsgrad, asgd_adam, asgd_amsgrad"),
        ({"grid": {"optimizer": ["asgd_adam"]}, "optimizer_settings": {"asgd_adam": {"switch": "papr"}}},
         "optimizer_settings.asgd_adam.switch: unknown switch rule 'papr'; valid choices: mean, median, threshold, global_count, paper"),
        ({"grid": {"module": ["cnn"]}}, "grid.module[0]: unknown module 'cnn'; valid choices: gnn, mlp"),
        ({"world": "atlantis"}, "world[0]: unknown world 'atlantis'; valid choices: myeloid"),
        ({"target": "Tcell"}, "target: unknown fate of world myeloid 'Tcell'; valid choices: Ery, Mk, Mo, Neu"),
        ({"task": ["steer", "cure"]}, "task[1]"),
        ({"algorithm_settings": {"PPX": {}}}, "algorithm_settings.PPX: unknown algorithm 'PPX'"),
        ({"hpo": {"sampler": "grid"}}, "hpo.sampler"),
        ({"hpo": {"space": {"adam": {"momentum": [0.1, 0.9]}}}}, "hpo.space.adam.momentum: unknown hyperparameter of adam 'momentum'; valid choices: lr"),
    ],
)
def test_unknown_names_list_valid_choices(changes, expected):
    assert expected in error_of(base(**changes))


def test_lr_min_above_lr_max_is_rejected():
    msg = error_of(base(hpo={"space": {"asgd_adam": {"lr_min": 1e-3, "lr_max": 1e-4}}}))
    assert msg.startswith("hpo.space.asgd_adam:") and "lr_min 0.001 > lr_max 0.0001" in msg
    msg = error_of(base(hpo={"space": {"asgd_adam": {"lr_min": [1e-5, 1e-3], "lr_ratio": [0.5, 10]}}}))
    assert msg.startswith("hpo.space.asgd_adam.lr_ratio:") and ">= 1" in msg
    msg = error_of(base(hpo={"space": {"adam": {"lr": [1e-2, 1e-4]}}}))
    assert msg.startswith("hpo.space.adam.lr:") and "greater than high" in msg


def test_default_asgd_space_keeps_lr_min_below_lr_max():
    spec = parse_spec(base())
    space = resolved_space(spec, "asgd_adam")
    assert set(space) == {"lr_min", "lr_ratio"} and space["lr_ratio"].low >= 1
    assert set(resolved_space(spec, "adam")) == {"lr"}


@pytest.mark.parametrize("k", [0, 12, -1])
def test_max_perturb_out_of_range(k):
    msg = error_of(base(grid={"algorithm": ["PPO"], "max_perturb": [2, k]}))
    assert msg.startswith("grid.max_perturb[1] must be an integer in 1..11") and repr(k) in msg


def test_budget_smaller_than_one_iteration():
    msg = error_of(base(budget={"env_steps": 500}, algorithm_settings={"PPO": {"train_batch_size": 1000}}))
    assert msg.startswith("budget.env_steps: 500 is smaller than one training iteration of PPO (1000 env steps)")


def test_other_impossible_values():
    assert error_of(base(budget={"env_steps": 0})).startswith("budget.env_steps:")
    assert error_of(base(hpo={"trials_per_cell": 0})).startswith("hpo.trials_per_cell:")
    assert error_of(base(name="no spaces")).startswith("name:")
    assert "overlap tuning seeds" in error_of(base(final={"seeds": 3, "seed_base": 1}))
    assert error_of(base(env={"scheme": "chaotic"})).startswith("env:")
    assert error_of(base(env={"max_perturb": 3})).startswith("env.max_perturb:")
    assert error_of({"world": "myeloid"}) == "name: required key is missing"


def test_yaml_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid: [\n")
    with pytest.raises(UserInputError, match=r"bad.yaml: invalid YAML at line \d+"):
        load_spec(bad)
    with pytest.raises(UserInputError, match="spec file not found"):
        load_spec(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(UserInputError, match="a spec is a mapping"):
        load_spec(listed)


@pytest.mark.parametrize("name", ["tiny", "quickstart", "seed_grid", "ablation_trpo_ppo", "ablation_optimizers", "ablation_lora", "ablation_max_perturb"])
def test_shipped_specs_are_valid(name):
    spec = load_spec(EXPERIMENTS / f"{name}.yaml")
    assert expand_grid(spec)


def test_algorithm_settings_are_checked_against_the_algorithm():
    msg = error_of(base(algorithm_settings={"PPO": {"bogus_key": 1}}))
    assert msg.startswith("algorithm_settings.PPO:") and "bogus_key" in msg and "train_batch_size" in msg
