"""World recipes: a small YAML file that says how to import a published model kept outside the repo.

The benchmark's published worlds are models of 30-100 variables read from ../shared/data; a
recipe (`NAME.world.yaml`) names the model file, the authors' GINsim states, the fate markers
and the defaults, so a world is rebuilt from the source on load instead of being copied into
the repository. Paths are relative to the recipe file; `model: pyboolnet:NAME` names a model of
an installed package's repository instead. Example::

    name: collombet_bcell_macrophage
    description: Collombet et al. 2017 PNAS 114:5792 ...
    model: ../../../shared/data/hematopoiesis-boolean-models/bbm073_.../model.bnet
    ginsim_states: ../../../shared/data/hematopoiesis-boolean-models/bbm073_.../ginsim/initialState.xml
    markers:
      Bcell: [Ebf1+, Pax5+, Cd19+, Cebpa-]
      Macrophage: [Cebpa+, Mac1+, Csf1r+, Pax5-]
    default_start: CLP
    default_condition: Csf1+Il7

`load_world("experiments/worlds/x.world.yaml")` imports it (`envs.importer.import_model`,
attractors found symbolically, no simulated cells) and caches the World in memory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from envs.errors import UserInputError, choices_error
from envs.world import World

RECIPE_SUFFIX = ".world.yaml"
RECIPE_KEYS = (
    "name", "description", "model", "ginsim_states", "ginsim_priority", "markers", "stages",
    "default_start", "default_condition", "conditions", "starts", "scheme",
)
_PATH_KEYS = ("model", "ginsim_states", "ginsim_priority")


def is_recipe(path: "str | Path") -> bool:
    """Whether a world name is a recipe path (by its suffix)."""
    return str(path).endswith(RECIPE_SUFFIX)


def read_recipe(path: "str | Path") -> dict:
    """The recipe's checked keys, with paths resolved against the recipe's folder."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"world recipe not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a world recipe is a mapping of keys ({', '.join(RECIPE_KEYS)})")
    unknown = sorted(set(data) - set(RECIPE_KEYS))
    if unknown:
        raise choices_error(f"key in world recipe {path}", unknown[0], RECIPE_KEYS)
    if "model" not in data:
        raise UserInputError(f"{path}: missing key 'model' (the model file, relative to the recipe)")
    out = dict(data)
    for key in _PATH_KEYS:
        if out.get(key) is None or (key == "model" and _is_repository_model(str(out[key]))):
            continue
        file = (path.parent / str(out[key])).resolve()
        if not file.is_file():
            raise UserInputError(
                f"{path}: {key} file not found: {file} (the benchmark's published worlds read the models "
                "in ../shared/data next to the repository)"
            )
        out[key] = file
    out["markers"] = {str(f): _markers(m, f"{path}: markers of fate {f!r}") for f, m in (data.get("markers") or {}).items()}
    for key in ("conditions", "starts"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise UserInputError(f"{path}: {key} must map a name to {{GENE: level}}, got {type(value).__name__}")
        out[key] = {str(k): _levels(v, f"{path}: {key[:-1]} {k!r}") for k, v in value.items()}
    return out


def _is_repository_model(model: str) -> bool:
    """`pyboolnet:NAME` / `cana:NAME`: a model shipped with an installed package, not a file."""
    return ":" in model and model.split(":", 1)[0].lower() in ("pyboolnet", "cana")


def _markers(value, where: str) -> dict[str, int]:
    """[GENE+, GENE-, GENE=2] or {GENE: level} as {GENE: level}."""
    if isinstance(value, dict):
        return _levels(value, where)
    if not isinstance(value, (list, tuple)):
        raise UserInputError(f"{where}: write a list such as [Ebf1+, Pax5+, Cebpa-], got {value!r}")
    out: dict[str, int] = {}
    for token in value:
        token = str(token).strip()
        if "=" in token:
            gene, level = token.split("=", 1)
            if not level.strip().isdigit():
                raise UserInputError(f"{where}: bad marker {token!r}; write GENE+, GENE- or GENE=LEVEL")
            out[gene.strip()] = int(level)
        elif token.endswith("+") or token.endswith("-"):
            out[token[:-1].strip()] = 1 if token.endswith("+") else 0
        else:
            raise UserInputError(f"{where}: bad marker {token!r}; write GENE+, GENE- or GENE=LEVEL")
    return out


def _levels(value, where: str) -> "dict[str, int] | list[str]":
    if isinstance(value, (list, tuple)):
        return [str(g) for g in value]  # genes on
    if not isinstance(value, dict):
        raise UserInputError(f"{where}: write {{GENE: level}} or a list of genes on, got {value!r}")
    return {str(g): int(v) for g, v in value.items()}


def load_recipe(path: "str | Path") -> World:
    """Import the model a recipe names and return its World (no simulated cells: quick)."""
    return import_recipe(path).world


def import_recipe(path: "str | Path", n_cells: int = 0, seed: int = 0):
    """The `envs.importer.ImportReport` of a recipe: its World and every reachable attractor, named
    by the markers; `n_cells` simulated cells per start and condition give the fractions."""
    from envs.importer import import_model

    recipe = read_recipe(path)
    report = import_model(
        recipe["model"],
        conditions=recipe["conditions"] or None,
        starts=recipe["starts"] or None,
        markers=recipe["markers"] or None,
        default_condition=recipe.get("default_condition"),
        default_start=recipe.get("default_start"),
        stages=tuple(recipe.get("stages") or ()),
        scheme=recipe.get("scheme"),
        name=recipe.get("name") or Path(path).name[: -len(RECIPE_SUFFIX)],
        ginsim_states=recipe.get("ginsim_states"),
        ginsim_priority=recipe.get("ginsim_priority"),
        n_cells=n_cells,
        seed=seed,
    )
    description = str(recipe.get("description") or report.world.description).strip()
    report.world = replace(report.world, description=description, source=str(path))
    return report
