"""The tournament report, rebuilt from a run directory at any time (also while the run goes on).

``build_report(run_dir)`` writes ``leaderboard.csv``, ``leaderboard.md``, ``ablations.csv``,
``probability_of_improvement.csv``, ``predict_stages.csv`` (predict cells only),
``trajectory_metrics.csv`` (trajectory cells only), ``plots/*.png``
and a self-contained ``report.html`` (plots embedded as base64, no external
resources) into the run directory, each atomically. Bootstrap resampling uses a fixed seed and
nothing time-dependent is written, so rebuilding from the same files gives identical output.
When the manifest does not say "finished", every output carries a partial-report banner and is
built from whatever rows exist. Damaged records (see tournament.report.leaderboard.load_run) are left
out and each output names them (the first MAX_SHOWN_DAMAGE, then a count). Large runs are
summarized: figures show at most a bounded number of panels and rows (the best cells, the
extreme ablation pairs), and say how many of how many; every cell is in the tables.

Size: over 350 lines because the HTML page and leaderboard.md are written side by side from the
same tables, section by section, so each section's two forms stay together.
"""

from __future__ import annotations

import base64
import html
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from envs.files import atomic_write_bytes
from tournament.report import optuna_view, plots, predict_view, profiles, stats, trajectory_view
from tournament.report.ablations import max_perturb_view, paired_ablations
from tournament.report.biology_view import biology_view, oracle_table
from tournament.report.leaderboard import (
    GROUP_AXES,
    SOURCE_FINAL,
    SOURCE_PROVISIONAL,
    RunData,
    build_leaderboard,
    load_run,
)
from tournament.engine.rundir import write_error
from tournament.report.benchmark_view import task_description
from tournament.report.references import DASH_REFERENCE

DASH = stats.DASH
MAX_SHOWN_DAMAGE = 10


def run_name(run: RunData) -> str:
    """The spec's name, else the run directory's."""
    try:
        spec = yaml.safe_load(run.spec_text) if run.spec_text else None
    except yaml.YAMLError:
        spec = None
    if isinstance(spec, dict) and spec.get("name"):
        return str(spec["name"])
    return run.run_dir.resolve().name


def partial_notices(run: RunData, lb: pd.DataFrame) -> list[str]:
    """Why this report is partial (empty when the run finished and every cell has final seeds)."""
    notes = []
    status = run.run_status
    if status != "finished":
        why = {
            "running": "the run is still going or was interrupted (manifest status: running)",
            "interrupted": "the run was interrupted (manifest status: interrupted)",
            "failed": "the run failed (manifest status: failed)",
        }.get(status, f"the run's state is unknown (manifest status: {status})")
        notes.append(f"Partial report: {why}. Built from the rows that exist so far.")
    n_prov = int((lb["score_source"] == SOURCE_PROVISIONAL).sum()) if not lb.empty else 0
    if n_prov:
        notes.append(
            f"{n_prov} of {len(lb)} cells have no final-seed scores yet: their score is "
            f"provisional (tuning scores), the best tuning trial, optimistic and without interval."
        )
    if not run.has_final_scores_file and status == "finished":
        notes.append("final_scores.csv is missing although the run finished.")
    return notes + damage_notices(run)


def damage_notices(run: RunData) -> list[str]:
    """What the report left out because it was damaged (empty for an intact run directory)."""
    if not run.skipped:
        return []
    n = len(run.skipped)
    notes = [f"Damaged records: {n} left out of this report. `tournament verify RUN` checks the run directory; "
             f"`tournament resume RUN` sets aside a damaged last record and re-runs its trial."]
    notes += [f"Skipped: {line}" for line in run.skipped[:MAX_SHOWN_DAMAGE]]
    if n > MAX_SHOWN_DAMAGE:
        notes.append(f"Skipped: {n - MAX_SHOWN_DAMAGE} more damaged record(s) not listed.")
    return notes


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if x is not None and np.isfinite(x) else DASH


def _tie(v) -> str:
    return DASH if pd.isna(v) else ("yes" if bool(v) else "no")


def _steps(r: pd.Series) -> str:
    if np.isfinite(r["steps_to_90"]):
        return f"{int(round(r['steps_to_90']))} ({r['seeds_reached_90']} seeds)"
    return f"not reached ({r['seeds_reached_90']} seeds)" if r["seeds_reached_90"] else DASH


def _optimum(r: pd.Series) -> str:
    """The optimum with what it is: exact dynamic / exact static optimum, a lower bound, a best entry."""
    if not np.isfinite(r["optimum"]):
        return DASH
    where = str(r.get("reference", "") or "")
    if where.startswith("best entry"):
        return f"{r['optimum']:.3f} (best known: {where})"
    if where in ("", DASH_REFERENCE):
        exact = pd.notna(r["oracle_exact"]) and bool(r["oracle_exact"])
        return f"{r['optimum']:.3f} (exact)" if exact else f"{r['optimum']:.3f} (best known)"
    return f"{r['optimum']:.3f} ({where})"


def _entry_detail(r: pd.Series) -> str:
    """An RL row's best hyperparameters; a baseline row's best set, budget used and any reason."""
    if r.get("entry") != "baseline":
        return r["best_hparams"]
    try:
        d = json.loads(r.get("details") or "{}")
    except ValueError:
        return str(r.get("details", ""))
    parts = [" + ".join(f"{g} {k}" for g, k in d.get("set", [])) or "no perturbation"]
    if d.get("used_cells") is not None:
        parts.append(f"{int(d['used_cells']):,} of {int(d.get('budget_cells') or 0):,} simulated cells")
    if d.get("reason"):
        parts.append(str(d["reason"]))
    return "; ".join(parts)


def leaderboard_display(lb: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with formatted cells, as shown in markdown and HTML."""
    return pd.DataFrame({
        "rank": lb["rank"].astype(int),
        "entry": lb["entry"] if "entry" in lb else "rl",
        "algorithm": lb["algorithm"], "optimizer": lb["optimizer"],
        "MAX_PERTURB": lb["max_perturb"].astype(str), "module": lb["module"],
        "action": lb["action"] if "action" in lb else "discrete",
        "IQM [95% CI]": [stats.with_ci(r.iqm, r.ci_low, r.ci_high) for r in lb.itertuples()],
        "mean [95% CI]": [stats.with_ci(r.mean, r.mean_ci_low, r.mean_ci_high) for r in lb.itertuples()],
        "oracle optimum": [_optimum(r) for _, r in lb.iterrows()],
        "gap": [_num(v) for v in lb["optimality_gap"]],
        "seeds": lb["n_seeds"].astype(int),
        "steps to 90%": [_steps(r) for _, r in lb.iterrows()],
        "CPU s": [_num(v, 1) for v in lb["cpu_seconds"]],
        "failed trials": lb["failed_trials"].astype(int),
        "tie with leader": [_tie(v) for v in lb["tie_with_leader"]],
        "score source": lb["score_source"],
        "best hparams / baseline set": [_entry_detail(r) for _, r in lb.iterrows()],
    })


def _md_table(df: pd.DataFrame) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _method_text(reps: int, seed: int) -> str:
    return (
        f"IQM (25% trimmed mean) and mean of each cell's final-seed scores, with 95% "
        f"stratified-bootstrap percentile intervals (rliable; {reps} resamples, seed {seed}). "
        f"Ranked by IQM within each world/task/target; cells with provisional scores rank after "
        f"cells with final seeds. Baseline rows (random sets, greedy forward selection, beam search, "
        f"simulated annealing, AEON's phenotype control) score their best time-0 set, re-estimated "
        f"by the simulator, with an interval of 1.96 standard errors (none when exact). "
        f"Gap = optimum - IQM, against the reference each row names: the exact dynamic optimum (the "
        f"best timed policy, by dynamic programming), the exact static optimum (the best time-0 set, "
        f"which a timed policy may beat), the oracle's lower bound, or the best entry that did better "
        f"(so the true gap may be larger). 'tie with leader' = the IQM interval overlaps the "
        f"leader's (for the leader: some row's does); '{DASH}' = no interval (fewer than two seeds). "
        f"Steps to 90% = median over seeds of the env steps at which the evaluation score first "
        f"reached 90% of the optimum, a seed that never did counting as slowest."
    )


def leaderboard_markdown(run: RunData, lb: pd.DataFrame, reps: int, seed: int, views: "Views | None" = None) -> str:
    """leaderboard.md: one table per world/task/target (and the predict task per stage), with the
    partial banner if any."""
    out = [f"# Leaderboard: {run_name(run)}", ""]
    for note in partial_notices(run, lb):
        out += [f"> **{note}**", ""]
    out += [_method_text(reps, seed), ""]
    kind = task_description(run.spec_text)
    if kind != "default start":
        out += [f"Task settings: {kind}.", ""]
    if lb.empty:
        out += ["No trials recorded yet.", ""]
    for (world, task, target), g in lb.groupby(list(GROUP_AXES), sort=True):
        out += [f"## {plots.group_label(world, task, target)}", "",
                _md_table(leaderboard_display(g.sort_values("rank"))), ""]
    if views is not None:
        out += predict_markdown(views) + trajectory_markdown(views)
    return "\n".join(out)


@dataclass
class Views:
    """The report views beyond the leaderboard: Optuna per cell, rliable across recipes, predict per stage."""

    studies: dict = field(default_factory=dict)
    studies_note: str = ""
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)
    method_scores: dict = field(default_factory=dict)
    profile_notes: list[str] = field(default_factory=list)
    profile: tuple | None = None  # (taus, profiles, bands)
    poi: pd.DataFrame = field(default_factory=pd.DataFrame)
    predict_stages: pd.DataFrame = field(default_factory=pd.DataFrame)
    predict_notes: list[str] = field(default_factory=list)
    trajectory: pd.DataFrame = field(default_factory=pd.DataFrame)


def build_views(run: RunData, lb: pd.DataFrame, reps: int, seed: int) -> Views:
    """Every view of `Views` from the run directory (each empty, with a note, when it has no data)."""
    v = Views()
    v.studies, v.studies_note = optuna_view.load_studies(run.run_dir)
    v.importance = optuna_view.importance_table(v.studies, lb)
    v.method_scores, v.profile_notes = profiles.method_scores(run)
    if v.method_scores:
        taus, prof, band, notes = profiles.profiles(v.method_scores, reps, seed)
        v.profile, v.profile_notes = (taus, prof, band), v.profile_notes + notes
        v.poi = profiles.poi_table(v.method_scores, reps, seed)
    seeds, v.predict_notes = predict_view.seed_metrics(run)
    v.predict_stages = predict_view.stage_table(seeds, reps, seed)
    v.trajectory = trajectory_view.cell_table(run, reps, seed)
    return v


def predict_markdown(views: Views) -> list[str]:
    """leaderboard.md's section on the predict task's per-stage metrics (empty without predict cells)."""
    if views.predict_stages.empty and not views.predict_notes:
        return []
    out = ["## Fate prediction per stage", "", _PREDICT_TEXT, ""]
    out += [f"> {note}" for note in views.predict_notes] + ([""] if views.predict_notes else [])
    if not views.predict_stages.empty:
        out += [_md_table(predict_view.display_table(views.predict_stages)), ""]
    return out


def trajectory_markdown(views: Views) -> list[str]:
    """leaderboard.md's section on the trajectory task's metrics (empty without trajectory cells)."""
    if views.trajectory.empty:
        return []
    return ["## Expression trajectory (the seed's metrics)", "", trajectory_view.TEXT, "",
            _md_table(trajectory_view.display_table(views.trajectory)), ""]


_PREDICT_TEXT = (
    "Predict task, per stage (0 = before the cell develops): accuracy and macro-F1 (unweighted mean of "
    "per-fate F1 over the fates that occur) of the greedy prediction, and AUPRC (average precision of the "
    "policy's softmax for each realized fate against the rest, averaged over the fates that occur), "
    "each the mean over final seeds with a 95% bootstrap interval; each seed scores its evaluation episodes."
)


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.10g", lineterminator="\n")


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.8em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
.banner{background:#fff3cd;border:2px solid #b8860b;padding:.8em 1em;font-weight:600;margin:1em 0}
.note{color:#444;font-size:.92em}img{max-width:100%;height:auto;border:1px solid #eee}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
"""


def _html_table(df: pd.DataFrame, empty: str) -> str:
    if df.empty:
        return f"<p class='note'>{html.escape(empty)}</p>"
    return df.to_html(index=False, escape=True, na_rep=DASH, border=0,
                      float_format=lambda x: f"{x:.3f}")


def _html_img(images: dict[str, bytes], name: str, alt: str) -> str:
    """The figure `name` of `images` inlined, or a note while it has no data yet."""
    data = images.get(name)
    if data is None:
        return f"<p class='note'>No data yet for: {html.escape(alt)}.</p>"
    b64 = base64.b64encode(data).decode("ascii")
    return f"<figure><img alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'></figure>"


def _summary(run: RunData, lb: pd.DataFrame) -> pd.DataFrame:
    m, st = run.manifest, run.status
    trials = st.get("trials", {}) if isinstance(st.get("trials"), dict) else {}
    n_final = int((lb["score_source"] == SOURCE_FINAL).sum()) if not lb.empty else 0
    rows = [
        ("run status", run.run_status),
        ("phase (status.json)", st.get("phase", DASH)),
        ("grid cells", len(lb)),
        ("cells scored on final seeds", n_final),
        ("trials done / running / failed / remaining",
         " / ".join(str(trials.get(k, DASH)) for k in ("done", "running", "failed", "remaining"))),
        ("start", m.get("start_time", m.get("start", DASH))),
        ("end", m.get("end_time", m.get("end", DASH)) or DASH),
        ("git commit", m.get("git_commit", m.get("commit")) or DASH),
    ]
    return pd.DataFrame(rows, columns=["", "value"]).astype(str)


def _poi_display(poi: pd.DataFrame) -> pd.DataFrame:
    if poi.empty:
        return poi
    return pd.DataFrame({
        "method X": poi["method_x"], "method Y": poi["method_y"], "common tasks": poi["n_tasks"],
        "runs X / Y": [f"{a} / {b}" for a, b in zip(poi["n_runs_x"], poi["n_runs_y"])],
        "P(X > Y) [95% CI]": [stats.with_ci(r.prob_improvement, r.ci_low, r.ci_high) for r in poi.itertuples()],
    })


def _notes_html(notes: list[str]) -> list[str]:
    return [f"<p class='note'>{html.escape(n)}</p>" for n in notes if n]


def _views_html(views: Views, images: dict[str, bytes | None], where: str) -> list[str]:
    """The HTML of the extra views that sit at `where` ("after curves" or "after ablations")."""
    if where == "after curves":
        parts = []
        if not views.trajectory.empty:
            parts += ["<h2>Expression trajectory (the seed's metrics)</h2>",
                      f"<p class='note'>{html.escape(trajectory_view.TEXT)}</p>",
                      _html_table(trajectory_view.display_table(views.trajectory), "No trajectory metrics recorded.")]
        if views.predict_stages.empty and not views.predict_notes:
            return parts
        return parts + ["<h2>Fate prediction per stage</h2>", f"<p class='note'>{html.escape(_PREDICT_TEXT)}</p>",
                        *_notes_html(views.predict_notes),
                        _html_table(predict_view.display_table(views.predict_stages), "No prediction metrics recorded."),
                        _html_img(images, "predict_stages.png", "fate prediction per stage")]
    parts = ["<h2>Across algorithms (rliable)</h2>",
             "<p class='note'>A method is a recipe (algorithm / optimizer / module), a task one world / task / "
             "target / MAX_PERTURB; runs are the final seeds. Performance profile: the fraction of runs whose "
             "score / optimum exceeds each threshold tau (rliable's score distribution), with a 95% stratified-"
             "bootstrap band. Probability of improvement: P(X &gt; Y) (Mann-Whitney, ties one half) averaged over "
             "the tasks both methods have, with a 95% stratified-bootstrap interval.</p>",
             *_notes_html(views.profile_notes),
             _html_img(images, "performance_profiles.png", "performance profiles"),
             _html_img(images, "probability_of_improvement.png", "probability-of-improvement matrix"),
             _html_table(_poi_display(views.poi), "No two methods share a task with final seeds.")]
    parts += ["<h2>Hyperparameter search (Optuna)</h2>",
              "<p class='note'>Per cell, from the run's Optuna journal: the tuning trials' objective values "
              "by trial number with the best so far, and Optuna's hyperparameter importance "
              "(optuna.importance.get_param_importances, PED-ANOVA) where the cell has enough trials. "
              "Per tuning slot only its latest finished trial counts.</p>",
              *_notes_html([views.studies_note]),
              _html_table(views.importance, "No Optuna study in this run."),
              _html_img(images, "param_importances.png", "hyperparameter importance"),
              _html_img(images, "optimization_history.png", "optimization history")]
    return parts


def report_html(run: RunData, lb: pd.DataFrame, ablations: pd.DataFrame, mp: pd.DataFrame,
                bio: pd.DataFrame, oracle: pd.DataFrame, images: dict[str, bytes | None],
                reps: int, seed: int, views: Views | None = None) -> str:
    """The self-contained HTML report."""
    views = Views() if views is None else views
    name = html.escape(run_name(run))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>Tournament report: {name}</title><style>{_CSS}</style></head><body>",
             f"<h1>Tournament report: {name}</h1>"]
    for note in partial_notices(run, lb):
        parts.append(f"<div class='banner'>{html.escape(note)}</div>")
    parts += ["<h2>Run</h2>", _html_table(_summary(run, lb), "")]

    parts += ["<h2>Leaderboard</h2>", f"<p class='note'>{html.escape(_method_text(reps, seed))}</p>"]
    for (world, task, target), g in lb.groupby(list(GROUP_AXES), sort=True):
        parts += [f"<h3>{html.escape(plots.group_label(world, task, target))}</h3>",
                  _html_table(leaderboard_display(g.sort_values("rank")), "")]
    if lb.empty:
        parts.append("<p class='note'>No trials recorded yet.</p>")
    parts += [_html_img(images, "leaderboard.png", "leaderboard intervals"),
              "<h2>Learning curves</h2>",
              _html_img(images, "learning_curves.png", "learning curves")]
    parts += _views_html(views, images, "after curves")

    parts += ["<h2>Oracle</h2>",
              "<p class='note'>The best achievable score per world/task/target/MAX_PERTURB: "
              "perturbation sets applied at time 0, enumerated up to MAX_PERTURB. 'exact optimum' "
              "comes from solving the Markov chain of the asynchronous dynamics; 'best known' is a "
              "Monte-Carlo estimate of the best set found, a lower bound on the true optimum.</p>",
              _html_table(oracle, "No oracle.json in this run directory.")]

    parts += ["<h2>Ablations</h2>",
              "<p class='note'>Paired difference (variant - baseline) of final-seed scores over "
              "cells that match on every other axis, with a 95% stratified-bootstrap interval "
              "(seeds resampled within each cell) and rliable's probability of improvement. "
              "'LoRA_staged vs full fine-tuning' compares LoRA_staged with PPO trained from "
              "scratch on all weights in the matching cell. Pairs absent from the run are not "
              "shown.</p>",
              _html_table(ablations, "No ablation pair has matching cells with final seeds."),
              _html_img(images, "ablation_forest.png", "ablation forest plot"),
              "<h3>Score as a function of MAX_PERTURB</h3>",
              _html_table(mp, "No final-seed scores yet."),
              _html_img(images, "score_vs_max_perturb.png", "score against MAX_PERTURB"),
              "<h3>Optimizer learning-rate switching</h3>",
              _html_img(images, "lr_switching.png", "learning-rate switching")]
    parts += _views_html(views, images, "after ablations")

    parts += ["<h2>Biology: perturbation sets the best policies use</h2>",
              "<p class='note'>For the best-ranked steer cells of each group: the sets their "
              "greedy policies applied in the final seeds' evaluation episodes, with frequency, "
              "and whether the set is among the oracle's best sets (then its exact success "
              "probability and oracle rank). Policies may spread a set over stages, the oracle "
              "applies it at time 0.</p>",
              _html_table(bio, "No perturbation sets recorded (no final steer seeds yet).")]

    parts += ["<h2>Spec</h2>", f"<pre>{html.escape(run.spec_text or 'spec.yaml missing')}</pre>",
              "<h2>Manifest</h2>",
              f"<pre>{html.escape(json.dumps(run.manifest, indent=2, sort_keys=True))}</pre>",
              "<h2>Status</h2>",
              f"<pre>{html.escape(json.dumps(run.status, indent=2, sort_keys=True))}</pre>",
              "</body></html>"]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- entry point


def build_report(
    run_dir: str | Path, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED,
    run: RunData | None = None,
) -> dict[str, Path]:
    """Rebuild every report file of a run directory; returns {relative name: written path}.

    `run`: the directory as already read by `load_run` (read here when None).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    run = load_run(run_dir) if run is None else run
    lb = build_leaderboard(run, reps=reps, seed=seed)
    ablations = paired_ablations(run, reps=reps, seed=seed)
    mp = max_perturb_view(lb)
    bio = biology_view(run, lb)
    oracle = oracle_table(run)

    written: dict[str, Path] = {}

    def put(rel: str, data: str | bytes) -> None:
        try:
            atomic_write_bytes(run_dir / rel, data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as exc:  # a read-only directory or a full disk: one line, the records untouched
            raise write_error(run_dir / rel, exc, run_dir, then=f"rebuild it with `tournament report {run_dir}`") from exc
        written[rel] = run_dir / rel

    views = build_views(run, lb, reps, seed)
    put("leaderboard.csv", _csv(lb))
    put("leaderboard.md", leaderboard_markdown(run, lb, reps, seed, views))
    put("ablations.csv", _csv(ablations))
    put("probability_of_improvement.csv", _csv(views.poi))
    for name, table in (("predict_stages.csv", views.predict_stages), ("trajectory_metrics.csv", views.trajectory)):
        if not table.empty:
            put(name, _csv(table))
        else:
            (run_dir / name).unlink(missing_ok=True)

    figures = {
        "leaderboard.png": lambda: plots.plot_leaderboard(lb),
        "learning_curves.png": lambda: plots.plot_learning_curves(run, lb, reps, seed),
        "ablation_forest.png": lambda: plots.plot_ablation_forest(ablations),
        "score_vs_max_perturb.png": lambda: plots.plot_max_perturb(mp),
        "lr_switching.png": lambda: plots.plot_lr_switching(run, reps, seed),
        "predict_stages.png": lambda: predict_view.plot_stage_metrics(views.predict_stages, lb),
        "performance_profiles.png": lambda: profiles.plot_profiles(
            *(views.profile or (None, {}, {})), normalized=not any(n.startswith("raw") for n in views.profile_notes)),
        "probability_of_improvement.png": lambda: profiles.plot_poi_matrix(views.poi, list(views.method_scores)),
        "param_importances.png": lambda: optuna_view.plot_param_importances(views.studies, lb),
        "optimization_history.png": lambda: optuna_view.plot_optimization_history(views.studies, lb),
    }
    images: dict[str, bytes | None] = {}
    for fname, make in figures.items():
        fig = make()
        rel = f"plots/{fname}"
        if fig is None:
            images[fname] = None
            # A plot from an earlier build that no longer has data must not linger.
            (run_dir / rel).unlink(missing_ok=True)
            continue
        images[fname] = plots.png_bytes(fig)
        put(rel, images[fname])

    put("report.html", report_html(run, lb, ablations, mp, bio, oracle, images, reps, seed, views))
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m tournament.report.report RUN_DIR``: rebuild the report and list what was written."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tournament.report.report RUN_DIR", file=sys.stderr)
        return 2
    for rel, path in build_report(args[0]).items():
        print(f"{rel}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
