"""`tournament infer`: read single-cell data, infer a world, write it (and its ranked edges) where a spec can name it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from envs.inference import InferenceResult

EVIDENCE_FILE = "inference.json"
EDGES_FILE = "edges.csv"


def run_infer(
    data_path,
    pseudotime: "str | list[str] | None",
    cell_type: "str | None",
    genes: "list[str] | None",
    out_dir,
    root: "str | int | None" = None,
    n_genes: int = 20,
    ct: bool = False,
) -> "tuple[InferenceResult, Path]":
    """Infer a world from `data_path` (a file/directory, or an AnnData) and save it in `out_dir`.

    Writes network.bnet and world.json (`envs.world.save_world`), edges.csv (every ordered
    gene pair: regulator, target, sign, score = bootstrap confidence, in_rules, mutual
    information; `envs.inference.edges`), and inference.json with each rule's regulators
    and agreement, the genes' switch times and the settings. `ct`: the table holds qPCR Ct
    values (lower = more expressed). The world is named after `out_dir`.
    """
    from envs.inference import infer_world, read_data
    from envs.world import save_world

    adata = read_data(data_path, ct=ct) if isinstance(data_path, (str, Path)) else data_path
    out = Path(out_dir)
    result = infer_world(
        adata,
        pseudotime=pseudotime,
        cell_type=cell_type,
        genes=genes,
        n_genes=n_genes,
        root=root,
        name=out.resolve().name or "inferred",
    )
    path = save_world(result.world, out)
    result.ranked_edges.to_csv(path / EDGES_FILE, index=False)
    evidence = {
        "rules": {
            gene: {
                "rule": rule.text,
                "activators": list(rule.activators),
                "repressors": list(rule.repressors),
                "agreement": rule.agreement,
                "candidates": list(rule.candidates),
            }
            for gene, rule in result.rules.items()
        },
        "switch_times": {g: (t if t != float("inf") else None) for g, t in result.switch_times.items()},
        "settings": result.settings,
        "data": str(data_path) if isinstance(data_path, (str, Path)) else "in-memory AnnData",
    }
    (path / EVIDENCE_FILE).write_text(json.dumps(evidence, indent=2, default=str) + "\n")
    return result, path


@click.command("infer")
@click.argument("data", type=click.Path())
@click.option("--pseudotime", default="pseudotime", show_default=True,
              help="obs column with pseudotime, or comma-separated columns, one per lineage (BEELINE/Slingshot); "
                   "when absent, a reader's lineage columns (PseudoTime1, ...), else diffusion pseudotime from --root.")
@click.option("--cell-type", "cell_type", default=None,
              help="obs column with cell types (default: cell_type if present, else fates from the pseudotime branches).")
@click.option("--ct", is_flag=True, help="The table holds qPCR Ct values (lower = more expressed; the largest = not detected).")
@click.option("--genes", default=None, help="Comma-separated genes (default: automatic).")
@click.option("--n-genes", type=int, default=20, show_default=True)
@click.option("--root", default=None, help="Root cell for diffusion pseudotime when the data has none.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Directory to write the world to.")
def infer_cmd(data, pseudotime, cell_type, ct, genes, n_genes, root, out_dir) -> None:
    """Infer a world (rules, fates, start states) and ranked edges from single-cell data along pseudotime."""
    gene_list = [g.strip() for g in genes.split(",")] if genes else None
    times = [c.strip() for c in pseudotime.split(",")] if pseudotime and "," in pseudotime else pseudotime
    result, path = run_infer(data, times, cell_type, gene_list, out_dir, root=root, n_genes=n_genes, ct=ct)
    click.echo(result.report())
    click.echo(f"\nworld written to {path} (use it in a spec as world: {path}); ranked edges in {path / EDGES_FILE}")


COMMANDS = (infer_cmd,)
