"""Simulated single-cell data: shape, pseudotime, cell types consistent with the Boolean states."""

import numpy as np

from envs import load_world
from envs.simulate import monte_carlo_fates, simulate_anndata


def test_simulated_anndata_is_consistent_with_its_world():
    world = load_world("myeloid")
    adata = simulate_anndata(world, n_cells=400, n_trajectories=40, dropout=0.2, seed=1)
    assert adata.shape == (400, world.n_genes)
    assert list(adata.var_names) == list(world.genes)
    pt = adata.obs["pseudotime"].to_numpy()
    assert pt.min() >= 0 and pt.max() <= 1 and pt.std() > 0.1
    labels = np.array(world.fate_labels)[world.classify(adata.layers["boolean"])]
    assert (labels == adata.obs["cell_type"].astype(str).to_numpy()).all()
    # Mature cells (late pseudotime) are mostly named fates, early ones mostly not.
    late = adata.obs["cell_type"][pt >= 0.99].astype(str)
    assert (late != "other").mean() > 0.8
    # Dropout zeroes on-genes sometimes: expression is sparser than the Boolean state.
    on = adata.layers["boolean"] == 1
    assert 0.1 < (adata.X[on] == 0).mean() < 0.35


def test_monte_carlo_is_seeded_and_sums_to_one():
    world = load_world("myeloid")
    a = monte_carlo_fates(world, [("Gfi1", "oe")], n_cells=500, seed=3)
    b = monte_carlo_fates(world, [("Gfi1", "oe")], n_cells=500, seed=3)
    assert a.probabilities == b.probabilities
    assert abs(sum(a.probabilities.values()) - 1) < 1e-9
    assert a.probabilities["Mo"] == 0.0  # Gfi1 on represses EgrNab: no monocytes
