"""Published models read by envs.model_files: repositories by name, SBML-qual, BooleanNet, bad input.

Dynamics are checked against AEON (biodivine_aeon), an independent symbolic engine: every fixed
point AEON finds must be one of ours, and every cell our simulator settles must be one of AEON's.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import biodivine_aeon as aeon
import numpy as np
import pytest

from envs.errors import UserInputError
from envs.formats import parse_bnet
from envs.model_files import read_model, repository_models
from envs.network import BooleanNetwork
from shared_data import shared_data_file

CACACE_GENES = {"Pu1", "Gata3", "Runx1", "Lef1", "Notch_gene"}

PYBOOLNET_MODELS = [
    "krumsiek_myeloid", "calzone_cellfate", "jaoude_thdiff", "selvaggio_emt", "zhang_tlgl", "grieco_mapk",
    "faure_cellcycle", "klamt_tcr", "remy_tumorigenesis", "tournier_apoptosis", "dahlhaus_neuroplastoma",
    "arellano_rootstem",
]
CANA_MODELS = [
    "B cell differentiation", "T cell differentiation", "Cardiac development", "CD4+ T cell Differentiation",
    "Lymphoid and myeloid cell specification and transdifferentiation", "Mammalian Cell Cycle 2006",
]
SOURCES = [f"pyboolnet:{n}" for n in PYBOOLNET_MODELS] + [f"cana:{n}" for n in CANA_MODELS]


def shared_file(name: str) -> Path:
    return shared_data_file(f"cacace2020-tcell/{name}")


def aeon_fixed_points(network: BooleanNetwork):
    graph = aeon.AsynchronousGraph(aeon.BooleanNetwork.from_bnet(network.to_bnet()))
    return graph, aeon.FixedPointsComp.create_from(graph).symbolic_vertices()


def in_aeon_set(graph, vertices, network: BooleanNetwork, state: np.ndarray) -> bool:
    point = graph.mk_subspace_vertices({g: bool(v) for g, v in zip(network.genes, state)})
    return not point.intersect(vertices).is_empty()


def disagreements(ours: BooleanNetwork, ref: BooleanNetwork, rename=lambda g: g) -> list[str]:
    """Variables whose update functions differ, compared on every combination of the regulators of both."""
    ref_index = {g: i for i, g in enumerate(ref.genes)}
    ours_index = {rename(g): i for i, g in enumerate(ours.genes)}
    assert set(ours_index) == set(ref_index)
    bad = []
    for gene, g in ours_index.items():
        r = ref_index[gene]
        regulators = sorted(
            {rename(ours.genes[i]) for i in ours.inputs[g, : ours.n_inputs[g]]}
            | {ref.genes[i] for i in ref.inputs[r, : ref.n_inputs[r]]}
        )
        rows = np.array(list(itertools.product((0, 1), repeat=len(regulators))), dtype=np.uint8)
        a = np.zeros((len(rows), ours.n_genes), dtype=np.uint8)
        b = np.zeros((len(rows), ref.n_genes), dtype=np.uint8)
        for j, name in enumerate(regulators):
            a[:, ours_index[name]] = rows[:, j]
            b[:, ref_index[name]] = rows[:, j]
        if not np.array_equal(ours.next_values(a, np.full(len(rows), g)), ref.next_values(b, np.full(len(rows), r))):
            bad.append(gene)
    return bad


# ---- repositories -------------------------------------------------------------------


def test_repositories_list_their_models():
    assert {"krumsiek_myeloid", "jaoude_thdiff"} <= set(repository_models("pyboolnet"))
    assert "B cell differentiation" in repository_models("cana")
    assert len(repository_models("cana")) >= 70


@pytest.mark.parametrize("source", SOURCES)
def test_published_model_fixed_points_agree_with_aeon(source):
    model = read_model(source)
    network = model.network
    assert model.source.lower() == source.lower()
    graph, fixed = aeon_fixed_points(network)
    # AEON's fixed points (up to 200 of them) are fixed points of our engine.
    points = [[int(v.to_named_dict()[g]) for g in network.genes] for v in itertools.islice(fixed.items(), 200)]
    if points:
        assert network.is_fixed_point(np.array(points, dtype=np.uint8)).all()
    # Our simulator: every cell that settles does so on one of AEON's fixed points.
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 2, size=(24, network.n_genes)).astype(np.uint8)
    finals = network.run_to_attractor(starts, rng)
    settled = finals[network.is_fixed_point(finals)]
    assert all(in_aeon_set(graph, fixed, network, s) for s in settled)
    assert len(settled) or fixed.is_empty()


@pytest.mark.parametrize("source", ["pyboolnet:krumsiek_myeloid", "pyboolnet:faure_cellcycle", "cana:Cardiac development"])
def test_small_model_has_exactly_aeons_fixed_points(source):
    network = read_model(source).network
    states = np.array(list(itertools.product((0, 1), repeat=network.n_genes)), dtype=np.uint8)
    ours = states[network.is_fixed_point(states)]
    _, fixed = aeon_fixed_points(network)
    assert len(ours) == fixed.cardinality() > 0


def test_small_model_attractors_agree_with_aeon():
    """krumsiek_myeloid: AEON's attractors are the six fixed points of the paper, all of them ours."""
    network = read_model("pyboolnet:krumsiek_myeloid").network
    graph, fixed = aeon_fixed_points(network)
    attractors = aeon.Attractors.attractors(graph)
    assert len(attractors) == 6 and all(a.vertices().cardinality() == 1 for a in attractors)
    union = attractors[0].vertices()
    for a in attractors[1:]:
        union = union.union(a.vertices())
    assert union.minus(fixed).is_empty() and fixed.minus(union).is_empty()


def test_booleanized_repository_models_group_their_bits():
    assert read_model("pyboolnet:selvaggio_emt").genes["FA"] == ["FA_b1", "FA_b2", "FA_b3"]
    assert read_model("pyboolnet:jaoude_thdiff").genes == {
        "IL2R": ["IL2R_b1", "IL2R_b2"],
        "STAT5": ["STAT5_b1", "STAT5_b2"],
    }
    assert read_model("pyboolnet:krumsiek_myeloid").genes == {}


def test_cana_names_and_renames():
    model = read_model('cana:"B cell differentiation"')
    assert read_model("cana:b_cell_differentiation").network.rules == model.network.rules
    assert model.name == "B cell differentiation"
    assert "IL_21R" in model.network.genes and "IL-21R" not in model.network.genes
    assert any("'IL-21R' -> IL_21R" in note for note in model.notes)


def test_cana_truth_tables_read_in_file_order():
    """Lac operon (Veliz-Cuba & Stigler 2011): lactose enters with the permease, outside lactose and no glucose."""
    network = read_model("cana:lac_operon").network
    lactose = dict(zip(network.genes, network.rules))["L"]
    inputs = {"Ge": "Ge", "Le": "Le", "P": "P"}
    expected = BooleanNetwork.from_rules({"L": "!Ge & Le & P", **inputs})
    assert disagreements(BooleanNetwork.from_rules({"L": lactose, **inputs}), expected) == []


# ---- the Cacace 2020 T-cell model: bnet, Booleanized SBML, multi-valued SBML ------------


def test_bnet_groups_booleanized_bits():
    model = read_model(shared_file("bbm196_model.bnet"))
    assert model.network.n_genes == 61
    assert {g.removeprefix("v_") for g in model.genes} == CACACE_GENES
    assert all(bits == [f"{g}_b1", f"{g}_b2"] for g, bits in model.genes.items())


def test_booleanized_sbml_equals_bnet():
    bnet = read_model(shared_file("bbm196_model.bnet"))
    sbml = read_model(shared_file("bbm196_model.sbml"))
    assert set(sbml.network.genes) == set(bnet.network.genes)
    assert sbml.genes == bnet.genes
    assert disagreements(sbml.network, bnet.network) == []
    assert set(sbml.network.constant_genes) == set(bnet.network.constant_genes) == {"v_Delta", "v_IL7", "v_MCSF"}
    # AEON's own SBML reader agrees too.
    theirs = parse_bnet(aeon.BooleanNetwork.from_file(str(shared_file("bbm196_model.sbml"))).to_bnet())
    assert disagreements(sbml.network, theirs) == []


def test_multivalued_sbml_booleanized_agrees_with_bnet():
    bnet = read_model(shared_file("bbm196_model.bnet")).network
    model = read_model(shared_file("source.multivalued.sbml"))
    assert model.genes == {g: [f"{g}_b1", f"{g}_b2"] for g in CACACE_GENES}
    # Every update function, on every combination of its regulators.
    assert disagreements(model.network, bnet, rename=lambda g: f"v_{g}") == []
    # And whole synchronous updates of random states.
    order = [bnet.genes.index(f"v_{g}") for g in model.network.genes]
    states = np.random.default_rng(0).integers(0, 2, size=(5000, bnet.n_genes)).astype(np.uint8)
    assert np.array_equal(model.network.sync_update(states[:, order]), bnet.sync_update(states)[:, order])


def test_multivalued_bits_stay_in_thermometer_code():
    """One bit updated at a time (asynchronous) never leaves the code: a gene moves one level at a time."""
    network = read_model(shared_file("source.multivalued.sbml")).network
    rng = np.random.default_rng(1)
    states = rng.integers(0, 2, size=(2000, network.n_genes)).astype(np.uint8)
    pairs = [(network.gene_index(f"{g}_b1"), network.gene_index(f"{g}_b2")) for g in CACACE_GENES]
    for b1, b2 in pairs:
        states[:, b2] &= states[:, b1]  # start in the code: b2 implies b1
    for b1, b2 in pairs:
        for bit in (b1, b2):
            moved = states.copy()
            moved[:, bit] = network.next_values(states, np.full(len(states), bit))
            assert (moved[:, b2] <= moved[:, b1]).all()


def test_tiny_multivalued_sbml(tmp_path):
    """A three-level gene A set by input B; C reads A through an input's threshold level."""
    path = tmp_path / "tiny.sbml"
    path.write_text(TINY_SBML)
    model = read_model(path)
    assert model.genes == {"A": ["A_b1", "A_b2"]}
    expected = BooleanNetwork.from_rules(
        # target(A) = 2 if B else 1; bit 1: level after one step >= 1; bit 2: A_b1 and target >= 2.
        {"A_b1": "1", "A_b2": "A_b1 & B", "B": "B", "C": "A_b1 & A_b2 & !B"}
    )
    assert disagreements(model.network, expected) == []
    assert any("B" in note for note in model.notes)


TINY_SBML = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1"
      xmlns:qual="http://www.sbml.org/sbml/level3/version1/qual/version1" qual:required="true">
  <model id="tiny">
    <listOfCompartments><compartment id="c" constant="true"/></listOfCompartments>
    <qual:listOfQualitativeSpecies>
      <qual:qualitativeSpecies qual:id="A" qual:compartment="c" qual:constant="false" qual:maxLevel="2"/>
      <qual:qualitativeSpecies qual:id="B" qual:compartment="c" qual:constant="false" qual:maxLevel="1"/>
      <qual:qualitativeSpecies qual:id="C" qual:compartment="c" qual:constant="false" qual:maxLevel="1"/>
    </qual:listOfQualitativeSpecies>
    <qual:listOfTransitions>
      <qual:transition qual:id="tA">
        <qual:listOfInputs>
          <qual:input qual:id="tA_B" qual:qualitativeSpecies="B" qual:transitionEffect="none"/>
        </qual:listOfInputs>
        <qual:listOfOutputs>
          <qual:output qual:qualitativeSpecies="A" qual:transitionEffect="assignmentLevel"/>
        </qual:listOfOutputs>
        <qual:listOfFunctionTerms>
          <qual:defaultTerm qual:resultLevel="1"/>
          <qual:functionTerm qual:resultLevel="2">
            <math xmlns="http://www.w3.org/1998/Math/MathML">
              <apply><eq/><ci> B </ci><cn type="integer"> 1 </cn></apply>
            </math>
          </qual:functionTerm>
        </qual:listOfFunctionTerms>
      </qual:transition>
      <qual:transition qual:id="tC">
        <qual:listOfInputs>
          <qual:input qual:id="theta_A" qual:qualitativeSpecies="A" qual:thresholdLevel="2" qual:transitionEffect="none"/>
          <qual:input qual:id="tC_B" qual:qualitativeSpecies="B" qual:transitionEffect="none"/>
        </qual:listOfInputs>
        <qual:listOfOutputs>
          <qual:output qual:qualitativeSpecies="C" qual:transitionEffect="assignmentLevel"/>
        </qual:listOfOutputs>
        <qual:listOfFunctionTerms>
          <qual:defaultTerm qual:resultLevel="0"/>
          <qual:functionTerm qual:resultLevel="1">
            <math xmlns="http://www.w3.org/1998/Math/MathML">
              <apply><and/>
                <apply><geq/><ci> A </ci><ci> theta_A </ci></apply>
                <apply><neq/><ci> B </ci><cn type="integer"> 1 </cn></apply>
              </apply>
            </math>
          </qual:functionTerm>
        </qual:listOfFunctionTerms>
      </qual:transition>
    </qual:listOfTransitions>
  </model>
</sbml>
"""


# ---- other formats, bad input --------------------------------------------------------------


def test_booleannet_rules(tmp_path):
    path = tmp_path / "toggle.booleannet"
    path.write_text("# a toggle switch\nA = True\nB = False\n\nA* = A and not B\nB* = not A or C\n")
    model = read_model(path)
    assert model.network.genes == ("A", "B", "C")
    assert model.network.constant_genes == ("C",)
    assert any("initial values of 2 genes" in note for note in model.notes)
    (tmp_path / "toggle.txt").write_text(path.read_text())
    assert read_model(tmp_path / "toggle.txt").network.rules == model.network.rules


def one_line_error(source) -> str:
    with pytest.raises(UserInputError) as info:
        read_model(source)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("content", ["this is not xml <<", '<?xml version="1.0" encoding="UTF-8"?><notsbml/>'])
def test_malformed_sbml(tmp_path, content):
    path = tmp_path / "model.sbml"
    path.write_text(content)
    message = one_line_error(path)
    assert message.startswith(f"{path}: not SBML-qual (libsbml: ")


def test_sbml_core_without_qual(tmp_path):
    path = tmp_path / "core.xml"
    core = "http://www.sbml.org/sbml/level3/version1/core"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><sbml xmlns="{core}" level="3" version="1"><model id="m"/></sbml>')
    assert one_line_error(path) == f"{path}: not SBML-qual (no qual package: an SBML core model)"


def test_unknown_names_list_the_choices(tmp_path):
    message = one_line_error("pyboolnet:krumsiek")
    assert "'krumsiek'" in message and "krumsiek_myeloid" in message and "zhang_tlgl" in message
    assert "B cell differentiation" in one_line_error("cana:no such model")
    message = one_line_error("biomodels:foo")
    assert "'biomodels'" in message and "pyboolnet, cana" in message
    path = tmp_path / "model.csv"
    path.write_text("A,B\n")
    message = one_line_error(path)
    assert "'.csv'" in message and ".bnet" in message and ".sbml" in message
    assert one_line_error(tmp_path / "missing.bnet") == f"model file not found: {tmp_path / 'missing.bnet'}"
