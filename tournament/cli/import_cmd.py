"""The `tournament import` command: a published model file becomes a world directory, its attractors named by marker sets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from envs.errors import UserInputError, choices_error

ITEM_HELP = "write GENE+ (on), GENE- (off) or GENE=LEVEL"


def parse_levels(text: str, option: str, what: str) -> tuple[str, dict[str, int]]:
    """`NAME=GENE+,GENE-,GENE=2` -> (NAME, {GENE: 1, GENE: 0, GENE: 2})."""
    name, sep, body = text.partition("=")
    name = name.strip()
    if not sep or not name or not body.strip():
        raise UserInputError(f"bad {option} {text!r}; write {what}=GENE+,GENE-,GENE=LEVEL")
    values: dict[str, int] = {}
    for item in (i.strip() for i in body.split(",")):
        if not item:
            continue
        if "=" in item:
            gene, _, level = item.partition("=")
            if not level.strip().isdigit():
                raise UserInputError(f"bad level {level.strip()!r} of {gene.strip()} in {option} {text!r}; {ITEM_HELP}")
            values[gene.strip()] = int(level)
        elif item.endswith(("+", "-")):
            values[item[:-1].strip()] = int(item.endswith("+"))
        else:
            raise UserInputError(f"bad item {item!r} in {option} {text!r}; {ITEM_HELP}")
    return name, values


def _from_file(name: str, ref: str, option: str, kind: str):
    """`@initialState.xml:STATE` (STATE defaults to NAME): one named GINsim state or input state."""
    from envs.importer import read_ginsim_states

    path, _, entry = ref[1:].partition(":")
    if not path:
        raise UserInputError(f"bad {option} {name}={ref!r}; write NAME=@initialState.xml:STATE")
    found = read_ginsim_states(path)
    table = found.states if kind == "states" else found.inputs
    key = entry.strip() or name
    if key not in table:
        raise choices_error(f"{'state' if kind == 'states' else 'input state'} in {path}", key, list(table) or ["(none)"])
    return table[key]


def _collect(texts, option: str, what: str, kind: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for text in texts:
        name, sep, rest = text.partition("=")
        if sep and rest.strip().startswith("@") and kind:
            out[name.strip()] = _from_file(name.strip(), rest.strip(), option, kind)
            continue
        name, values = parse_levels(text, option, what)
        out.setdefault(name, {}).update(values)
    return out


@click.command("import")
@click.argument("model")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="World directory to write.")
@click.option("--condition", multiple=True, help="NAME=GENE=V,GENE=V (input genes) or NAME=@initialState.xml:INPUT.")
@click.option("--start", multiple=True, help="NAME=GENE=V,GENE+,... (other genes 0) or NAME=@initialState.xml:STATE.")
@click.option("--marker", multiple=True, help="FATE=GENE+,GENE-,GENE=2: the fate's defining markers (all must hold).")
@click.option("--stage", multiple=True, help="A fate that is a developmental stage, in order; repeat.")
@click.option("--default-condition", default=None)
@click.option("--default-start", default=None)
@click.option("--priority", default=None, help="GINsim reg2dyn_parameters.xml, or GENE,GENE: the fast class.")
@click.option("--ginsim-states", default=None, type=click.Path(), help="GINsim initialState.xml: every named state a start, every input state a condition.")
@click.option("--ginsim-priority", default=None, type=click.Path(), help="GINsim reg2dyn_parameters.xml: priority classes.")
@click.option("--scheme", default=None, help="async | priority | sync (default: priority when classes are given, else async).")
@click.option("--name", default=None, help="World name (default: the model's).")
@click.option("--cells", type=int, default=200, show_default=True, help="Simulated cells per start and condition for the fractions (0: none).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing world directory.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def import_cmd(model, out_dir, condition, start, marker, stage, default_condition, default_start, priority,
               ginsim_states, ginsim_priority, scheme, name, cells, seed, force, as_json) -> None:
    """Import MODEL (.bnet, SBML-qual, BooleanNet, pyboolnet:NAME, cana:NAME) as a world; name its attractors by markers."""
    from envs.importer import import_model, write_world

    if cells < 0:
        raise UserInputError(f"--cells must be >= 0, got {cells}")
    priority_genes = None
    if priority is not None:
        if Path(priority).is_file():
            if ginsim_priority is not None:
                raise UserInputError("give the priority classes once: --priority FILE or --ginsim-priority FILE")
            ginsim_priority = priority
        else:
            genes = [g.strip() for g in priority.split(",") if g.strip()]
            if not genes:
                raise UserInputError(f"--priority {priority!r}: neither a file nor a list of genes")
            priority_genes = {g: 0 for g in genes}
    report = import_model(
        model,
        conditions=_collect(condition, "--condition", "NAME", "inputs"),
        starts=_collect(start, "--start", "NAME", "states"),
        markers=_collect(marker, "--marker", "FATE", ""),
        default_condition=default_condition,
        default_start=default_start,
        stages=tuple(stage),
        priority=priority_genes,
        scheme=scheme,
        name=name,
        ginsim_states=ginsim_states,
        ginsim_priority=ginsim_priority,
        n_cells=cells,
        seed=seed,
    )
    path = write_world(report.world, out_dir, force=force)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "out": str(path)}, indent=2))
        return
    click.echo(report.text())
    click.echo(f"\nworld written to {path} (use it as --world {path}, or world: {path} in a spec)")


COMMANDS = (import_cmd,)
