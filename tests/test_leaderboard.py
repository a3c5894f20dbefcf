"""Leaderboard statistics on synthetic run directories whose answers are known by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rundir_factory import FakeCell, default_oracle, write_run_dir
from tournament.report import stats
from tournament.report.ablations import max_perturb_view, paired_ablations
from tournament.report.biology_view import biology_view, canonical_set, format_set
from tournament.report.leaderboard import (
    SOURCE_FINAL,
    SOURCE_PROVISIONAL,
    build_leaderboard,
    load_run,
)

REPS = 300  # enough for stable intervals on these well-separated toy scores; keeps tests fast


def _row(lb: pd.DataFrame, **axes) -> pd.Series:
    sel = lb
    for k, v in axes.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"expected one row for {axes}, got {len(sel)}"
    return sel.iloc[0]


# ---------------------------------------------------------------- stats


def test_iqm_and_mean_by_hand():
    scores = [0, 1, 2, 3, 4, 5, 6, 100]
    # 8 runs: the 25% trim drops two from each end, leaving 2, 3, 4, 5.
    assert stats.iqm(scores) == pytest.approx(3.5)
    assert stats.mean(scores) == pytest.approx(121 / 8)
    est = stats.interval(scores, "iqm", reps=REPS)
    assert est.point == pytest.approx(3.5)
    assert est.low <= est.point <= est.high
    # A bootstrap IQM can never leave the data's range.
    assert 0 <= est.low and est.high <= 100


def test_interval_is_seeded_and_leaves_global_rng_alone():
    x = np.random.default_rng(3).random(9)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = stats.interval(x, "mean", reps=REPS, seed=7)
    assert np.array_equal(np.random.get_state()[1], before)
    b = stats.interval(x, "mean", reps=REPS, seed=7)
    c = stats.interval(x, "mean", reps=REPS, seed=8)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)


def test_interval_unknown_with_one_score():
    est = stats.interval([0.4], "iqm")
    assert est.point == pytest.approx(0.4)
    assert np.isnan(est.low) and np.isnan(est.high) and not est.known
    assert np.isnan(stats.interval([], "mean").point)
    with pytest.raises(ValueError, match="valid choices"):
        stats.interval([1.0, 2.0], "median")


def test_probability_of_improvement_by_hand():
    assert stats.probability_of_improvement([[3.0, 4.0]], [[1.0, 2.0]]) == pytest.approx(1.0)
    assert stats.probability_of_improvement([[1.0, 2.0]], [[3.0, 4.0]]) == pytest.approx(0.0)
    assert stats.probability_of_improvement([[1.0, 2.0]], [[1.0, 2.0]]) == pytest.approx(0.5)
    # x=[1,3], y=[2]: one of two pairs wins; averaged with a second cell at 1.0.
    assert stats.probability_of_improvement([[1.0, 3.0], [5.0]], [[2.0], [0.0]]) == pytest.approx(0.75)


@pytest.mark.parametrize("ragged", [False, True])
def test_paired_difference_by_hand(ragged):
    variant = [[0.8, 0.9, 1.0], [0.5, 0.6, 0.7]]
    baseline = [[0.5, 0.6, 0.7], [0.5, 0.6, 0.7] if not ragged else [0.5, 0.7]]
    d = stats.paired_difference(variant, baseline, reps=REPS)
    # Cell 1: 0.9 - 0.6 = 0.3; cell 2: 0.6 - 0.6 = 0 -> mean over cells 0.15.
    assert d.difference == pytest.approx(0.15)
    assert d.n_cells == 2 and d.n_variant_runs == 6 and d.n_baseline_runs == (5 if ragged else 6)
    assert d.low <= d.difference <= d.high
    assert d.low > -0.2 and d.high < 0.4
    again = stats.paired_difference(variant, baseline, reps=REPS)
    assert (again.low, again.high) == (d.low, d.high)


def test_intervals_overlap():
    assert stats.intervals_overlap(0, 1, 1, 2) is True
    assert stats.intervals_overlap(0, 1, 1.01, 2) is False
    assert stats.intervals_overlap(0, np.nan, 0, 1) is None


# ---------------------------------------------------------------- leaderboard


def test_ranking_ties_and_iqm(tmp_path):
    best = [0.90, 0.91, 0.92, 0.93]
    cells = [
        FakeCell(algorithm="A2C", final_scores=[0.10, 0.11, 0.12, 0.15]),
        FakeCell(algorithm="PPO", final_scores=best),
        # Same scores shifted by 0.001: its interval must overlap the leader's.
        FakeCell(algorithm="TRPO", final_scores=[s - 0.001 for s in best]),
        # Another target is its own group with its own leader.
        FakeCell(algorithm="A2C", target="Neu", final_scores=[0.2, 0.3, 0.4, 0.5]),
    ]
    lb = build_leaderboard(write_run_dir(tmp_path / "run", cells), reps=REPS)
    assert len(lb) == 4
    ppo, trpo = _row(lb, algorithm="PPO"), _row(lb, algorithm="TRPO")
    a2c = _row(lb, algorithm="A2C", target="Mo")
    neu = _row(lb, target="Neu")
    assert (ppo["rank"], trpo["rank"], a2c["rank"], neu["rank"]) == (1, 2, 3, 1)
    assert ppo["iqm"] == pytest.approx(0.915)  # mean of the middle two
    assert a2c["iqm"] == pytest.approx(0.115)
    assert a2c["mean"] == pytest.approx(0.12)
    assert bool(trpo["tie_with_leader"]) is True
    assert bool(ppo["tie_with_leader"]) is True  # the leader is part of a tie
    assert bool(a2c["tie_with_leader"]) is False
    assert bool(neu["tie_with_leader"]) is False  # alone in its group
    assert ppo["ci_low"] <= ppo["iqm"] <= ppo["ci_high"]
    assert ppo["n_seeds"] == 4 and ppo["score_source"] == SOURCE_FINAL
    # Rows come out grouped and ranked.
    assert list(lb["rank"]) == [1, 2, 3, 1]


def test_gap_oracle_costs_and_hparams(tmp_path):
    cells = [
        FakeCell(algorithm="PPO", final_scores=[0.5, 0.6, 0.7, 0.8], failed_tune=2,
                 tune_scores=[0.3, 0.55, 0.4], cpu_seconds=7.0,
                 steps_to_90=[1000, 3000, None, 2000]),
        FakeCell(algorithm="PPO", max_perturb=3, final_scores=[0.5, 0.5], optimizer="asgd_adam",
                 steps_to_90=[None, None]),
        FakeCell(algorithm="PPO", max_perturb=4, final_scores=[0.5, 0.5]),
    ]
    oracle = default_oracle(cells[:1], optimum=0.9, exact=True)
    oracle.update(default_oracle(cells[1:2], optimum=0.8, exact=False))
    run = write_run_dir(tmp_path / "run", cells, oracle=oracle)
    lb = build_leaderboard(run, reps=REPS)
    k2, k3, k4 = (_row(lb, max_perturb=k) for k in (2, 3, 4))
    assert k2["optimality_gap"] == pytest.approx(0.9 - 0.65)
    assert bool(k2["oracle_exact"]) is True
    assert k3["optimality_gap"] == pytest.approx(0.3) and bool(k3["oracle_exact"]) is False
    # no oracle entry: the best entry with at most its MAX_PERTURB is the best known value
    assert pd.isna(k4["oracle_exact"]) and k4["optimum"] == pytest.approx(0.65)
    assert k4["reference"] == f"best entry {k2['cell_id']}" and k4["optimality_gap"] == pytest.approx(0.15)
    assert k3["reference"] == "oracle lower bound" and k2["reference"] == "exact optimum"
    # 3 ok tuning + 2 failed tuning + 4 final trials, 7 CPU-seconds each.
    assert k2["cpu_seconds"] == pytest.approx(9 * 7.0)
    assert k2["failed_trials"] == 2 and k3["failed_trials"] == 0
    # Median of [1000, 2000, 3000, never]: never counts as slowest -> (2000 + 3000) / 2.
    assert k2["steps_to_90"] == pytest.approx(2500) and k2["seeds_reached_90"] == "3/4"
    assert np.isnan(k3["steps_to_90"]) and k3["seeds_reached_90"] == "0/2"
    # The final rows were trained with the best tuning trial's config (index 1 -> lr 0.002).
    assert json.loads(k2["best_hparams"]) == {"lr": pytest.approx(0.002)}
    assert set(json.loads(k3["best_hparams"])) == {"lr_min", "lr_max"}


def test_killed_during_tuning_gives_provisional_scores(tmp_path):
    cells = [FakeCell(algorithm="PPO", tune_scores=[0.2, 0.7, 0.5], final_scores=[0.9, 0.9]),
             FakeCell(algorithm="A2C", tune_scores=[0.3], final_scores=[0.1, 0.1], failed_tune=1),
             FakeCell(algorithm="SAC", tune_scores=[], failed_tune=2)]
    run = write_run_dir(tmp_path / "run", cells, manifest_status="running", final_phase=False)
    assert not (run / "final_scores.csv").exists()
    lb = build_leaderboard(run, reps=REPS)
    ppo, a2c, sac = (_row(lb, algorithm=a) for a in ("PPO", "A2C", "SAC"))
    assert ppo["score_source"] == SOURCE_PROVISIONAL == "provisional (tuning scores)"
    assert ppo["iqm"] == pytest.approx(0.7) and ppo["n_seeds"] == 0
    assert np.isnan(ppo["ci_low"]) and pd.isna(ppo["tie_with_leader"])
    assert json.loads(ppo["best_hparams"]) == {"lr": pytest.approx(0.002)}
    assert a2c["iqm"] == pytest.approx(0.3) and a2c["failed_trials"] == 1
    assert sac["score_source"] == "no successful trial" and np.isnan(sac["iqm"])
    assert list(lb.sort_values("rank")["algorithm"]) == ["PPO", "A2C", "SAC"]


def test_final_rows_from_trials_when_final_scores_missing(tmp_path):
    cells = [FakeCell(algorithm="PPO", final_scores=[0.4, 0.6]),
             FakeCell(algorithm="A2C", final_scores=[])]
    run = write_run_dir(tmp_path / "run", cells, manifest_status="running",
                        final_scores_file=False)
    lb = build_leaderboard(run, reps=REPS)
    ppo, a2c = _row(lb, algorithm="PPO"), _row(lb, algorithm="A2C")
    assert ppo["score_source"] == SOURCE_FINAL and ppo["mean"] == pytest.approx(0.5)
    assert ppo["n_seeds"] == 2
    assert a2c["score_source"] == SOURCE_PROVISIONAL
    # Final-seed cells rank before provisional ones even with a lower score.
    assert ppo["rank"] == 1 and a2c["rank"] == 2


def test_text_columns_are_not_coerced(tmp_path):
    # A fate called "NA" must stay a name, and predict cells use target "-".
    cells = [FakeCell(target="NA", final_scores=[0.5, 0.6]),
             FakeCell(task="predict", target="-", final_scores=[0.7, 0.8])]
    lb = build_leaderboard(write_run_dir(tmp_path / "run", cells), reps=REPS)
    assert sorted(lb["target"]) == ["-", "NA"]
    assert (lb["optimum"] == 0.9).all()  # both found their oracle keys


def test_empty_run_dir(tmp_path):
    lb = build_leaderboard(tmp_path, reps=REPS)
    assert lb.empty and "iqm" in lb.columns


# ---------------------------------------------------------------- ablations


def test_paired_ablations_match_cells(tmp_path):
    cells = [
        FakeCell(algorithm="PPO", optimizer="adam", final_scores=[0.5, 0.6, 0.7]),
        FakeCell(algorithm="PPO", optimizer="asgd_adam", final_scores=[0.7, 0.8, 0.9]),
        FakeCell(algorithm="PPO", optimizer="adam", max_perturb=3, final_scores=[0.2, 0.3]),
        FakeCell(algorithm="PPO", optimizer="asgd_adam", max_perturb=3, final_scores=[0.3, 0.4]),
        FakeCell(algorithm="TRPO_to_PPO", optimizer="adam", final_scores=[0.1, 0.2, 0.3]),
        # No PPO/mlp cell to match: must not be paired with anything.
        FakeCell(algorithm="TRPO_to_PPO", optimizer="adam", module="mlp", final_scores=[0.9, 0.9]),
    ]
    run = load_run(write_run_dir(tmp_path / "run", cells))
    ab = paired_ablations(run, reps=REPS)
    assert set(ab["ablation"]) == {"TRPO_to_PPO vs PPO", "asgd_adam vs adam"}
    agg = ab[ab["level"] == "all matching cells"].set_index("ablation")
    assert agg.loc["asgd_adam vs adam", "n_cells"] == 2
    assert agg.loc["asgd_adam vs adam", "difference"] == pytest.approx((0.2 + 0.1) / 2)
    assert agg.loc["asgd_adam vs adam", "prob_improvement"] > 0.8
    trpo = agg.loc["TRPO_to_PPO vs PPO"]
    assert trpo["n_cells"] == 1 and trpo["difference"] == pytest.approx(-0.4)
    assert trpo["prob_improvement"] == pytest.approx(0.0)
    assert trpo["ci_high"] < 0  # clearly worse: the interval excludes zero
    per_cell = ab[ab["level"] == "cell"]
    assert len(per_cell) == 3
    assert "module=gnn" in per_cell.iloc[0]["match"]


def test_max_perturb_view_takes_best_optimizer(tmp_path):
    cells = [FakeCell(optimizer="adam", max_perturb=2, final_scores=[0.5, 0.5]),
             FakeCell(optimizer="asgd_adam", max_perturb=2, final_scores=[0.6, 0.6]),
             FakeCell(optimizer="adam", max_perturb=3, final_scores=[0.8, 0.8])]
    lb = build_leaderboard(write_run_dir(tmp_path / "run", cells), reps=REPS)
    view = max_perturb_view(lb)
    assert list(view["max_perturb"]) == [2, 3]
    assert list(view["optimizer"]) == ["asgd_adam", "adam"]
    assert view["normalized_iqm"].tolist() == pytest.approx([0.6 / 0.9, 0.8 / 0.9])


# ---------------------------------------------------------------- biology view


def test_biology_view_against_oracle(tmp_path):
    two = [["Gfi1", "knockout"], ["Cebpa", "overexpression"]]
    sets = [[two, two, [["Gfi1", "ko"]]], [two, [["Irf8", "oe"]], []]]
    cells = [FakeCell(final_scores=[0.8, 0.7], perturbation_sets=sets)]
    run = load_run(write_run_dir(tmp_path / "run", cells))
    view = biology_view(run, build_leaderboard(run, reps=REPS))
    top = view.iloc[0]
    assert top["set"] == "Cebpa oe + Gfi1 ko"
    assert top["count"] == 3 and top["frequency"] == pytest.approx(0.5)
    assert bool(top["in_oracle_best"]) and top["oracle_rank"] == 1
    assert top["oracle_probability"] == pytest.approx(0.9)
    # Ties in count are ordered by set so rebuilds agree; "(none)" sorts first.
    assert list(view["set"]) == ["Cebpa oe + Gfi1 ko", "(none)", "Gfi1 ko"]
    gfi = view[view["set"] == "Gfi1 ko"].iloc[0]
    assert gfi["oracle_rank"] == 2 and gfi["oracle_probability"] == pytest.approx(0.8)
    none = view[view["set"] == "(none)"].iloc[0]
    assert not bool(none["in_oracle_best"])
    assert none["oracle_probability"] == pytest.approx(0.3)  # the baseline P(Mo)


def test_canonical_set():
    assert canonical_set([["B", "oe"], ["A", "knockout"]]) == (("A", "ko"), ("B", "oe"))
    assert format_set(()) == "(none)"
    # a perturbation applied after stage 0 keeps its stage; at stage 0 it is the time-0 pair
    timed = canonical_set([["B", "oe", 2], ["A", "knockout", 0]])
    assert timed == (("A", "ko"), ("B", "oe", 2)) and format_set(timed) == "A ko + B oe @stage 2"


def test_a_better_entry_raises_an_oracle_lower_bound(tmp_path):
    cells = [
        FakeCell(algorithm="PPO", max_perturb=3, final_scores=[0.5, 0.5]),
        FakeCell(algorithm="A2C", max_perturb=2, final_scores=[0.9, 0.95]),
    ]
    oracle = default_oracle(cells[:1], optimum=0.8, exact=False)
    run = write_run_dir(tmp_path / "run", cells, oracle=oracle)
    lb = build_leaderboard(run, reps=REPS)
    k3 = _row(lb, max_perturb=3)
    # The A2C entry reached 0.925 with at most 2 perturbations: no optimum at k=3 is lower.
    assert k3["optimum"] == pytest.approx(0.925)
    assert k3["reference"].startswith("best entry")
    assert k3["optimality_gap"] == pytest.approx(0.925 - 0.5)
