"""`tournament compare RUN_A RUN_B` on synthetic run directories: B - A per common cell, by hand."""

from __future__ import annotations

import json

import pytest

from cli_helpers import one_line_error, run_cli
from rundir_factory import FakeCell, write_run_dir
from tournament.report.compare import compare_runs

REPS = 200
PPO = "myeloid-steer-Mo-PPO-adam-k2-gnn"


@pytest.fixture
def two_runs(tmp_path):
    """A: PPO [0.2, 0.4] (mean 0.3) and an A2C cell; B: PPO [0.7, 0.8, 0.9] (mean 0.8) and a TRPO cell."""
    a = write_run_dir(tmp_path / "a", [FakeCell(final_scores=[0.2, 0.4]),
                                       FakeCell(algorithm="A2C", final_scores=[0.1, 0.2])])
    b = write_run_dir(tmp_path / "b", [FakeCell(final_scores=[0.7, 0.8, 0.9]),
                                       FakeCell(algorithm="TRPO", final_scores=[0.3, 0.3])])
    return a, b


def test_difference_is_b_minus_a_computed_by_hand(two_runs):
    a, b = two_runs
    cmp = compare_runs(a, b, reps=REPS)
    (row,) = cmp.cells.to_dict(orient="records")
    assert row["cell_id"] == PPO
    assert (row["n_a"], row["n_b"]) == (2, 3)
    assert row["mean_a"] == pytest.approx(0.3) and row["mean_b"] == pytest.approx(0.8)
    # (0.7 + 0.8 + 0.9) / 3 - (0.2 + 0.4) / 2 = 0.8 - 0.3
    assert row["difference"] == pytest.approx(0.5)
    assert 0 < row["diff_ci_low"] <= 0.5 <= row["diff_ci_high"]
    assert row["ci_low_a"] <= 0.3 <= row["ci_high_a"] and row["ci_low_b"] <= 0.8 <= row["ci_high_b"]
    assert row["prob_b_better"] == pytest.approx(1.0)  # every B seed beats every A seed
    swapped = compare_runs(b, a, reps=REPS).cells.iloc[0]
    assert swapped["difference"] == pytest.approx(-0.5) and (swapped["n_a"], swapped["n_b"]) == (3, 2)


def test_cells_of_one_run_are_listed_in_every_output(two_runs, tmp_path, capsys):
    a, b = two_runs
    code, out, err = run_cli(["compare", str(a), str(b), "--reps", str(REPS)], capsys)
    assert code == 0, err
    assert PPO in out and "0.500 [" in out and "B - A" in out
    assert "Only in A (1): myeloid-steer-Mo-A2C-adam-k2-gnn" in out
    assert "Only in B (1): myeloid-steer-Mo-TRPO-adam-k2-gnn" in out

    code, out, err = run_cli(["compare", str(a), str(b), "--reps", str(REPS), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["difference"] == "B - A"
    assert [c["cell_id"] for c in data["cells"]] == [PPO]
    assert data["cells"][0]["difference"] == pytest.approx(0.5)
    assert data["only_in_a"] == ["myeloid-steer-Mo-A2C-adam-k2-gnn"]
    assert data["only_in_b"] == ["myeloid-steer-Mo-TRPO-adam-k2-gnn"]

    md = tmp_path / "reports" / "compare.md"  # its folder is made
    code, out, err = run_cli(["compare", str(a), str(b), "--reps", str(REPS), "--out", str(md)], capsys)
    assert code == 0, err
    text = md.read_text()
    assert text.startswith("# Comparison: b (B) against a (A)")
    assert f"| {PPO} | 0.300 [" in text and "| 2 | 0.800 [" in text and "| 3 | 0.500 [" in text
    assert "Only in A (1)" in text and "Only in B (1)" in text


def test_a_side_without_final_seeds_has_no_difference(tmp_path):
    a = write_run_dir(tmp_path / "a", [FakeCell(final_scores=[0.2, 0.4])])
    b = write_run_dir(tmp_path / "b", [FakeCell(tune_scores=[0.6, 0.9])], manifest_status="running",
                      final_phase=False)
    cmp = compare_runs(a, b, reps=REPS)
    row = cmp.cells.iloc[0]
    # B's best tuning trial (0.9) is no final score: it must not enter the comparison
    assert row["n_b"] == 0 and row["mean_b"] != row["mean_b"] and row["difference"] != row["difference"]
    assert any("lack final seeds" in n and PPO in n for n in cmp.notes)


def test_specs_that_differ_are_named(two_runs):
    a, b = two_runs
    (b / "spec.yaml").write_text((b / "spec.yaml").read_text() + "budget:\n  env_steps: 800\n")
    assert any("differ in budget" in n for n in compare_runs(a, b, reps=REPS).notes)


def test_a_folder_that_is_not_a_run(two_runs, tmp_path, capsys):
    a, _ = two_runs
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["compare", str(a), str(tmp_path / "empty")], capsys)
    one_line_error(code, err, "is not a run directory")
    code, _, err = run_cli(["compare", str(tmp_path / "missing"), str(a)], capsys)
    one_line_error(code, err, str(tmp_path / "missing"))


def test_the_same_run_twice(two_runs, capsys):
    a, _ = two_runs
    code, _, err = run_cli(["compare", str(a), str(a.parent / "." / "a")], capsys)
    one_line_error(code, err, "same run directory")


def test_runs_without_a_common_cell_name_cells_of_each(tmp_path, capsys):
    a = write_run_dir(tmp_path / "a", [FakeCell(algorithm=x, final_scores=[0.5, 0.6]) for x in ("A2C", "PPO")])
    b = write_run_dir(tmp_path / "b", [FakeCell(algorithm="PPO", max_perturb=3, final_scores=[0.5, 0.6])])
    code, _, err = run_cli(["compare", str(a), str(b)], capsys)
    line = one_line_error(code, err, "no grid cell in common")
    assert "myeloid-steer-Mo-A2C-adam-k2-gnn" in line and "myeloid-steer-Mo-PPO-adam-k3-gnn" in line


def test_an_out_file_that_cannot_be_written(two_runs, tmp_path, capsys):
    a, b = two_runs
    (tmp_path / "taken").write_text("a file, not a folder")
    code, _, err = run_cli(["compare", str(a), str(b), "--reps", str(REPS), "--out",
                            str(tmp_path / "taken" / "compare.md")], capsys)
    one_line_error(code, err, "cannot write")
