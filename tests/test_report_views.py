"""The Optuna view (history, importance) and the rliable view (profiles, P(X > Y)) on synthetic run dirs.

The journal is written the way the searcher writes it (one study per cell, named by the cell id,
through the run's journal backend, each trial tagged with its tuning slot), with objective values
chosen so the best-so-far line, the importance ranking and the improvement matrix are known by hand.
"""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from rundir_factory import FakeCell, write_run_dir
from tournament.engine.journal import JOURNAL_NAME, journal_storage
from tournament.report import optuna_view, profiles
from tournament.report.leaderboard import build_leaderboard, load_run
from tournament.report.report import build_report

REPS = 200
LR = FloatDistribution(1e-5, 1e-2, log=True)
CLIP = FloatDistribution(0.1, 0.3)


def write_journal(run, studies: dict[str, list[dict]]) -> None:
    """One Optuna study per cell id; each trial a dict of params, value, slot (and state)."""
    storage = journal_storage(run / JOURNAL_NAME, root=run)
    for cell_id, trials in studies.items():
        study = optuna.create_study(study_name=cell_id, storage=storage, direction="maximize")
        for t in trials:
            params = t.get("params", {})
            dists = {name: {"lr": LR, "clip": CLIP}[name] for name in params}
            state = t.get("state", TrialState.COMPLETE)
            study.add_trial(create_trial(params=params, distributions=dists, state=state,
                                         value=t["value"] if state == TrialState.COMPLETE else None,
                                         user_attrs={"slot": t["slot"]}))


def tuned_trials(n: int = 20) -> list[dict]:
    """The score rises with log(lr) and ignores clip: lr is the important parameter."""
    rng = np.random.default_rng(0)
    lrs = np.exp(rng.uniform(np.log(1e-5), np.log(1e-2), n))
    clips = rng.uniform(0.1, 0.3, n)
    return [{"params": {"lr": float(lr), "clip": float(c)}, "value": float((np.log10(lr) + 5) / 3), "slot": i}
            for i, (lr, c) in enumerate(zip(lrs, clips))]


TUNED = FakeCell(algorithm="PPO", final_scores=[0.6, 0.7])
HISTORY = FakeCell(algorithm="TRPO", final_scores=[0.5, 0.6])
FEW = FakeCell(algorithm="A2C", final_scores=[0.3, 0.4])
FIXED = FakeCell(algorithm="SAC", final_scores=[0.2, 0.3])
# slot 2 ran twice: only its later trial (0.3) counts, the lost one (0.9) must not
HISTORY_TRIALS = [{"params": {"lr": 1e-3}, "value": v, "slot": s}
                  for v, s in ((0.2, 0), (0.5, 1), (0.9, 2), (0.3, 2), (0.7, 3), (0.6, 4))]


@pytest.fixture(scope="module")
def optuna_run(tmp_path_factory):
    run = write_run_dir(tmp_path_factory.mktemp("optuna") / "run", [TUNED, HISTORY, FEW, FIXED])
    write_journal(run, {
        TUNED.cell_id: tuned_trials(),
        HISTORY.cell_id: HISTORY_TRIALS,
        FEW.cell_id: [{"params": {"lr": 1e-3}, "value": 0.4, "slot": 0},
                      {"params": {"lr": 1e-4}, "value": None, "slot": 1, "state": TrialState.FAIL}],
        FIXED.cell_id: [{"params": {}, "value": v, "slot": s} for s, v in enumerate((0.2, 0.3, 0.25))],
    })
    return run


def test_importance_ranks_the_parameter_that_matters(optuna_run):
    studies, note = optuna_view.load_studies(optuna_run)
    assert note == "" and set(studies) == {c.cell_id for c in (TUNED, HISTORY, FEW, FIXED)}
    imp = studies[TUNED.cell_id].importances
    assert set(imp) == {"lr", "clip"} and sum(imp.values()) == pytest.approx(1.0)
    assert imp["lr"] > 0.8 > imp["clip"]
    assert "rough" not in studies[TUNED.cell_id].note  # 20 trials: enough for PED-ANOVA's top 10%


def test_too_few_trials_and_no_searched_parameter_say_so(optuna_run):
    studies, _ = optuna_view.load_studies(optuna_run)
    few, fixed = studies[FEW.cell_id], studies[FIXED.cell_id]
    assert few.importances == {} and few.n_failed == 1
    assert few.note == "too few trials for importance: 1 complete (at least 2 needed)"
    assert fixed.importances == {} and fixed.note == "no searched hyperparameter (a fixed configuration): no importance"
    table = optuna_view.importance_table(studies, build_leaderboard(optuna_run, reps=REPS)).set_index("cell")
    (few_row,) = [r for label, r in table.iterrows() if "A2C" in label]
    assert few_row["importance (PED-ANOVA)"] == "–" and few_row["failed trials"] == 1
    assert few_row["note"].startswith("too few trials")
    (fixed_row,) = [r for label, r in table.iterrows() if "SAC" in label]
    assert fixed_row["complete trials"] == 3 and fixed_row["best value"] == pytest.approx(0.3)
    # only the cells with importances get a bar row in the importance figure
    fig = optuna_view.plot_param_importances(studies, build_leaderboard(optuna_run, reps=REPS))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 2 and all("A2C" not in t and "SAC" not in t for t in labels)


def test_history_is_the_best_so_far_of_the_counted_trials(optuna_run):
    studies, _ = optuna_view.load_studies(optuna_run)
    s = studies[HISTORY.cell_id]
    assert [t.value for t in s.complete] == [0.2, 0.5, 0.3, 0.7, 0.6]  # slot 2's earlier 0.9 left out
    lb = build_leaderboard(optuna_run, reps=REPS)
    fig = optuna_view.plot_optimization_history({HISTORY.cell_id: s}, lb)
    values, best = fig.axes[0].lines[:2]
    assert list(values.get_ydata()) == [0.2, 0.5, 0.3, 0.7, 0.6]
    assert list(best.get_ydata()) == [0.2, 0.5, 0.5, 0.7, 0.7]
    table = optuna_view.importance_table(studies, lb)
    assert table.loc[table["cell"].str.contains("TRPO"), "best value"].item() == pytest.approx(0.7)


def test_report_shows_the_optuna_views(optuna_run):
    written = build_report(optuna_run, reps=REPS)
    assert {"plots/param_importances.png", "plots/optimization_history.png"} <= set(written)
    text = (optuna_run / "report.html").read_text()
    assert "too few trials for importance: 1 complete" in text
    assert "no searched hyperparameter (a fixed configuration)" in text
    assert "No Optuna journal" not in text


def test_a_run_without_a_journal_says_so(tmp_path):
    run = write_run_dir(tmp_path / "run", [FEW])
    studies, note = optuna_view.load_studies(run)
    assert studies == {} and note == f"No Optuna journal ({JOURNAL_NAME}) in this run directory."
    assert optuna_view.plot_optimization_history(studies, build_leaderboard(run, reps=REPS)) is None


# ---------------------------------------------------------------- rliable view

BEST, MIDDLE, WORST = "PPO / adam / gnn", "TRPO / adam / gnn", "A2C / adam / gnn"


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    """Three recipes on two tasks (k=2, k=3), optimum 0.9: PPO near it, TRPO halfway, A2C far below."""
    cells = []
    for k in (2, 3):
        cells += [FakeCell(algorithm="A2C", max_perturb=k, final_scores=[0.10, 0.15, 0.20]),
                  FakeCell(algorithm="PPO", max_perturb=k, final_scores=[0.80, 0.85, 0.90]),
                  FakeCell(algorithm="TRPO", max_perturb=k, final_scores=[0.40, 0.45, 0.50])]
    run = write_run_dir(tmp_path_factory.mktemp("recipes") / "run", cells)
    scores, notes = profiles.method_scores(load_run(run))
    return run, scores, notes


def test_methods_are_ranked_and_normalized(recipes):
    _, scores, notes = recipes
    assert list(scores) == [BEST, MIDDLE, WORST] and notes == []
    assert len(scores[BEST]) == 2
    for task in scores[BEST].values():
        np.testing.assert_allclose(task, np.array([0.80, 0.85, 0.90]) / 0.9)


def test_profile_of_the_better_recipe_dominates(recipes):
    _, scores, _ = recipes
    taus, prof, band, notes = profiles.profiles(scores, reps=REPS)
    assert notes == [] and taus[0] == 0.0 and taus[-1] == pytest.approx(1.0)

    def at(method: str, tau: float) -> float:
        return float(prof[method][np.argmin(np.abs(taus - tau))])

    # normalized: A2C 0.11-0.22, TRPO 0.44-0.56, PPO 0.89-1.0
    assert [at(m, 0.3) for m in (BEST, MIDDLE, WORST)] == [1.0, 1.0, 0.0]
    assert [at(m, 0.7) for m in (BEST, MIDDLE, WORST)] == [1.0, 0.0, 0.0]
    for m in prof:
        assert np.all(np.diff(prof[m]) <= 1e-12)  # a share of runs above a rising threshold
        lo, hi = band[m]
        assert np.all(lo <= prof[m] + 1e-12) and np.all(prof[m] <= hi + 1e-12)


def test_improvement_matrix_reads_row_beats_column(recipes):
    _, scores, _ = recipes
    table = profiles.poi_table(scores, reps=REPS)
    p = {(r.method_x, r.method_y): r.prob_improvement for r in table.itertuples()}
    assert len(p) == 6
    assert p[(BEST, WORST)] == 1.0 and p[(WORST, BEST)] == 0.0
    assert p[(BEST, MIDDLE)] == 1.0 and p[(MIDDLE, WORST)] == 1.0 and p[(MIDDLE, BEST)] == 0.0
    row = table[(table["method_x"] == BEST) & (table["method_y"] == WORST)].iloc[0]
    assert row["n_tasks"] == 2 and (row["n_runs_x"], row["n_runs_y"]) == (6, 6)
    methods = list(scores)
    fig = profiles.plot_poi_matrix(table, methods)
    ax = fig.axes[0]
    mat = np.asarray(ax.images[0].get_array())
    i, j = methods.index(BEST), methods.index(WORST)
    # row = method X, column = method Y: the better recipe's row holds the ones
    assert mat[i, j] == 1.0 and mat[j, i] == 0.0
    assert np.isnan(mat[i, i])
    assert ax.get_ylabel() == "method X" and ax.get_xlabel() == "method Y"
    assert [t.get_text() for t in ax.get_yticklabels()] == methods


def test_report_writes_the_improvement_table(recipes):
    run, _, _ = recipes
    build_report(run, reps=REPS)
    poi = pd.read_csv(run / "probability_of_improvement.csv")
    best_over_worst = poi[(poi["method_x"] == BEST) & (poi["method_y"] == WORST)]["prob_improvement"].item()
    assert best_over_worst == 1.0
    assert "Across algorithms (rliable)" in (run / "report.html").read_text()
