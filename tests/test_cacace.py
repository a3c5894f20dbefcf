"""The Cacace, Collombet & Thieffry 2020 T-cell commitment model as a world: the phenotypes.

Imported in one call from the BBM .bnet with the authors' GINsim stage states and input
conditions, with the fate markers of `tournament.cli.bench.model_bench.CACACE_MARKERS` (from the
paper's stage states in `ginsim/initialState.xml`). Everything starts from the authors' ETP state under Delta + IL7 (their
`input_T_commit_Delta_IL7`). Figures are seeded Monte-Carlo estimates (61 variables).
"""

import pytest

from envs.oracle import fate_distribution
from shared_data import shared_data_file
from tournament.cli.bench.model_bench import cacace_world

N_CELLS = 600


@pytest.fixture(scope="module", params=["async", "priority"])
def cacace(request):
    world = cacace_world(shared_data_file("cacace2020-tcell"), priority=request.param == "priority")
    assert world.scheme == request.param
    return world


def fates(world, perturbations=()):
    return fate_distribution(world, list(perturbations), n_cells=N_CELLS, seed=0).probabilities


def test_the_model_is_one_world_of_genes(cacace):
    assert cacace.n_genes == 56 and len(cacace.variables) == 61
    assert cacace.max_level("Gata3") == 2 and set(cacace.inputs) == {"Delta", "IL7", "MCSF"}


def test_an_unperturbed_etp_cell_reaches_dn3(cacace):
    p = fates(cacace)
    # Under general asynchronous updates (and the authors' priority classes alike) a
    # minority commits: most cells settle Id2+ without TCF-1, an NK/ILC-like state.
    assert 0.25 <= p["DN3"] <= 0.5
    assert p["NK_like"] >= 0.4


@pytest.mark.parametrize("gene", ["Bcl11b", "Gata3", "TCF1", "Notch_gene", "Delta"])
def test_knockouts_of_the_t_cell_program_block_dn3(cacace, gene):
    p = fates(cacace, [(gene, "ko")])
    assert p["DN3"] == 0.0


def test_ectopic_pu1_diverts_the_cell_away_from_the_t_lineage(cacace):
    p = fates(cacace, [("Pu1", "oe")])
    assert p["DN3"] == 0.0
    assert p["Myeloid"] >= 0.9
