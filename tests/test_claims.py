"""`tournament claims`: verdicts on synthetic runs whose answers are known by construction."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cli_helpers import one_line_error, run_cli
from rundir_factory import FakeCell, write_run_dir
from tournament.report import claims as cl
from tournament.report.ablations import LEVEL_ALL, paired_ablations
from tournament.report.leaderboard import load_run

REPS = 300
LOW = [0.30, 0.32, 0.31, 0.29, 0.30]
HIGH = [0.80, 0.82, 0.81, 0.79, 0.80]
NOISY_A = [0.2, 0.8, 0.5, 0.35, 0.65]
NOISY_B = [0.7, 0.3, 0.45, 0.6, 0.4]


def _result(results, variant: str, claim: int = 1) -> cl.ClaimResult:
    (r,) = [r for r in results if r.claim == claim and r.variant == variant]
    return r


def _algo_run(tmp_path, trpo: list[float], ppo: list[float] | None, targets=("Mo", "Neu")):
    cells = []
    for t in targets:
        cells.append(FakeCell(algorithm="TRPO_to_PPO", target=t, final_scores=trpo))
        if ppo is not None:
            cells.append(FakeCell(algorithm="PPO", target=t, final_scores=ppo))
    return write_run_dir(tmp_path / "run", cells)


def test_trpo_clearly_above_ppo_is_supported(tmp_path):
    run = _algo_run(tmp_path, HIGH, LOW)
    r = _result(cl.evaluate_claims([run], reps=REPS), "TRPO_to_PPO")
    assert r.verdict == cl.SUPPORTED
    assert r.effect == pytest.approx(0.5, abs=1e-9) and r.ci_low > 0
    assert r.prob_improvement == pytest.approx(1.0)
    assert (r.n_cells, r.n_variant_seeds, r.n_baseline_seeds) == (2, 10, 10)


def test_trpo_clearly_below_ppo_is_contradicted(tmp_path):
    run = _algo_run(tmp_path, LOW, HIGH)
    r = _result(cl.evaluate_claims([run], reps=REPS), "TRPO_to_PPO")
    assert r.verdict == cl.CONTRADICTED
    assert r.ci_high < 0 and r.prob_improvement == pytest.approx(0.0)


def test_overlapping_noisy_scores_are_inconclusive(tmp_path):
    run = _algo_run(tmp_path, NOISY_A, NOISY_B)
    r = _result(cl.evaluate_claims([run], reps=REPS), "TRPO_to_PPO")
    assert r.verdict == cl.INCONCLUSIVE
    assert r.ci_low < 0 < r.ci_high


def test_no_ppo_cell_is_not_testable_and_names_the_cells_needed(tmp_path):
    run = _algo_run(tmp_path, HIGH, None, targets=("Mo",))
    results = cl.evaluate_claims([run], reps=REPS)
    r = _result(results, "TRPO_to_PPO")
    assert r.verdict == cl.NOT_TESTABLE and r.n_cells == 0 and r.cells == []
    assert "needs a cell of PPO with world=myeloid, task=steer, target=Mo, optimizer=adam, max_perturb=2" in r.note
    # Claim 3 shares the PPO baseline: with neither side present it says so.
    lora = _result(results, "LoRA_staged", claim=3)
    assert lora.verdict == cl.NOT_TESTABLE and "LoRA_staged and PPO" in lora.note


def test_verdict_rules_on_the_interval():
    assert cl.verdict(0.01, 0.2) == cl.SUPPORTED
    assert cl.verdict(-0.2, -0.01) == cl.CONTRADICTED
    assert cl.verdict(-0.1, 0.1) == cl.INCONCLUSIVE
    assert cl.verdict(0.0, 0.1) == cl.INCONCLUSIVE  # touching 0 is not above it
    assert cl.verdict(float("nan"), float("nan")) == cl.INCONCLUSIVE


def test_effect_is_the_ablation_view_numbers(tmp_path):
    run = _algo_run(tmp_path, NOISY_A, LOW)
    r = _result(cl.evaluate_claims([run], reps=REPS), "TRPO_to_PPO")
    ab = paired_ablations(load_run(run), reps=REPS)
    row = ab[(ab["ablation"] == "TRPO_to_PPO vs PPO") & (ab["level"] == LEVEL_ALL)].iloc[0]
    for ours, theirs in ((r.effect, "difference"), (r.ci_low, "ci_low"), (r.ci_high, "ci_high"),
                         (r.prob_improvement, "prob_improvement")):
        assert ours == pytest.approx(row[theirs])


def _asgd_run(tmp_path, gains: dict[int, float], name="run"):
    cells = []
    for k, gain in gains.items():
        for target in ("Mo", "Neu"):
            base = [0.40, 0.42, 0.41, 0.39, 0.40]
            cells.append(FakeCell(optimizer="adam", max_perturb=k, target=target, final_scores=base))
            cells.append(FakeCell(optimizer="asgd_adam", max_perturb=k, target=target,
                                  final_scores=[round(s + gain, 3) for s in base]))
    return write_run_dir(tmp_path / name, cells)


def test_asgd_gain_growing_with_max_perturb_supports_claim_4(tmp_path):
    run = _asgd_run(tmp_path, {1: 0.0, 2: 0.1, 4: 0.3})
    results = cl.evaluate_claims([run], reps=REPS)
    c2 = _result(results, "asgd_adam", claim=2)
    assert c2.verdict == cl.SUPPORTED and c2.n_cells == 6
    c4 = _result(results, "asgd_adam", claim=4)
    # largest (k=4) minus smallest (k=1) effect; k=2 does not enter the contrast
    assert c4.effect == pytest.approx(0.3, abs=1e-9)
    assert c4.verdict == cl.SUPPORTED and c4.ci_low > 0 and c4.n_cells == 4
    assert "1 vs 4" in c4.note and "k=4: 0.300" in c4.note
    assert _result(results, "asgd_amsgrad", claim=4).verdict == cl.NOT_TESTABLE


def test_asgd_gain_shrinking_with_max_perturb_contradicts_claim_4(tmp_path):
    run = _asgd_run(tmp_path, {1: 0.3, 4: 0.0})
    c4 = _result(cl.evaluate_claims([run], reps=REPS), "asgd_adam", claim=4)
    assert c4.verdict == cl.CONTRADICTED and c4.effect == pytest.approx(-0.3, abs=1e-9)


def test_claim_4_needs_two_max_perturb_values(tmp_path):
    run = _asgd_run(tmp_path, {2: 0.2})
    c4 = _result(cl.evaluate_claims([run], reps=REPS), "asgd_adam", claim=4)
    assert c4.verdict == cl.NOT_TESTABLE and "two or more MAX_PERTURB" in c4.note and "[2]" in c4.note


def test_runs_with_different_tuning_budgets_do_not_pair(tmp_path):
    a = write_run_dir(tmp_path / "a", [FakeCell(algorithm="TRPO_to_PPO", final_scores=HIGH)])
    b = write_run_dir(tmp_path / "b", [FakeCell(algorithm="PPO", final_scores=LOW)])
    same = cl.evaluate_claims([a, b], reps=REPS)
    assert _result(same, "TRPO_to_PPO").verdict == cl.SUPPORTED
    assert "hpo.trials_per_cell = 4 on both sides" in _result(same, "TRPO_to_PPO").tuning_budget
    (b / "spec.yaml").write_text((b / "spec.yaml").read_text() + "hpo:\n  trials_per_cell: 8\n")
    r = _result(cl.evaluate_claims([a, b], reps=REPS), "TRPO_to_PPO")
    assert r.verdict == cl.NOT_TESTABLE
    assert "spec differs in hpo" in r.note


def test_trap_tasks_count_seeds_near_the_best_known(tmp_path):
    run = _algo_run(tmp_path, HIGH, LOW, targets=("Mo",))
    # greedy far below the best known (the oracle's 0.9) makes Mo a trap
    (run / "baselines.json").write_text(json.dumps({"myeloid|steer|Mo|2": {
        "world": "myeloid", "task": "steer", "target": "Mo", "max_perturb": 2,
        "results": [{"name": "greedy", "value": 0.4, "stderr": 0.0, "best": []}]}}))
    r = _result(cl.evaluate_claims([run], reps=REPS), "TRPO_to_PPO")
    assert r.trap_tasks == 1
    # best known 0.9 (exact oracle): 95% of it is 0.855, above every seed of both sides
    assert (r.trap_variant_near_best, r.trap_variant_seeds) == (0, 5)
    assert (r.trap_baseline_near_best, r.trap_baseline_seeds) == (0, 5)
    (run / "oracle.json").write_text(json.dumps({"myeloid|steer|Mo|2": {"optimum": 0.8, "exact": True}}))
    r = _result(cl.evaluate_claims([run], reps=REPS), "TRPO_to_PPO")
    # best known is now the TRPO_to_PPO cell's mean 0.804: its seeds >= 0.7638 all count
    assert (r.trap_variant_near_best, r.trap_baseline_near_best) == (5, 0)


def test_cli_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, _, err = run_cli(["claims", str(tmp_path)], capsys)
    one_line_error(code, err, str(tmp_path))


def test_cli_writes_claims_naming_the_seeds(tmp_path, capsys):
    run = _algo_run(tmp_path, HIGH, LOW)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["claims", str(run), "--out", str(out), "--reps", "200"], capsys)
    assert code == 0, err
    assert "1 supported" in stdout
    md = (out / "claims.md").read_text()
    assert "### TRPO_to_PPO vs PPO: supported" in md
    assert "final seeds 1000, 1001, 1002, 1003, 1004" in md
    assert "myeloid-steer-Mo-TRPO_to_PPO-adam-k2-gnn" in md and "2 tuning trial(s)" in md
    table = pd.read_csv(out / "claims.csv")
    assert list(table.columns) == list(cl.CLAIM_COLUMNS) and len(table) == 6
    assert "1000, 1001" in table.loc[0, "cells"]
    code, printed, _ = run_cli(["claims", str(run), "--reps", "200"], capsys)
    assert code == 0 and printed.strip() == md.strip()
