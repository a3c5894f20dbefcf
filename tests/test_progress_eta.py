"""The progress ETA follows the cost model (seconds per trial per algorithm/module), not a plain rate."""

from __future__ import annotations

import pytest

from tournament.engine import progress
from tournament.engine.progress import ProgressTracker, cost_group


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(progress.time, "monotonic", c)
    return c


def _run(tracker: ProgressTracker, clock: Clock, key: str, group: str, seconds: float) -> None:
    tracker.start(key, group)
    clock.now += seconds
    tracker.finish(key, ok=True)


def test_eta_weights_the_remaining_trials_by_their_group_cost(clock):
    ppo, sac = cost_group("PPO", "gnn"), cost_group("SAC", "gnn")
    tracker = ProgressTracker(planned=8, started=clock.now, planned_by_group={ppo: 4, sac: 4})
    assert tracker.eta() is None
    _run(tracker, clock, "a", ppo, 1.0)
    _run(tracker, clock, "b", ppo, 1.0)
    _run(tracker, clock, "c", sac, 10.0)
    # 2 PPO trials at 1 s and 3 SAC trials at 10 s are left, one slot: 32 s
    # (a plain rate, 3 trials in 12 s, would say 20 s)
    assert tracker.eta() == pytest.approx(32.0)


def test_eta_divides_by_the_trials_seen_running_at_once(clock):
    ppo = cost_group("PPO", "mlp")
    tracker = ProgressTracker(planned=6, started=clock.now, planned_by_group={ppo: 6})
    tracker.start("a", ppo)
    tracker.start("b", ppo)
    clock.now += 4.0
    tracker.finish("a", ok=True)
    tracker.finish("b", ok=True)
    # 4 left at 4 s each over 2 slots
    assert tracker.eta() == pytest.approx(8.0)
    tracker.start("c", ppo)
    # c is running: counted half done; 3 queued
    assert tracker.eta() == pytest.approx((3 * 4.0 + 0.5 * 4.0) / 2)


def test_group_without_a_finished_trial_takes_the_mean_of_the_others(clock):
    a2c, trpo = cost_group("A2C", "gnn"), cost_group("TRPO", "gnn")
    tracker = ProgressTracker(planned=4, started=clock.now, planned_by_group={a2c: 2, trpo: 2})
    _run(tracker, clock, "a", a2c, 3.0)
    # 1 A2C and 2 TRPO left, TRPO unmeasured: 3 x 3 s
    assert tracker.eta() == pytest.approx(9.0)


def test_an_unfinished_group_is_projected_from_its_env_step_rate(clock):
    ppo, sac = cost_group("PPO", "gnn"), cost_group("SAC", "gnn")
    tracker = ProgressTracker(planned=4, started=clock.now, planned_by_group={ppo: 2, sac: 2}, trial_env_steps=1000)
    _run(tracker, clock, "a", ppo, 2.0)
    tracker.start("b", sac)
    clock.now += 10.0
    tracker.report("b", 100)  # 100 of 1,000 steps in 10 s: a SAC trial takes 100 s
    assert tracker.seconds_per_trial()[sac] == pytest.approx(100.0)
    # queued: 1 PPO (2 s) + 1 SAC (100 s); in flight: SAC's 90 s left; one slot
    assert tracker.eta() == pytest.approx(2.0 + 100.0 + 90.0)
