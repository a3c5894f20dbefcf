"""`tournament infer`: read single-cell data, infer a world, write it where a spec can name it."""

from __future__ import annotations

import json
from pathlib import Path

from envs.inference import InferenceResult, infer_world, read_data
from envs.world import save_world

EVIDENCE_FILE = "inference.json"


def run_infer(
    data_path,
    pseudotime: str | None,
    cell_type: str,
    genes: "list[str] | None",
    out_dir,
    root: "str | int | None" = None,
    n_genes: int = 20,
) -> tuple[InferenceResult, Path]:
    """Infer a world from `data_path` (a file/directory, or an AnnData) and save it in `out_dir`.

    Writes network.bnet and world.json (`envs.world.save_world`) plus inference.json with
    each rule's regulators and agreement, the genes' switch times and the settings.
    The world is named after `out_dir`.
    """
    adata = read_data(data_path) if isinstance(data_path, (str, Path)) else data_path
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
