"""The world-facing CLI: worlds, oracle, simulate and infer, with their JSON contracts."""

import json

from envs import load_world
from envs.simulate import simulate_anndata
from tournament.cli.main import main


def run_json(args, capsys):
    code = main(args + ["--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_worlds_lists_both_built_in_worlds(capsys):
    worlds = {w["name"]: w for w in run_json(["worlds"], capsys)}
    assert set(worlds) >= {"myeloid", "tcell"}
    assert "Delta" in worlds["tcell"]["inputs"]
    assert worlds["tcell"]["stages"] == ["ETP", "DN2a", "DN2b", "DN3"]
    assert set(worlds["myeloid"]["start_states"]["CMP"]) == {"Gata2", "Cebpa", "Pu.1"}


def test_oracle_json_contract_and_consistency_with_simulate(capsys):
    result = run_json(["oracle", "--world", "myeloid", "--target", "Neu", "--max-perturb", "1"], capsys)
    assert set(result) >= {"baseline", "best", "optimum"}
    assert result["optimum"] >= result["baseline"]["Neu"]
    best = result["best"][0]
    assert best["probability"] == result["optimum"]
    args = ["simulate", "--world", "myeloid"]
    for gene, kind in best["perturbations"]:
        args += ["--perturb", f"{gene}={'ko' if kind == 'knockout' else 'oe'}"]
    sim = run_json(args, capsys)
    assert sim["method"].startswith("exact")
    assert abs(sim["fates"]["Neu"] - result["optimum"]) < 1e-9


def test_oracle_predict_gives_bayes_optimal_accuracy(capsys):
    result = run_json(["oracle", "--world", "myeloid", "--task", "predict", "--max-perturb", "1"], capsys)
    assert 0.25 < result["optimum"] <= 1.0


def test_infer_writes_a_world_that_worlds_and_simulate_can_use(tmp_path, capsys):
    adata = simulate_anndata(load_world("myeloid"), n_cells=1500, n_trajectories=150, seed=2)
    adata.write_h5ad(tmp_path / "cells.h5ad")
    code = main(["infer", str(tmp_path / "cells.h5ad"), "--out", str(tmp_path / "worlds" / "mye")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "world written to" in out
    listed = [w["name"] for w in run_json(["worlds", str(tmp_path / "worlds")], capsys)]
    assert len(listed) == 3
    sim = run_json(["simulate", "--world", str(tmp_path / "worlds" / "mye")], capsys)
    assert abs(sum(sim["fates"].values()) - 1) < 1e-6
