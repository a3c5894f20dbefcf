"""The composite searcher: one Optuna study per grid cell inside one Ray Tune experiment.

Tune's OptunaSearch refuses `grid_search`, so the grid lives here, outside Optuna. The searcher
hands out tuning trials cell by cell (always the cell with the fewest trials handed out), so all
cells progress together and the cluster stays full; each cell's study is told only its own
trials. Once every tuning trial is handed out, the cells whose tuning has finished get their
best configuration handed out once per final seed (the final phase) while the last tuning
trials still run: no barrier between the phases, so no idle slots at the switch.

Persistence and resume: the studies live in an Optuna JournalStorage file (`optuna/studies.log`,
one study per cell, named by the cell id); every ask and tell is appended there at once. A new
searcher on the same file continues the studies: finished trials count against the budget; a
trial that was running when the driver died is marked failed with user attr `interrupted` and
its parameters are queued again for the same slot (same seed), so nothing finished is re-run
and nothing interrupted is lost. Concurrency is left to Tune (`max_concurrent_trials`, which
wraps this searcher in a ConcurrencyLimiter).

With `recorded` (the tuning rows of trials.csv, which the run directory's callback writes
before it tells the study), trials.csv is the record of what finished: a slot with a row is done
(a trial the driver died before telling is told from its row, so it does not run twice); a slot
without one runs again, with the parameters the journal holds for it, even where the journal
says it finished (its row was damaged and set aside). Per slot, the latest finished trial counts.

The journal file is read and written by `tournament.engine.journal.RunJournalBackend`.

Seeds: tuning slot s of a cell (0 <= s < trials_per_cell) trains with seed `tune_seed(s)`; a
slot keeps its seed across interruptions. The sampler that draws a slot's parameters is seeded
from the spec seed, the cell id and the slot (the random sampler from the parameter name too), so
a slot draws the same parameters whether or not the driver was interrupted before it, and a
resumed sampler does not replay the trials it already proposed.

Size: over 350 lines because CellSearcher is one state machine (tuning slots, final seeds,
resume from the journal and trials.csv); split, its invariants would live in several files.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.trial import TrialState
from ray.tune.search import Searcher

from tournament.engine.journal import RunJournalBackend
from tournament.engine.spec import ParamSpec, TournamentSpec, resolved_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

SampleFn = Callable[[str, "optuna.trial.BaseTrial"], dict[str, Any]]
# (cell_id, phase, params, seed, trial_key) -> the Tune config of the trial
ConfigFn = Callable[[str, str, dict[str, Any], int, str], dict[str, Any]]

def suggest_value(trial: "optuna.trial.BaseTrial", name: str, p: ParamSpec) -> Any:
    """One parameter from a ParamSpec; fixed values are not registered with Optuna."""
    if p.fixed:
        return p.value
    if p.choices is not None:
        return trial.suggest_categorical(name, p.choices)
    if p.integer:
        return trial.suggest_int(name, int(p.low), int(p.high), log=bool(p.log))
    return trial.suggest_float(name, float(p.low), float(p.high), log=bool(p.log))


def spec_sampler(spec: TournamentSpec, cells_by_id: dict[str, Any]) -> SampleFn:
    """The sample function of a spec: optimizer learning rates plus per-algorithm extras.

    Returns {"optimizer_hparams": ..., "algo_hparams": ...}. asgd_* sample lr_min and
    lr_ratio and derive lr_max = lr_min * lr_ratio, so lr_min <= lr_max always holds.
    """

    def sample(cell_id: str, trial: "optuna.trial.BaseTrial") -> dict[str, Any]:
        cell = cells_by_id[cell_id]
        opt: dict[str, Any] = {}
        for name, p in resolved_space(spec, cell.optimizer).items():
            opt[name] = suggest_value(trial, name, p)
        if "lr_ratio" in opt:
            ratio = float(opt.pop("lr_ratio"))
            opt["lr_max"] = float(opt["lr_min"]) * ratio
        algo = {
            name: suggest_value(trial, f"algo.{name}", p)
            for name, p in spec.hpo.extra.get(cell.algorithm, {}).items()
        }
        return {"optimizer_hparams": opt, "algo_hparams": algo}

    return sample


class _SlotRandomSampler(optuna.samplers.RandomSampler):
    """Random sampling where each parameter's value depends only on (seed, parameter name).

    So a slot's parameters come out the same however many times it is asked, and a requeued
    trial missing one parameter (a lost journal record) draws the value the original drew.
    """

    def __init__(self, seed: int):
        super().__init__(seed=seed)
        self._base_seed = int(seed)

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[override]
        seed = zlib.crc32(f"{self._base_seed}|{param_name}".encode()) & 0x7FFFFFFF
        return optuna.samplers.RandomSampler(seed=seed).sample_independent(study, trial, param_name, param_distribution)


@dataclass
class _CellState:
    study: optuna.Study
    slots_handed: set[int] = field(default_factory=set)  # slots asked (running or finished)
    slots_done: set[int] = field(default_factory=set)  # slots told
    requeued: list[int] = field(default_factory=list)  # slots whose params wait in the study queue
    finals_handed: set[int] = field(default_factory=set)
    # A trial finished COMPLETE (so best_params exists); kept here because asking the
    # journal re-reads its file, and Tune polls suggest() often. Only this driver tells.
    has_complete: bool = False
    # trial numbers that no longer count: an earlier finished trial of a slot that ran again
    superseded: set[int] = field(default_factory=set)


def outcome_from_row(row: Mapping[str, str]) -> tuple[TrialState, float | None]:
    """How a trials.csv tuning row enters its study (the inverse of the callback's row)."""
    try:
        score = float(row.get("score") or "nan")
    except ValueError:
        score = math.nan
    if row.get("status") != "ok" or not math.isfinite(score):
        return TrialState.FAIL, None
    if row.get("fail_reason"):
        return TrialState.PRUNED, score
    return TrialState.COMPLETE, score


class CellSearcher(Searcher):
    """One Optuna study per grid cell; tuning trials round-robin over cells, then final seeds.

    `sample_fn(cell_id, optuna_trial)` draws a cell's parameters (it may also be called with an
    `optuna.trial.FixedTrial` to rebuild the best parameters); `config_fn(cell_id, phase, params,
    seed, trial_key)` turns them into the Tune config. `final_done` lists (cell_id, seed) pairs
    whose final trial already finished in an earlier run of the driver; `recorded` maps the
    trial keys of finished tuning trials to their trials.csv rows (see the module docstring).
    """

    def __init__(
        self,
        cells: Sequence[str],
        trials_per_cell: int,
        storage_file: "str | Path",
        sample_fn: SampleFn,
        config_fn: ConfigFn,
        final_seeds: Sequence[int] = (),
        tune_seed: Callable[[int], int] = lambda slot: slot,
        sampler: str = "tpe",
        seed: int = 0,
        n_startup_trials: int = 5,
        final_done: Iterable[tuple[str, int]] = (),
        metric: str = "score",
        mode: str = "max",
        defer_tell: bool = False,
        recorded: Mapping[str, Mapping[str, str]] | None = None,
        run_dir: "str | Path | None" = None,
    ):
        super().__init__(metric=metric, mode=mode)
        # With defer_tell the run-directory callback calls commit() after it has written the
        # trial's row, so a driver killed in between re-runs the trial instead of losing its row.
        self.defer_tell = defer_tell
        self._pending: dict[str, tuple[str, Any, dict | None, bool]] = {}
        self.cell_ids = list(cells)
        self._order = {cid: i for i, cid in enumerate(self.cell_ids)}
        self.trials_per_cell = int(trials_per_cell)
        self.final_seeds = list(final_seeds)
        self.sample_fn = sample_fn
        self.config_fn = config_fn
        self.tune_seed = tune_seed
        self.storage_file = str(storage_file)
        self._sampler_name = sampler
        self._seed = int(seed)
        self._n_startup = int(n_startup_trials)
        if not Path(self.storage_file).parent.is_dir():
            Path(self.storage_file).parent.mkdir(parents=True, exist_ok=True)
        self._journal = RunJournalBackend(self.storage_file, root=run_dir)
        self._storage = JournalStorage(self._journal)
        self._recorded = recorded
        self._cells: dict[str, _CellState] = {}
        # tune trial id -> ("tune", cell, optuna trial) | ("final", cell, seed)
        self._live: dict[str, tuple[str, str, Any]] = {}
        done = set(final_done)
        existing = {s.study_name for s in self._storage.get_all_studies()}
        with self._journal.batch():
            for cid in self.cell_ids:
                self._cells[cid] = self._open(cid, cid in existing)
                self._cells[cid].finals_handed |= {s for (c, s) in done if c == cid}

    # ---- studies ----------------------------------------------------------------------------

    def _sampler(self, cell_id: str, slot: int) -> optuna.samplers.BaseSampler:
        seed = zlib.crc32(f"{self._seed}|{cell_id}|{slot}".encode()) & 0x7FFFFFFF
        if self._sampler_name == "random":
            return _SlotRandomSampler(seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self._n_startup, constant_liar=True)

    def _open(self, cell_id: str, exists: bool) -> _CellState:
        sampler = self._sampler(cell_id, 0)
        if exists:
            study = optuna.load_study(study_name=cell_id, storage=self._storage, sampler=sampler)
        else:
            study = optuna.create_study(study_name=cell_id, storage=self._storage, sampler=sampler,
                                        direction="maximize" if self.mode == "max" else "minimize")
        state = _CellState(study)
        by_slot: dict[int, list[optuna.trial.FrozenTrial]] = {}
        for t in study.get_trials(deepcopy=False):
            slot = t.user_attrs.get("slot")
            if t.user_attrs.get("interrupted"):
                continue
            if slot is None:
                if t.state == TrialState.RUNNING:  # its slot record was lost: it runs again as a new ask
                    self._interrupt(study, t)
                continue
            by_slot.setdefault(int(slot), []).append(t)
        for slot, trials in sorted(by_slot.items()):
            self._open_slot(cell_id, state, slot, trials)
        counted = self._counted(state)
        state.has_complete = any(t.state == TrialState.COMPLETE for t in counted)
        return state

    @staticmethod
    def _interrupt(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        optuna.trial.Trial(study, t._trial_id).set_user_attr("interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)

    def _open_slot(self, cell_id: str, state: _CellState, slot: int, trials: list) -> None:
        study = state.study
        state.slots_handed.add(slot)
        finished = [t for t in trials if t.state.is_finished()]
        running = [t for t in trials if t.state == TrialState.RUNNING]
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        key = f"{cell_id}-t{slot}"
        row = self._recorded.get(key) if self._recorded is not None else None
        if self._recorded is None or row is not None:
            if row is not None and not finished and running:
                # the row was written, the driver died before the tell: the row is the record
                t, running = running[-1], running[:-1]
                state_, value = outcome_from_row(row)
                frozen = optuna.trial.Trial(study, t._trial_id)
                for name in ("score", "normalized_score", "env_steps"):
                    v = row.get(name)
                    if v and math.isfinite(float(v)):
                        frozen.set_user_attr(name, float(v))
                frozen.set_user_attr("told_from_record", True)
                study.tell(t.number, value if state_ == TrialState.COMPLETE else None, state=state_)
                finished = [self._storage.get_trial(t._trial_id)]
            if finished:
                state.slots_done.add(slot)
                for t in running:
                    self._interrupt(study, t)
                self._supersede(state, finished)
                return
        # no finished record of this slot: it runs (again) with the parameters the journal holds
        self._supersede(state, finished, keep_none=True)
        if waiting:
            state.requeued.append(slot)
            return
        for t in running:
            self._interrupt(study, t)
        source = (running or finished)[-1] if (running or finished) else None
        params = dict(source.params) if source is not None else {}
        study.enqueue_trial(params, user_attrs={"slot": int(slot), "requeued": True}, skip_if_exists=False)
        state.requeued.append(slot)

    @staticmethod
    def _supersede(state: _CellState, finished: list, keep_none: bool = False) -> None:
        """Per slot the latest finished trial counts; `keep_none`: none does (the slot runs again)."""
        ordered = sorted(finished, key=lambda t: t.number)
        old = ordered if keep_none else ordered[:-1]
        state.superseded |= {t.number for t in old}

    def _counted(self, state: _CellState, states: tuple = ()) -> list:
        trials = state.study.get_trials(deepcopy=False, states=states or None)
        return [t for t in trials if t.number not in state.superseded and t.state.is_finished()
                and not t.user_attrs.get("interrupted")]

    def study(self, cell_id: str) -> optuna.Study:
        return self._cells[cell_id].study

    def best_params(self, cell_id: str) -> dict[str, Any] | None:
        """The best finished trial's parameters of a cell, None when none finished (ties: lowest slot)."""
        complete = self._counted(self._cells[cell_id], (TrialState.COMPLETE,))
        if not complete:
            return None
        sign = 1 if self.mode == "max" else -1
        best = max(complete, key=lambda t: (sign * t.value, -int(t.user_attrs.get("slot", 0)), -t.number))
        return self.sample_fn(cell_id, optuna.trial.FixedTrial(best.params))

    # ---- accounting -------------------------------------------------------------------------

    def tuning_complete(self, cell_id: str) -> bool:
        return len(self._cells[cell_id].slots_done) >= self.trials_per_cell

    def counts(self) -> dict[str, int]:
        """Trials planned so far: tuning slots plus final seeds of cells that can have them."""
        planned = 0
        for cid, st in self._cells.items():
            planned += self.trials_per_cell
            if not self.tuning_complete(cid) or self.best_params_known(cid):
                planned += len(self.final_seeds)
        return {"planned": planned}

    def best_params_known(self, cell_id: str) -> bool:
        return self._cells[cell_id].has_complete

    # ---- Searcher API -----------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # the metric and mode are ours; Tune's must agree or be unset
        return metric in (None, self.metric) and mode in (None, self.mode)

    def suggest(self, trial_id: str) -> dict | str | None:
        # the journal records of one suggestion go to the file in one write
        with self._journal.batch():
            return self._suggest(trial_id)

    def _suggest(self, trial_id: str) -> dict | str | None:
        # tuning first, so every cell's study progresses; final seeds fill the slots that the
        # last tuning trials leave idle
        cid = self._next_tuning_cell()
        if cid is None:
            final = self._next_final()
            if final is None:
                return Searcher.FINISHED if self.all_handed_out() else None
            cid, seed = final
            params = self.best_params(cid)
            self._cells[cid].finals_handed.add(seed)
            self._live[trial_id] = ("final", cid, seed)
            return self.config_fn(cid, "final", params, seed, f"{cid}-s{seed}")
        st = self._cells[cid]
        if st.requeued:
            slot = st.requeued.pop(0)
            st.study.sampler = self._sampler(cid, slot)
            trial = st.study.ask()
            # an enqueued trial carries its slot; trust it over our queue order
            slot = int(trial.user_attrs.get("slot", slot))
        else:
            slot = min(set(range(self.trials_per_cell)) - st.slots_handed)
            st.study.sampler = self._sampler(cid, slot)
            trial = st.study.ask()
            trial.set_user_attr("slot", slot)
        st.slots_handed.add(slot)
        params = self.sample_fn(cid, trial)
        key = f"{cid}-t{slot}"
        trial.set_user_attr("trial_key", key)
        self._live[trial_id] = ("tune", cid, trial)
        return self.config_fn(cid, "tune", params, self.tune_seed(slot), key)

    def _next_final(self) -> tuple[str, int] | None:
        waiting = {p[0] for p in self._pending.values()}
        for cid in self.cell_ids:
            st = self._cells[cid]
            if not self.tuning_complete(cid) or not self.final_seeds or cid in waiting:
                continue
            left = [s for s in self.final_seeds if s not in st.finals_handed]
            if left and self.best_params_known(cid):
                return cid, left[0]
        return None

    def _next_tuning_cell(self) -> str | None:
        open_cells = [c for c in self.cell_ids if len(self._cells[c].slots_handed) < self.trials_per_cell or self._cells[c].requeued]
        if not open_cells:
            return None
        return min(open_cells, key=lambda c: (len(self._cells[c].slots_handed) - len(self._cells[c].requeued), self._order[c]))

    def all_handed_out(self) -> bool:
        if self._pending:
            return False  # a told result may still open a cell's final phase
        for cid, st in self._cells.items():
            if len(st.slots_handed) < self.trials_per_cell or st.requeued:
                return False
            if not self.tuning_complete(cid):
                return False  # finals may still follow
            if self.best_params_known(cid) and any(s not in st.finals_handed for s in self.final_seeds):
                return False
        return True

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        live = self._live.pop(trial_id, None)
        if live is None:
            return
        phase, cid, ref = live
        if phase == "final":
            return
        self._cells[cid].slots_done.add(int(ref.user_attrs["slot"]))
        self._pending[trial_id] = (cid, ref, result, error)
        if not self.defer_tell:
            self.commit(trial_id)

    def commit(self, trial_id: str) -> None:
        """Tell the cell's study how a finished tuning trial ended (no-op for others)."""
        pending = self._pending.pop(trial_id, None)
        if pending is None:
            return
        with self._journal.batch():
            self._tell(*pending)

    def _tell(self, cid: str, trial: Any, result: dict | None, error: bool) -> None:
        st = self._cells[cid]
        state, value = outcome(result, error, self.metric)
        if result:
            for key in ("score", "normalized_score", "env_steps"):
                v = result.get(key)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    trial.set_user_attr(key, float(v))
            if result.get("fail_reason"):
                trial.set_user_attr("fail_reason", str(result["fail_reason"])[:500])
        if error:
            trial.set_user_attr("fail_reason", "the trial raised an error (see trials.csv)")
        st.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        st.has_complete = st.has_complete or state == TrialState.COMPLETE

    def commit_all(self) -> None:
        with self._journal.batch():
            for trial_id in list(self._pending):
                self.commit(trial_id)

    @property
    def tuning_done(self) -> bool:
        return all(self.tuning_complete(c) for c in self.cell_ids)

    # Tune saves searcher state for Tuner.restore; we resume from the journal instead.
    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass


def outcome(result: dict | None, error: bool, metric: str = "score") -> tuple[TrialState, float | None]:
    """How a finished Tune trial enters its study: COMPLETE, PRUNED (stopped early) or FAIL."""
    if error or not result or result.get("failed"):
        return TrialState.FAIL, None
    value = result.get(metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return TrialState.FAIL, None
    if not result.get("finished", False):
        return TrialState.PRUNED, float(value)
    return TrialState.COMPLETE, float(value)
