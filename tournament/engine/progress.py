"""Progress of a tournament: counts, best score per cell, elapsed and ETA, in status.json and
as a rich progress display (a bar and a small table, instead of a wall of Ray logs).

`ProgressTracker` is plain bookkeeping fed by the driver's Tune callback; `status()` is the
status.json document; `ProgressDisplay` renders it live; `format_status` renders a status.json
for `tournament status RUN` from another terminal.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from tournament.engine.rundir import RunPaths, atomic_write_json, now_iso, read_json


def cost_group(algorithm: str, module: str) -> str:
    """The ETA's unit of cost: trials of one algorithm and module take about as long."""
    return f"{algorithm}/{module}"


class ProgressTracker:
    """Trial counts and the best score per cell across driver sessions.

    ETA: the cost model of `tournament plan` (each (algorithm, module) has its own seconds per
    trial; the trials spread over the parallel slots) calibrated on this run. A group's seconds
    per trial are the mean duration of its trials that finished in this session (from Tune's
    start of the trial to its record); before one has finished, the env-step rate of its
    running trials times the trial's budget; a group with neither takes the mean over the
    others. Queued trials take their group's share of the trials remaining; a running trial
    its projected rest (or half its group's time without a report). The sum is divided by the
    most trials seen running at once. None until one trial finished here.
    """

    def __init__(self, planned: int, done: int = 0, failed: int = 0, best: dict[str, float] | None = None,
                 elapsed_before: float = 0.0, started: float | None = None,
                 planned_by_group: dict[str, int] | None = None, finished_by_group: dict[str, int] | None = None,
                 trial_env_steps: int | None = None):
        self.planned = planned
        self.done = done
        self.failed = failed
        self.running: set[str] = set()
        self.best_per_cell: dict[str, float] = dict(best or {})
        self.phase = "tune"
        self._t0 = time.monotonic() if started is None else started
        self._elapsed_before = elapsed_before
        self._finished_here = 0
        self._planned_by_group = dict(planned_by_group or {})
        self._finished_by_group = dict(finished_by_group or {})
        self._trial_env_steps = trial_env_steps
        self._started_at: dict[str, tuple[float, str]] = {}
        self._env_steps: dict[str, int] = {}
        self._seconds: dict[str, list[float]] = {}
        self._max_running = 0

    def start(self, key: str, group: str = "") -> None:
        self.running.add(key)
        self._started_at.setdefault(key, (time.monotonic(), group))
        self._max_running = max(self._max_running, len(self.running))

    def report(self, key: str, env_steps: int | None) -> None:
        """A running trial's env steps so far (from its latest result)."""
        if env_steps and key in self._started_at:
            self._env_steps[key] = int(env_steps)

    def finish(self, key: str, ok: bool, cell_id: str | None = None, score: float | None = None) -> None:
        self.running.discard(key)
        self._finished_here += 1
        self._env_steps.pop(key, None)
        started = self._started_at.pop(key, None)
        if started is not None:
            t0, group = started
            self._seconds.setdefault(group, []).append(time.monotonic() - t0)
            self._finished_by_group[group] = self._finished_by_group.get(group, 0) + 1
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if cell_id and score is not None and math.isfinite(score):
            prev = self.best_per_cell.get(cell_id)
            self.best_per_cell[cell_id] = score if prev is None else max(prev, score)

    @property
    def remaining(self) -> int:
        return max(0, self.planned - self.done - self.failed - len(self.running))

    @property
    def elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._t0

    def _projected(self, key: str, now: float) -> float | None:
        """A running trial's projected duration from its env-step rate so far."""
        steps = self._env_steps.get(key)
        if not steps or not self._trial_env_steps:
            return None
        return (now - self._started_at[key][0]) * max(1.0, self._trial_env_steps / steps)

    def seconds_per_trial(self) -> dict[str, float]:
        """Seconds a trial of each group takes: measured when one finished, else projected."""
        now = time.monotonic()
        out = {g: sum(v) / len(v) for g, v in self._seconds.items() if v}
        projected: dict[str, list[float]] = {}
        for key, (_, group) in self._started_at.items():
            p = self._projected(key, now)
            if group not in out and p is not None:
                projected.setdefault(group, []).append(p)
        out.update({g: sum(v) / len(v) for g, v in projected.items()})
        return out

    def eta(self) -> float | None:
        now = time.monotonic()
        here = now - self._t0
        if self._finished_here == 0 or here <= 0:
            return None
        per_group = self.seconds_per_trial()
        if not per_group:  # trials started before this session: only the plain rate is known
            return (self.remaining + 0.5 * len(self.running)) / (self._finished_here / here)
        overall = sum(per_group.values()) / len(per_group)
        running_by_group: dict[str, int] = {}
        in_flight = 0.0
        for key, (t0, group) in self._started_at.items():
            running_by_group[group] = running_by_group.get(group, 0) + 1
            p = self._projected(key, now)
            in_flight += max(0.0, p - (now - t0)) if p is not None else 0.5 * per_group.get(group, overall)
        left = {g: max(0, n - self._finished_by_group.get(g, 0) - running_by_group.get(g, 0))
                for g, n in self._planned_by_group.items()}
        total_left = sum(left.values())
        if total_left > 0:
            queued = self.remaining * sum(n * per_group.get(g, overall) for g, n in left.items()) / total_left
        else:
            queued = self.remaining * overall
        return (queued + in_flight) / max(1, self._max_running)

    def status(self) -> dict[str, Any]:
        eta = self.eta()
        return {
            "phase": self.phase,
            "trials": {"done": self.done, "running": len(self.running), "failed": self.failed,
                       "remaining": self.remaining},
            "best_per_cell": dict(sorted(self.best_per_cell.items())),
            "elapsed_s": round(self.elapsed, 1),
            "eta_s": round(eta, 1) if eta is not None else None,
            "updated": now_iso(),
        }

    def write(self, path: "str | Path") -> None:
        atomic_write_json(path, self.status())


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_status(status: dict[str, Any], top: int = 10) -> str:
    """Plain text for `tournament status`."""
    t = status.get("trials", {})
    total = sum(int(t.get(k, 0)) for k in ("done", "running", "failed", "remaining"))
    lines = [
        f"phase: {status.get('phase', '?')}   updated: {status.get('updated', '?')}",
        f"trials: {t.get('done', 0)} done, {t.get('running', 0)} running, {t.get('failed', 0)} failed, "
        f"{t.get('remaining', 0)} remaining (of {total})",
        f"elapsed: {_hms(status.get('elapsed_s'))}   eta: {_hms(status.get('eta_s'))}",
    ]
    best = status.get("best_per_cell") or {}
    if best:
        lines.append(f"best score per cell (top {min(top, len(best))} of {len(best)}):")
        ranked = sorted(best.items(), key=lambda kv: -kv[1])[:top]
        width = max(len(c) for c, _ in ranked)
        lines += [f"  {c:<{width}}  {v:.3f}" for c, v in ranked]
    return "\n".join(lines)


def read_status(run_dir: "str | Path") -> dict[str, Any] | None:
    return read_json(RunPaths(run_dir).status)


class ProgressDisplay:
    """A rich live display: a progress bar with the counts, then the best cells."""

    def __init__(self, title: str, enabled: bool = True, top: int = 8):
        self.enabled = enabled
        self.top = top
        self.title = title
        self._live = None
        self._last = 0.0

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment state; a live terminal does not travel
        return {**self.__dict__, "_live": None}

    def __enter__(self) -> "ProgressDisplay":
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            console = Console(stderr=True)
            self.enabled = console.is_terminal or console.is_jupyter
            if self.enabled:
                self._live = Live(console=console, refresh_per_second=2, transient=False)
                self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, status: dict[str, Any], force: bool = False) -> None:
        if self._live is None:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        self._live.update(self.render(status))

    def render(self, status: dict[str, Any]) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        t = status["trials"]
        total = max(1, t["done"] + t["running"] + t["failed"] + t["remaining"])
        finished = t["done"] + t["failed"]
        head = Text.assemble(
            (f"{self.title} ", "bold"), (f"[{status['phase']}] ", "cyan"),
            f"{finished}/{total} trials  ",
            (f"{t['done']} done ", "green"), (f"{t['running']} running ", "yellow"),
            (f"{t['failed']} failed ", "red"), f"{t['remaining']} remaining   ",
            f"elapsed {_hms(status['elapsed_s'])}  eta {_hms(status['eta_s'])}",
        )
        width = 60
        filled = int(round(width * finished / total))
        failed = min(filled, int(round(width * t["failed"] / total)))
        bar = Text.assemble(("━" * (filled - failed), "green"), ("━" * failed, "red"), ("━" * (width - filled), "grey50"),
                            f"  {100 * finished / total:.0f}%")
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("best cells")
        table.add_column("score", justify="right")
        best = sorted(status["best_per_cell"].items(), key=lambda kv: -kv[1])[: self.top]
        for cell, score in best:
            table.add_row(cell, f"{score:.3f}")
        return Group(head, bar, table) if best else Group(head, bar)
