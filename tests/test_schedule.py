"""Perturbation schedules run through the steer environment, and the CLI's stage syntax."""

from __future__ import annotations

import pytest

from cli_helpers import one_line_error, run_cli
from envs.errors import UserInputError
from envs.oracle import exact_fates
from envs.schedule import simulate_schedule
from envs.world import load_world


def test_a_time0_schedule_agrees_with_the_exact_chain():
    world = load_world("myeloid")
    res = simulate_schedule({"world": "myeloid"}, [("Gata1", "knockout", 0)], n_cells=1500, seed=3)
    exact = exact_fates(world, [("Gata1", "knockout")]).probabilities
    for fate, p in res.distribution.probabilities.items():
        assert abs(p - exact[fate]) <= 4 * max(res.distribution.stderr[fate], 1e-3), fate


def test_a_late_perturbation_is_not_the_time0_one():
    # PU.1 knocked out at time 0 sends every cell to Ery or Mk; knocked out after three stages it
    # hits cells already on the myeloid branch, which lose their fate (aberrant)
    early = simulate_schedule({"world": "myeloid"}, [("Pu.1", "knockout", 0)], n_cells=600, seed=1).distribution
    late = simulate_schedule({"world": "myeloid"}, [("Pu.1", "knockout", 3)], n_cells=600, seed=1).distribution
    assert early.probabilities["aberrant"] == 0.0 and late.probabilities["aberrant"] > 0.3


def test_a_stage_beyond_the_last_is_a_one_line_error():
    with pytest.raises(UserInputError, match=r"stage 4 is beyond the last stage; valid stages: 0\.\.3 \(n_stages 4\)"):
        simulate_schedule({"world": "myeloid", "n_stages": 4}, [("Gata1", "knockout", 4)], n_cells=1)


def test_simulate_takes_stages_pulses_and_backgrounds(capsys):
    code, out, _ = run_cli(["simulate", "--world", "myeloid", "--perturb", "Cebpa=oe@1", "--pulse-stages", "1",
                            "--background", "Gfi1=ko", "--cells", "200"], capsys)
    assert code == 0 and "Monte-Carlo through the steer environment (200 cells" in out
    code, _, err = run_cli(["simulate", "--world", "myeloid", "--perturb", "Gata1=ko@x"], capsys)
    one_line_error(code, err, "is not a whole number")
    code, _, err = run_cli(["simulate", "--world", "myeloid", "--perturb", "Gata1=ko@9"], capsys)
    one_line_error(code, err, "stage 9 is beyond the last stage")
