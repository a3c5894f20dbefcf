"""Inference measured as BEELINE measures it: readers, ranked edges, fates from branches, metrics, bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

from envs import load_world
from envs.errors import UserInputError
from envs.inference import infer_world, read_data
from envs.inference.metrics import auprc, beeline_scores, density, early_precision
from envs.inference.readers import read_beeline, read_qpcr
from envs.inference.references import read_genysis_edges, read_ranked_edges, read_ref_network
from envs.simulate import simulate_anndata
from cli_helpers import one_line_error, run_cli
from shared_data import shared_data_file

warnings.filterwarnings("ignore", message="Observation names are not unique")


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ---- a BEELINE-layout folder written by the test ---------------------------------------


def _write_beeline(folder, n_cells=120, seed=0, pseudotime=None):
    """Three genes, two lineages: A on early, then B (lineage 1) or C (lineage 2); BoolODE's file layout."""
    rng = np.random.default_rng(seed)
    cells = [f"E{i}_{i % 7}_{i % 3}" for i in range(n_cells)]
    lineage = np.arange(n_cells) % 2
    time = rng.random(n_cells)
    a = (time < 0.5).astype(float)
    b = ((time > 0.4) & (lineage == 0)).astype(float)
    c = ((time > 0.4) & (lineage == 1)).astype(float)
    expr = np.c_[a, b, c] + rng.normal(0, 0.05, (n_cells, 3)).clip(-0.04, None) + 0.05
    pd.DataFrame(expr.T, index=["A", "B", "C"], columns=cells).to_csv(folder / "ExpressionData.csv")
    if pseudotime is None:
        shared = time < 0.4
        pt1 = np.where((lineage == 0) | shared, time * 10, np.nan)
        pt2 = np.where((lineage == 1) | shared, time * 10, np.nan)
        pseudotime = pd.DataFrame({"PseudoTime1": pt1, "PseudoTime2": pt2}, index=cells)
    pseudotime.to_csv(folder / "PseudoTime.csv", na_rep="NA")
    pd.DataFrame({"Gene1": ["A", "A", "B"], "Gene2": ["B", "C", "C"], "Type": ["+", "+", "-"]}).to_csv(
        folder / "refNetwork.csv", index=False
    )
    return cells, time


def test_reads_a_beeline_folder(tmp_path):
    cells, time = _write_beeline(tmp_path)
    adata = read_data(tmp_path)
    assert adata.shape == (120, 3) and list(adata.var_names) == ["A", "B", "C"]
    assert list(adata.obs_names) == cells
    assert adata.uns["pseudotime_columns"] == ["PseudoTime1", "PseudoTime2"]
    on_first = adata.obs["PseudoTime1"].notna().to_numpy()
    assert np.isnan(adata.obs["PseudoTime2"].to_numpy()[on_first & (time >= 0.4)]).all()
    assert np.allclose(adata.obs["PseudoTime1"].to_numpy()[0], time[0] * 10)
    # The file itself names the folder too, and the values are the genes x cells table turned around.
    again = read_data(tmp_path / "ExpressionData.csv")
    table = pd.read_csv(tmp_path / "ExpressionData.csv", index_col=0)
    assert np.allclose(np.asarray(again.X), table.to_numpy().T)
    assert read_ref_network(tmp_path / "refNetwork.csv") == [("A", "B", 1), ("A", "C", 1), ("B", "C", -1)]


def test_beeline_cells_that_do_not_match_the_pseudotime_file(tmp_path, capsys):
    cells, _ = _write_beeline(tmp_path)
    table = pd.read_csv(tmp_path / "PseudoTime.csv", index_col=0)
    table.index = [c.replace("E", "cell") for c in table.index]
    table.to_csv(tmp_path / "PseudoTime.csv", na_rep="NA")
    with pytest.raises(UserInputError) as err:
        read_beeline(tmp_path)
    assert "'E0_0_0'" in _one_line(err) and "PseudoTime.csv" in str(err.value)
    one_line_error(*run_cli(["infer", str(tmp_path), "--out", str(tmp_path / "out")], capsys)[::2], "E0_0_0")


def test_all_nan_pseudotime_column(tmp_path, capsys):
    cells, time = _write_beeline(tmp_path)
    table = pd.DataFrame({"PseudoTime1": time, "PseudoTime2": np.nan}, index=cells)
    table.to_csv(tmp_path / "PseudoTime.csv", na_rep="NA")
    with pytest.raises(UserInputError) as err:
        read_data(tmp_path)
    assert "'PseudoTime2'" in _one_line(err) and "NaN" in str(err.value)
    one_line_error(*run_cli(["infer", str(tmp_path), "--out", str(tmp_path / "out")], capsys)[::2], "PseudoTime2")
    # The same check when the columns come in through obs.
    good = tmp_path / "good"
    good.mkdir()
    _write_beeline(good)
    adata = read_data(good)
    adata.obs["PseudoTime2"] = np.nan
    with pytest.raises(UserInputError) as err:
        infer_world(adata, pseudotime=["PseudoTime1", "PseudoTime2"])
    assert "'PseudoTime2'" in _one_line(err)


# ---- qPCR Ct tables ----------------------------------------------------------------------


def test_reads_a_qpcr_ct_table_with_old_mac_line_endings(tmp_path):
    text = "Cell,Gata1,Pu1\rPS_1,25,14.5\rPS_2,12,25\rHF_1,20.5,18\r"
    (tmp_path / "ct.csv").write_text(text)
    adata = read_qpcr(tmp_path / "ct.csv")
    assert list(adata.obs_names) == ["PS_1", "PS_2", "HF_1"] and list(adata.var_names) == ["Gata1", "Pu1"]
    # Lower Ct = more expressed; the largest Ct (25, not detected) reads as 0.
    assert np.allclose(np.asarray(adata.X), [[0, 10.5], [13, 0], [4.5, 7]])
    assert np.allclose(np.asarray(read_data(tmp_path / "ct.csv", ct=True).X), np.asarray(adata.X))
    # Without --ct the same table is plain expression (e.g. a higher-is-more dCt table).
    assert np.allclose(np.asarray(read_data(tmp_path / "ct.csv").X), [[25, 14.5], [12, 25], [20.5, 18]])


def test_negative_ct_is_refused(tmp_path, capsys):
    (tmp_path / "ct.csv").write_text("Cell,Gata1,Pu1\nPS_1,25,14.5\nPS_2,-3.5,25\n")
    with pytest.raises(UserInputError) as err:
        read_data(tmp_path / "ct.csv", ct=True)
    assert "'PS_2'" in _one_line(err) and "'Gata1'" in str(err.value) and "-3.5" in str(err.value)
    args = ["infer", str(tmp_path / "ct.csv"), "--ct", "--out", str(tmp_path / "out")]
    one_line_error(*run_cli(args, capsys)[::2], "negative")


def test_genysis_net_edges(tmp_path):
    (tmp_path / "m.net").write_text("Eto2&^Sox17 -> Sox7\n^Erg&Tal1 -> Erg\nErg&Sox17 -> Erg\n")
    edges = set(read_genysis_edges(tmp_path / "m.net", {"Eto2": "Cbfa2t3h"}))
    assert edges == {("Cbfa2t3h", "Sox7", 1), ("Sox17", "Sox7", -1), ("Erg", "Erg", 0), ("Tal1", "Erg", 1),
                     ("Sox17", "Erg", 1)}


# ---- ranked edges ------------------------------------------------------------------------


def test_cli_writes_edges_consistent_with_the_rules(tmp_path, capsys):
    import json

    _write_beeline(tmp_path, n_cells=200)
    out = tmp_path / "out"
    code, printed, err = run_cli(["infer", str(tmp_path), "--out", str(out)], capsys)
    assert code == 0, err
    assert "edges.csv" in printed
    edges = pd.read_csv(out / "edges.csv")
    assert list(edges.columns[:5]) == ["regulator", "target", "sign", "score", "in_rules"]
    assert len(edges) == 3 * 2 and not (edges["regulator"] == edges["target"]).any()
    assert edges["score"].between(0, 1).all() and edges["score"].is_monotonic_decreasing
    rules = json.loads((out / "inference.json").read_text())["rules"]
    in_rules = {(r, g, 1) for g, fit in rules.items() for r in fit["activators"]}
    in_rules |= {(r, g, -1) for g, fit in rules.items() for r in fit["repressors"]}
    flagged = {(r, g, int(s)) for r, g, s in edges.loc[edges["in_rules"], ["regulator", "target", "sign"]].values}
    assert flagged == in_rules and in_rules
    # No cell-type column: the two lineages' terminal states are the fates.
    world = json.loads((out / "world.json").read_text())
    assert sorted(world["fates"]) == ["PseudoTime1", "PseudoTime2"]


# ---- no cell types: fates from the pseudotime branches ------------------------------------


def test_fates_from_pseudotime_branches_of_a_branching_simulation():
    world = load_world("myeloid")
    adata = simulate_anndata(world, n_cells=1200, n_trajectories=120, seed=3)
    # One pseudotime column per lineage (the trajectory's end fate), early cells on all, as Slingshot writes.
    obs = adata.obs
    end = obs.sort_values("pseudotime").groupby("trajectory", observed=True)["cell_type"].last()
    lineage = obs["trajectory"].map(end).astype(str).to_numpy()
    fates = sorted(set(lineage) - {"other", "aberrant"})
    for fate in fates:
        on = (lineage == fate) | (obs["pseudotime"].to_numpy() < 0.15)
        adata.obs[f"PseudoTime_{fate}"] = np.where(on, obs["pseudotime"], np.nan)
    del adata.obs["cell_type"], adata.obs["pseudotime"]
    result = infer_world(adata, genes=list(world.genes), n_bootstrap=3)
    assert result.settings["cell_type"] == "pseudotime branches"
    assert set(result.world.fates) == {f"PseudoTime_{f}" for f in fates}
    for fate in fates:
        sig = dict(zip(result.world.genes, result.world.signatures[result.world.fate_index(f"PseudoTime_{fate}")]))
        if fate == "Ery":
            assert sig["EKLF"] == 1 and sig["Fli1"] == 0
        if fate == "Neu":
            assert sig["Gfi1"] == 1 and sig["cJun"] == 0
    on = {g for g, v in zip(result.world.genes, result.world.start_state()) if v}
    assert on == {"Gata2", "Cebpa", "Pu.1"}
    assert len(result.ranked_edges) == world.n_genes * (world.n_genes - 1)


# ---- BEELINE's metrics against a hand computation ----------------------------------------


TRUE = [("A", "B"), ("B", "C"), ("D", "A"), ("B", "D"), ("C", "C")]  # the self-loop is left out


def test_metrics_on_a_four_edge_toy():
    ranked = [("A", "A", 1.0), ("A", "B", 0.9), ("A", "C", 0.8), ("B", "C", 0.7), ("C", "D", 0.6), ("D", "A", 0.5)]
    # 4 genes, 12 ordered pairs, 4 true edges. Precision-recall points, top down:
    # (R, P) = (0.25, 1), (0.25, 1/2), (0.5, 2/3), (0.5, 1/2), (0.75, 3/5), then every unlisted pair
    # at score 0: (1, 4/12). Trapezoids over recall from (0, 1):
    hand = 0.25 * 1 + 0.25 * (1 / 2 + 2 / 3) / 2 + 0.25 * (1 / 2 + 3 / 5) / 2 + 0.25 * (3 / 5 + 1 / 3) / 2
    assert density(TRUE) == pytest.approx(4 / 12)
    assert auprc(TRUE, ranked) == pytest.approx(hand) == pytest.approx(0.65)
    # Early precision: the top k = 4 edges (the self-loop left out) hold 2 true ones.
    assert early_precision(TRUE, ranked) == pytest.approx(0.5)
    scores = beeline_scores(TRUE, ranked)
    assert scores["auprc_ratio"] == pytest.approx(0.65 * 3) and scores["epr"] == pytest.approx(1.5)
    # Ties with the k-th edge are kept: 5 edges at >= 0.6, 3 of them true.
    tied = [("A", "B", 0.9), ("A", "C", 0.8), ("B", "C", 0.6), ("C", "D", 0.6), ("D", "A", -0.6)]
    assert early_precision(TRUE, tied) == pytest.approx(3 / 5)
    # A perfect ranking has AUPRC 1; the first listing of a pair counts.
    assert auprc(TRUE, [("A", "B", 1), ("B", "C", 1), ("D", "A", 1), ("B", "D", 1), ("A", "B", 0)]) == pytest.approx(1)


def test_metrics_match_beeline_on_its_own_files():
    """PIDC's and GENIE3's AUPRC ratios on HSC, recomputed from rankedEdges.csv, match the folder's table."""
    root = shared_data_file("beeline-boolode")
    table = pd.read_csv(root / "outputs" / "AUPRC_ratio_computed_here.csv", index_col=0)
    truth = [(a, b) for a, b, _ in read_ref_network(root / "simulated" / "HSC_2000_0" / "refNetwork.csv")]
    for method in ("PIDC", "GENIE3", "SCODE"):
        ranked = read_ranked_edges(root / "outputs" / "Simulated" / "HSC" / "HSC_2000_0" / method / "rankedEdges.csv")
        assert beeline_scores(truth, ranked)["auprc_ratio"] == pytest.approx(table.loc["HSC_2000_0", method], abs=0.006)


def test_bench_scores_the_methods_from_their_files(tmp_path):
    """The bench's side-by-side rows come from the files: a method listing the true edges first is best."""
    from tournament.cli.bench.inference_bench import beeline_rows

    folder = tmp_path / "simulated" / "TOY_2000_0"
    folder.mkdir(parents=True)
    _write_beeline(folder, n_cells=200)
    outputs = tmp_path / "outputs" / "Simulated" / "TOY" / "TOY_2000_0"
    for method, order in {"PERFECT": ["A B", "A C", "B C"], "REVERSED": ["C B", "C A", "B A"]}.items():
        (outputs / method).mkdir(parents=True)
        lines = [f"{e.split()[0]}\t{e.split()[1]}\t{1 - 0.1 * i}" for i, e in enumerate(order)]
        (outputs / method / "rankedEdges.csv").write_text("Gene1\tGene2\tEdgeWeight\n" + "\n".join(lines) + "\n")
    rows = beeline_rows(tmp_path)
    assert [r["metric"] for r in rows] == ["AUPRC ratio", "EPR"]
    auprc_row = rows[0]
    assert auprc_row["data"] == "TOY_2000_0" and auprc_row["kind"] == "curated"
    assert auprc_row["PERFECT"] == pytest.approx(1 / 0.5) and auprc_row["best_other"].startswith("PERFECT")
    assert auprc_row["REVERSED"] < auprc_row["PERFECT"]
    assert auprc_row["rank"].endswith("/3") and auprc_row["density"] == pytest.approx(0.5)
