"""World recipes (`NAME.world.yaml`): a tiny model imported through a recipe, bad recipes, and the shipped recipes of the benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.errors import UserInputError
from envs.world import load_world
from envs.world_recipe import RECIPE_KEYS, import_recipe, read_recipe
from shared_data import shared_data_file

RECIPES = Path(__file__).resolve().parents[1] / "experiments" / "worlds"
# A toggle switch with one input: S pushes A; A and B repress each other.
TOGGLE = "targets,factors\nA, (A | S) & !B\nB, B & !A\nS, S\n"


def write_recipe(folder: Path, text: str, model: str = TOGGLE) -> Path:
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / "toggle.bnet").write_text(model)
    path = folder / "toggle.world.yaml"
    path.write_text(text)
    return path


GOOD = """
name: toggle
description: A toggle switch, for the tests.
model: models/toggle.bnet
markers:
  A_fate: [A+, B-]
  B_fate: {B: 1, A: 0}
starts:
  both: [A, B]
  none: []
conditions:
  quiet: {S: 0}
  signal: {S: 1}
default_condition: signal
"""


def test_a_recipe_loads_as_a_world_with_its_fates_starts_and_conditions(tmp_path):
    path = write_recipe(tmp_path, GOOD)
    world = load_world(str(path))
    assert world.name == "toggle" and world.fates == ("A_fate", "B_fate")
    assert list(world.start_states) == ["both", "none"] and world.default_start == "both" and world.default_condition == "signal"
    assert world.description == "A toggle switch, for the tests." and world.source == str(path)
    assert load_world(str(path)) is world  # cached in memory


def test_the_import_report_names_every_reachable_attractor(tmp_path):
    report = import_recipe(write_recipe(tmp_path, GOOD), n_cells=50)
    quiet = {a.fate for a in report.reachable("both", "quiet")}
    assert quiet == {"A_fate", "B_fate"}
    # from all off the signal switches A on; without it the cell stays off (no fate)
    assert [a.fate for a in report.reachable("none", "signal")] == ["A_fate"]
    assert [a.status for a in report.reachable("none", "quiet")] == ["unnamed"]


def test_a_missing_model_file_names_the_file_and_the_shared_data(tmp_path):
    path = tmp_path / "gone.world.yaml"
    path.write_text("model: ../nowhere/model.bnet\n")
    with pytest.raises(UserInputError, match=r"model file not found: .*nowhere.*shared/data") as info:
        load_world(str(path))
    assert "\n" not in str(info.value)


def test_unknown_keys_are_refused_with_the_valid_keys(tmp_path):
    path = write_recipe(tmp_path, GOOD + "fate_threshold: 0.8\n")
    with pytest.raises(UserInputError, match="fate_threshold") as info:
        read_recipe(path)
    assert all(key in str(info.value) for key in RECIPE_KEYS)


@pytest.mark.parametrize("marker", ["A", "A=on", "+A"])
def test_a_bad_marker_names_the_syntax(tmp_path, marker):
    path = write_recipe(tmp_path, GOOD.replace("[A+, B-]", f"[{marker}, B-]"))
    with pytest.raises(UserInputError, match="GENE\\+, GENE- or GENE=LEVEL"):
        read_recipe(path)


def test_an_unknown_gene_in_the_markers_lists_the_genes(tmp_path):
    path = write_recipe(tmp_path, GOOD.replace("[A+, B-]", "[Q+, B-]"))
    with pytest.raises(UserInputError, match="'Q'.*A, B, S"):
        load_world(str(path))


SHIPPED = {
    "cacace_tcell": ("cacace2020-tcell", ("DN3", "B", "Myeloid", "NK_like"), "ETP"),
    "collombet_bcell_macrophage": ("hematopoiesis-boolean-models", ("Bcell", "Macrophage", "GMP_like", "CLP_like"), "MP"),
    "selvaggio_emt": (None, ("Epithelial", "Hybrid", "Mesenchymal"), "E"),  # pyboolnet's repository
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_recipes_load_from_the_shared_data(name):
    folder, fates, start = SHIPPED[name]
    if folder:
        shared_data_file(folder)
    world = load_world(str(RECIPES / f"{name}.world.yaml"))
    assert world.fates == fates and world.default_start == start
    assert world.description.split()[0] in ("Cacace", "Collombet", "Selvaggio")


def test_collombet_b_cells_stay_b_cells_and_cebpa_turns_them_into_macrophages():
    shared_data_file("hematopoiesis-boolean-models")
    report = import_recipe(RECIPES / "collombet_bcell_macrophage.world.yaml")
    assert [a.fate for a in report.reachable("Bcell")] == ["Bcell"]
    assert "Macrophage" in {a.fate for a in report.reachable("Bcell+Cebpa")}


def test_selvaggio_tgfb_drives_the_epithelial_cell_mesenchymal():
    report = import_recipe(RECIPES / "selvaggio_emt.world.yaml")
    assert [a.fate for a in report.reachable("E", "none")] == ["Epithelial"]
    assert [a.fate for a in report.reachable("E", "TGFB")] == ["Mesenchymal"]


def test_a_world_path_in_a_trial_plan_is_absolute(tmp_path, monkeypatch):
    """Tune runs a trial in its own working directory, so a relative world path must not reach it."""
    from envs.world import portable_world_name, save_world

    save_world(load_world("myeloid"), tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    assert portable_world_name("mine") == str(tmp_path / "mine")
    assert portable_world_name("myeloid") == "myeloid" and portable_world_name("pyboolnet:tcell") == "pyboolnet:tcell"
