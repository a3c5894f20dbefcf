"""The benchmark's references in a run: the exact dynamic optimum, the baselines' rows, pulsed tasks."""

from __future__ import annotations

import json

import pytest

from envs.errors import UserInputError
from envs.oracle import best_perturbations, exact_fates
from envs.world import load_world
from tournament.engine.baseline_table import PULSED_REASON, compute_baselines
from tournament.engine.cells import expand_grid
from tournament.engine.oracle_table import REFERENCE_DYNAMIC, compute_oracle
from tournament.engine.spec import parse_spec
from tournament.report.leaderboard import build_leaderboard


def spec(env=None, target="Neu", max_perturb=(1,), baselines=None):
    return parse_spec({
        "name": "bench", "world": "myeloid", "target": target,
        "grid": {"algorithm": ["PPO"], "optimizer": ["adam"], "max_perturb": list(max_perturb), "module": ["mlp"]},
        "env": {"n_stages": 2, **(env or {})},
        "baselines": baselines or {"names": ["greedy", "beam"], "budget_cells": 60_000},
    })


def test_the_oracle_of_a_small_world_is_the_exact_dynamic_optimum(tmp_path):
    s = spec()
    table = compute_oracle(s, expand_grid(s), tmp_path / "oracle.json")
    (entry,) = table.values()
    static = best_perturbations(load_world("myeloid"), "Neu", 1)
    assert entry["reference"] == REFERENCE_DYNAMIC and entry["exact"] is True
    # the static optimum of the same machinery is the time-0 oracle's, and timing cannot do worse
    assert entry["static_optimum"] == pytest.approx(static.optimum)
    assert entry["optimum"] >= entry["static_optimum"] - 1e-12


def test_a_pulsed_task_has_a_dynamic_optimum_and_no_static_baselines(tmp_path):
    s = spec(env={"pulse_stages": 1})
    (entry,) = compute_oracle(s, expand_grid(s), tmp_path / "oracle.json").values()
    assert entry["reference"] == REFERENCE_DYNAMIC and 0.0 <= entry["optimum"] <= 1.0
    (task,) = compute_baselines(s, expand_grid(s), tmp_path / "baselines.json").values()
    assert [r["name"] for r in task["results"]] == ["greedy", "beam"]
    assert all(r["value"] is None and r["reason"] == PULSED_REASON for r in task["results"])


def test_baseline_rows_join_the_leaderboard_with_their_simulator_value(tmp_path):
    s = spec(target="Mo", max_perturb=(1,))
    cells = expand_grid(s)
    compute_oracle(s, cells, tmp_path / "oracle.json")
    compute_baselines(s, cells, tmp_path / "baselines.json")
    board = build_leaderboard(tmp_path)
    rows = board[board["entry"] == "baseline"].set_index("algorithm")
    assert set(rows.index) == {"greedy", "beam"}
    world = load_world("myeloid")
    for name, row in rows.iterrows():
        details = json.loads(row["details"])
        assert 0 < details["used_cells"] <= 60_000 and len(details["set"]) <= 1
        rescored = exact_fates(world, [tuple(p) for p in details["set"]])
        assert row["iqm"] == pytest.approx(rescored.probabilities["Mo"])
        assert row["reference"] == REFERENCE_DYNAMIC


def test_a_target_the_cell_already_reaches_is_warned_about(tmp_path):
    s = spec(env={"start": "attractor:Mo"}, target="Mo", baselines={"names": []})
    with pytest.warns(UserWarning, match=r"target Mo of myeloid: .* probability 1\.000"):
        compute_oracle(s, expand_grid(s), tmp_path / "oracle.json")


def test_an_unknown_baseline_is_a_one_line_error():
    with pytest.raises(UserInputError, match=r"unknown baseline 'gredy'; valid choices: random, greedy"):
        spec(baselines={"names": ["greedy", "gredy"]})


def _baselines_file(run, values: dict[str, float | None]) -> None:
    results = [{"name": n, "value": v, "stderr": 0.0, "best": [["Gfi1", "knockout"]], "used_cells": 1000,
                "budget_cells": 5000} for n, v in values.items()]
    (run / "baselines.json").write_text(json.dumps(
        {"myeloid|steer|Mo|2": {"world": "myeloid", "task": "steer", "target": "Mo", "max_perturb": 2,
                                "results": results}}))


def test_the_benchmark_view_finds_the_best_known_value_and_the_greedy_trap(tmp_path):
    from rundir_factory import FakeCell, default_oracle, write_run_dir

    from tournament.report.benchmark_view import benchmark_markdown, task_rows

    cells = [FakeCell(algorithm="PPO", final_scores=[0.9, 0.95, 1.0, 0.9]),
             FakeCell(algorithm="A2C", final_scores=[0.1, 0.2, 0.1, 0.15])]
    run = write_run_dir(tmp_path / "run", cells, oracle=default_oracle(cells, optimum=0.6, exact=False))
    _baselines_file(run, {"greedy": 0.3, "beam": 0.8, "aeon_control": None})
    (row,) = task_rows(run)
    assert row["best_known"] == pytest.approx(0.9375) and row["best_known_source"].startswith("RL myeloid-steer-Mo-PPO")
    assert row["greedy_gap"] == pytest.approx(0.9375 - 0.3) and row["trap"] is True
    assert row["aeon_control"] is None and row["beam"] == pytest.approx(0.8)
    assert row["rl:PPO"]["seeds_near_best"] == 4 and row["rl:A2C"]["seeds_near_best"] == 0
    assert row["rl_at_or_above_baselines"] is True and row["separated_pair"] is True
    text = benchmark_markdown([row])
    assert "hard tasks where the best RL entry (IQM) is at or above the best non-RL baseline: 1 of 1" in text


def test_the_benchmark_command_refuses_a_folder_that_is_no_run(tmp_path, capsys):
    from cli_helpers import one_line_error, run_cli

    code, _, err = run_cli(["benchmark", str(tmp_path)], capsys)
    one_line_error(code, err, f"{tmp_path} is not a run directory (no spec.yaml)")


def test_the_oracle_command_gives_the_timed_optimum_beside_the_static_one(capsys):
    from cli_helpers import one_line_error, run_cli

    code, out, _ = run_cli(["oracle", "--world", "myeloid", "--target", "Neu", "--max-perturb", "1", "--dynamic",
                            "--pulse-stages", "1", "--n-stages", "3", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["optimum"] == pytest.approx(0.75)  # the best time-0 set, permanent pins
    # a policy that watches the cell and times one pulse does better than any time-0 set
    assert result["dynamic"]["value"] > result["dynamic"]["static_value"] + 0.05
    code, _, err = run_cli(["oracle", "--world", "myeloid", "--target", "Neu", "--max-perturb", "1",
                            "--pulse-stages", "1"], capsys)
    one_line_error(code, err, "add --dynamic")


def test_marker_pins_name_the_perturbations_that_write_the_targets_readout():
    from tournament.report.benchmark_view import marker_pins

    # Ery requires Gata1 and EKLF on, Fli1 and PU.1 off; Gata2 is no marker of it
    sets = [["EKLF", "overexpression"], ["Pu.1", "knockout"], ["Gata2", "overexpression"], ["Fli1", "overexpression"]]
    assert marker_pins(load_world("myeloid"), "Ery", sets) == ["EKLF overexpression", "Pu.1 knockout"]


def test_a_baseline_without_a_set_is_stored_as_strict_json(tmp_path):
    # AEON finds no set that guarantees Mo with one perturbation: value and error are undefined
    s = spec(target="Mo", baselines={"names": ["aeon_control"], "control_time_s": 20})
    (task,) = compute_baselines(s, expand_grid(s), tmp_path / "baselines.json").values()
    (row,) = task["results"]
    assert row["value"] is None and row["reason"]
    json.loads((tmp_path / "baselines.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_a_task_is_hard_only_when_a_cheap_answer_is_not_the_answer():
    from tournament.report.benchmark_view import is_hard

    solved = {"trap": False, "reference": "oracle lower bound", "best_known": 1.0, "optimum": 1.0, "time0_optimum": None}
    assert not is_hard(solved)  # certainty found: nothing beats it
    assert is_hard({**solved, "best_known": 0.8, "optimum": 0.8})  # open: the bound may be far from the optimum
    assert is_hard({**solved, "trap": True})
    timing = {"trap": False, "reference": "exact dynamic optimum", "best_known": 0.68, "optimum": 0.68, "time0_optimum": 0.5}
    assert is_hard(timing) and not is_hard({**timing, "time0_optimum": 0.68})
