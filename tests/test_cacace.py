"""The Cacace, Collombet & Thieffry 2020 T-cell commitment model as a world: the phenotypes.

Imported in one call from the BBM .bnet with the authors' GINsim stage states and input
conditions. Fate markers follow the paper's stage states in `ginsim/initialState.xml`:
DN3 is Bcl11b+ pTa+ Rag1+ CD3e+ Kit- (the authors' DN3 state), B is EBF1+ Pax5+ without
Bcl11b, myeloid is C/EBP-alpha+ without Bcl11b, NK-like is Id2+ without Bcl11b, TCF-1 or
C/EBP-alpha. Everything starts from the authors' ETP state under Delta + IL7 (their
`input_T_commit_Delta_IL7`). Figures are seeded Monte-Carlo estimates (61 variables).
"""

import pytest

from envs.importer import import_model
from envs.oracle import fate_distribution
from shared_data import shared_data_file

MARKERS = {
    "DN3": {"Bcl11b": 1, "pTa": 1, "Rag1": 1, "CD3e": 1, "Kit": 0},
    "B": {"EBF1": 1, "Pax5": 1, "Bcl11b": 0},
    "Myeloid": {"CEBPa": 1, "Bcl11b": 0},
    "NK_like": {"Id2": 1, "Bcl11b": 0, "TCF1": 0, "CEBPa": 0},
}
N_CELLS = 600


@pytest.fixture(scope="module", params=["async", "priority"])
def cacace(request):
    folder = shared_data_file("cacace2020-tcell")
    report = import_model(
        folder / "bbm196_model.bnet",
        ginsim_states=folder / "ginsim" / "initialState.xml",
        ginsim_priority=folder / "ginsim" / "reg2dyn_parameters.xml" if request.param == "priority" else None,
        default_start="ETP",
        default_condition="input_T_commit_Delta_IL7",
        markers=MARKERS,
        n_cells=0,
    )
    assert report.world.scheme == request.param
    return report.world


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
