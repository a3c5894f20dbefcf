"""A run never waits on the oracle: each entry stops at `oracle.time_budget_s` with a lower bound."""

import json

import pytest

from tournament.engine.cells import expand_grid
from tournament.engine.oracle_table import compute_oracle
from tournament.engine.spec import parse_spec
from tournament_helpers import tiny_ppo_spec


def test_a_run_states_a_lower_bound_within_the_oracle_budget(tmp_path):
    data = tiny_ppo_spec("budget", tmp_path, world="tcell", target="DN3",
                         grid={"max_perturb": [6]}, oracle={"time_budget_s": 1e-6, "n_cells": 100})
    spec = parse_spec(data)
    cells = expand_grid(spec)
    table = compute_oracle(spec, cells, tmp_path / "oracle.json")
    (entry,) = {json.dumps(v, sort_keys=True) for v in table.values()}
    entry = json.loads(entry)
    # 6 of 21 genes x 2 kinds is ~1e8 sets; the budget is spent after the baseline, so the
    # entry is the unperturbed DN3 probability, marked as a lower bound.
    assert entry["exact"] is False and "time budget of 1e-06 s spent" in entry["method"]
    assert entry["optimum"] == pytest.approx(0.8395, abs=1e-3)
    assert json.loads((tmp_path / "oracle.json").read_text()) == table
