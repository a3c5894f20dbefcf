"""Myeloid progenitor world: the Krumsiek 2011 Boolean network shipped with scanpy.

Source: Krumsiek J, Marr C, Schroeder T, Theis FJ (2011). Hierarchical differentiation
of myeloid progenitors is encoded in the transcription factor network. PLoS ONE 6(8):
e22649. The 11 rules (Table 1) are parsed from `scanpy/sim_models/krumsiek11.txt`;
the fate signatures are derived from `sc.datasets.krumsiek11()` (640 simulated cells,
`obs['cell_type']` in progenitor, Ery, Mk, Mo, Neu), so nothing here is retyped.

Common myeloid progenitor (CMP): Gata2, Cebpa and Pu.1 on (the data set's first cell).
Fates are defined by markers, after the paper's lineage read-outs (Fig. 1 and the stable
states of Table 2): erythrocyte = Gata1 & EKLF & !Fli1 & !Pu.1, megakaryocyte =
Gata1 & Fli1 & !EKLF & !Pu.1, monocyte = Pu.1 & cJun & EgrNab & !Gfi1 & !Gata1, neutrophil =
Pu.1 & Cebpa & Gfi1 & !cJun & !Gata1. An attractor that matches none (for example
Gata2 & Cebpa & Gfi1 without Pu.1, which a Gata1 knockout reaches) is aberrant. The other
genes of each fate's mature cells in the data are informative signatures.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np

from envs.formats import parse_sim_model
from envs.world import World, make_world

FATES = ("Ery", "Mk", "Mo", "Neu")
MARKERS: dict[str, dict[str, int]] = {
    "Ery": {"Gata1": 1, "EKLF": 1, "Fli1": 0, "Pu.1": 0},
    "Mk": {"Gata1": 1, "Fli1": 1, "EKLF": 0, "Pu.1": 0},
    "Mo": {"Pu.1": 1, "cJun": 1, "EgrNab": 1, "Gfi1": 0, "Gata1": 0},
    "Neu": {"Pu.1": 1, "Cebpa": 1, "Gfi1": 1, "cJun": 0, "Gata1": 0},
}
# A gene whose mean over the most mature cells of a type lies in this band is left
# unspecified: scanpy's continuous simulation leaves it half-way (e.g. Gata2 in Ery).
AMBIGUOUS_BAND = (0.3, 0.7)
MATURE_SHARE = 0.25


def scanpy_file(relative: str) -> Path:
    """Path of a data file inside the installed scanpy wheel, without importing scanpy."""
    spec = importlib.util.find_spec("scanpy")
    if spec is None or spec.origin is None:
        raise RuntimeError("scanpy is not installed; the myeloid world reads its files")
    return Path(spec.origin).parent / relative


def derive_signatures(expression: np.ndarray, cell_types: np.ndarray, genes: list[str]) -> dict[str, dict[str, int]]:
    """Binarized signature per fate from the most mature quarter of that fate's cells."""
    signatures: dict[str, dict[str, int]] = {}
    for fate in FATES:
        rows = expression[cell_types == fate]
        mature = rows[-max(1, int(len(rows) * MATURE_SHARE)) :].mean(axis=0)
        signatures[fate] = {
            g: int(m >= 0.5)
            for g, m in zip(genes, mature)
            if not AMBIGUOUS_BAND[0] < m < AMBIGUOUS_BAND[1]
        }
    return signatures


def myeloid_world() -> World:
    import scanpy as sc  # slow import: only the driver builds worlds, workers get them pickled

    network = parse_sim_model(scanpy_file("sim_models/krumsiek11.txt").read_text(), where="krumsiek11.txt")
    with warnings.catch_warnings():  # the shipped file repeats cell names; only expression and types are read
        warnings.filterwarnings("ignore", message="Observation names are not unique")
        adata = sc.datasets.krumsiek11()
    genes = list(adata.var_names)
    if genes != list(network.genes):
        raise RuntimeError(f"krumsiek11 data genes {genes} differ from the model's {network.genes}")
    expression = np.asarray(adata.X, dtype=float)
    cell_types = np.asarray(adata.obs["cell_type"].astype(str))
    first_cell = expression[adata.uns.get("iroot", 0)]
    cmp_genes = [g for g, v in zip(genes, first_cell) if v >= 0.5]
    return make_world(
        "myeloid",
        network,
        MARKERS,
        {"CMP": cmp_genes},
        signatures=derive_signatures(expression, cell_types, genes),
        default_start="CMP",
        description=__doc__ or "",
    )
