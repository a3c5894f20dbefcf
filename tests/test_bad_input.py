"""The bad-input matrix: every malformed spec, world file, name or data set gives one line on
stderr, exit status 2 from the CLI, no traceback, and leaves no files behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cli_helpers import files_under, one_line_error, run_cli

TINY = """\
name: tiny
world: myeloid
task: steer
target: Mo
grid:
  algorithm: [PPO]
  optimizer: [adam]
  max_perturb: [2]
budget: {env_steps: 4000}
hpo: {trials_per_cell: 2, seed: 0}
final: {seeds: 2}
"""


BAD_SPECS = {
    "yaml syntax": ("name: [unclosed\n", "YAML"),
    "not a mapping": ("- just\n- a list\n", "mapping"),
    "unknown top-level key": (TINY + "colour: blue\n", "colour"),
    "unknown grid key": (TINY.replace("  max_perturb: [2]", "  max_perturb: [2]\n  flavour: [x]"), "flavour"),
    "wrong type": (TINY.replace("env_steps: 4000", "env_steps: lots"), "env_steps"),
    "unknown algorithm": (TINY.replace("[PPO]", "[PPO, DQN2]"), "DQN2"),
    "unknown optimizer": (TINY.replace("[adam]", "[adamw]"), "adamw"),
    "unknown world": (TINY.replace("world: myeloid", "world: zebrafish"), "zebrafish"),
    "unknown fate": (TINY.replace("target: Mo", "target: Tcell"), "Tcell"),
    "unknown task": (TINY.replace("task: steer", "task: drive"), "drive"),
    "max_perturb zero": (TINY.replace("max_perturb: [2]", "max_perturb: [0]"), "max_perturb"),
    "max_perturb too large": (TINY.replace("max_perturb: [2]", "max_perturb: [99]"), "max_perturb"),
    "budget below one iteration": (TINY.replace("env_steps: 4000", "env_steps: 3"), "env_steps"),
    "negative trials": (TINY.replace("trials_per_cell: 2", "trials_per_cell: -1"), "trials_per_cell"),
    "empty file": ("", "spec"),
}


def _lr_min_above_lr_max() -> str:
    return TINY.replace("[adam]", "[asgd_adam]").replace(
        "hpo: {trials_per_cell: 2, seed: 0}",
        "hpo:\n  trials_per_cell: 2\n  seed: 0\n  space:\n    asgd_adam: {lr_min: 0.01, lr_max: 0.001}",
    )


BAD_SPECS["lr_min above lr_max"] = (_lr_min_above_lr_max(), "lr_m")


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_is_rejected_before_ray_starts(case, tmp_path, capsys, monkeypatch):
    text, needle = BAD_SPECS[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    monkeypatch.chdir(tmp_path)
    before = files_under(tmp_path)
    code, _, err = run_cli(["run", str(spec), "--storage", str(tmp_path / "runs")], capsys)
    one_line_error(code, err, needle)
    assert files_under(tmp_path) == before


def test_missing_spec_file(tmp_path, capsys):
    code, _, err = run_cli(["run", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "nope.yaml" in err and "Traceback" not in err


BAD_WORLD_FILES = {
    "bnet syntax": ("A, A &\n", "ends unexpectedly"),
    "marker names an unknown gene": ("B, !B\n", "gene in markers of fate 'hi'"),
    "bnet duplicate target": ("A, A\nA, !A\n", "duplicate target"),
    "bnet missing comma": ("A A\n", "expected 'target, rule'"),
    "bnet empty rule": ("A,\n", "empty rule"),
}


@pytest.mark.parametrize("case", sorted(BAD_WORLD_FILES))
def test_bad_world_file(case, tmp_path, capsys):
    bnet, needle = BAD_WORLD_FILES[case]
    world = tmp_path / "w"
    world.mkdir()
    (world / "network.bnet").write_text(bnet)
    (world / "world.json").write_text('{"network": "network.bnet", "fates": {"hi": {"A": 1}}, "start_states": {"s": []}}')
    before = files_under(tmp_path)
    code, _, err = run_cli(["worlds", "--dir", str(tmp_path)], capsys)
    one_line_error(code, err, needle)
    assert files_under(tmp_path) == before


def test_world_json_not_json(tmp_path, capsys):
    (tmp_path / "world.json").write_text("{not json")
    code, _, err = run_cli(["worlds", "--dir", str(tmp_path)], capsys)
    one_line_error(code, err, "not valid JSON")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["oracle", "--world", "zebrafish", "--target", "Mo", "--max-perturb", "1"], "valid choices: myeloid, tcell"),
        (["oracle", "--world", "myeloid", "--target", "Tcell", "--max-perturb", "1"], "valid choices: Ery, Mk, Mo, Neu"),
        (["oracle", "--world", "myeloid", "--target", "Mo", "--max-perturb", "1", "--kinds", "silence"], "silence"),
        (["oracle", "--world", "myeloid", "--target", "Mo", "--max-perturb", "40"], "max-perturb"),
        (["simulate", "--world", "myeloid", "--perturb", "Gata9=ko"], "Gata9"),
        (["simulate", "--world", "myeloid", "--perturb", "Gata1=off"], "off"),
        (["simulate", "--world", "myeloid", "--perturb", "Gata1"], "GENE=ko"),
        (["bench", "warp"], "warp"),
    ],
)
def test_bad_names_on_the_command_line(args, needle, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2, err
    assert needle.lower() in err.lower() and "Traceback" not in err


def _write_h5ad(path: Path, obs: dict, X: np.ndarray) -> None:
    import anndata as ad
    import pandas as pd

    ad.AnnData(X=X.astype(np.float32), obs=pd.DataFrame(obs, index=[f"c{i}" for i in range(len(X))]),
               var=pd.DataFrame(index=[f"g{j}" for j in range(X.shape[1])])).write_h5ad(path)


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing pseudotime column", "pseudotime"),
        ("nan values", "nan"),
        ("empty", "cells"),
    ],
)
def test_bad_single_cell_data(case, needle, tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 0 if case == "empty" else 200
    X = rng.random((n, 6))
    obs = {"cell_type": (["a", "b"] * (n // 2))[:n], "pseudotime": rng.random(n)}
    if case == "missing pseudotime column":
        del obs["pseudotime"]
    if case == "nan values":
        X[3, 2] = np.nan
    data = tmp_path / "data.h5ad"
    _write_h5ad(data, obs, X)
    before = files_under(tmp_path)
    code, _, err = run_cli(["infer", str(data), "--out", str(tmp_path / "world")], capsys)
    one_line_error(code, err, needle)
    assert files_under(tmp_path) == before
