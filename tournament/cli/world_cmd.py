"""CLI commands about worlds: list them, ask the oracle, simulate perturbations, infer from data."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import yaml

from envs.errors import UserInputError
from envs.network import PERTURBATION_KINDS, normalize_any_kind, normalize_kinds
from envs.world import builtin_world_names, find_worlds, load_world


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def parse_kinds(text: str) -> tuple[str, ...]:
    return normalize_kinds(k.strip() for k in text.split(",") if k.strip())


def parse_perturbation(text: str) -> tuple[str, str]:
    """GENE=ko | GENE=oe | GENE=L (a level of a multi-valued gene) | SRC->DST=cut (edge knockout)."""
    if "=" not in text:
        raise UserInputError(f"bad perturbation {text!r}; write GENE=ko, GENE=oe, GENE=2 (a level) or SRC->DST=cut")
    gene, kind = text.rsplit("=", 1)
    return gene.strip(), normalize_any_kind(kind.strip())


@click.command("worlds")
@click.argument("search_dir", required=False, type=click.Path())
@click.option("--dir", "directory", type=click.Path(), default=None, help="Also list worlds saved below this directory.")
@click.option("--attractors", is_flag=True, help="Also list the attractors reachable from each world's default start.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def worlds_cmd(search_dir: str | None, directory: str | None, attractors: bool, as_json: bool) -> None:
    """Every world with its genes, inputs, conditions, fates and start states (also those saved below DIR).

    A broken world below DIR is reported in one line `error: PATH: message` on stderr after the
    good ones are listed, and the exit status is 2; so is a world that takes a built-in world's name.
    """
    directory = directory or search_dir
    builtins = list(builtin_world_names())
    names: list[str] = list(builtins)
    if directory:
        if not Path(directory).is_dir():
            raise UserInputError(f"--dir {directory!r} is not a directory")
        names += [str(p) for p in find_worlds(directory)]
    summaries, errors = [], []
    for n in names:
        try:
            world = load_world(n)
            s = world.summary()
            if n not in builtins and s["name"] in builtins:
                raise UserInputError(f"world name {s['name']!r} is a built-in world's; rename it ('name' in world.json)")
            if attractors:
                s["attractors"] = _attractor_summary(world)
        except Exception as exc:  # one broken world must not hide the others
            if n in builtins:
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not isinstance(exc, UserInputError):
                text = f"{type(exc).__name__}: {text}"
            errors.append(text if text.startswith(n) else f"{n}: {text}")
            continue
        summaries.append(s)
    if as_json:
        _echo_json(summaries)
    else:
        for s in summaries:
            _echo_world(s)
    if errors:
        for text in errors[:-1]:
            click.echo(f"error: {text}", err=True)
        raise UserInputError(errors[-1])  # the last one: printed as `error: ...`, exit status 2


def _levels(values: "list[str] | dict[str, int]") -> str:
    if isinstance(values, dict):
        return ", ".join(g if v == 1 else f"{g}={v}" for g, v in values.items())
    return ", ".join(values)


def _echo_world(s: dict) -> None:
    click.echo(f"{s['name']}  ({s['source']}, {len(s['genes'])} genes, {s['scheme']} updates)")
    if s["description"]:
        click.echo(f"  {s['description']}")
    click.echo(f"  genes:  {', '.join(s['genes'])}")
    if s["levels"]:
        click.echo("  levels: " + ", ".join(f"{g} 0..{m}" for g, m in s["levels"].items()))
    click.echo(f"  inputs: {', '.join(s['inputs']) or '-'}")
    for name, values in s["conditions"].items():
        mark = " (default)" if name == s["default_condition"] else ""
        click.echo(f"  condition {name}{mark}: " + ", ".join(f"{g}={v}" for g, v in values.items()))
    click.echo(f"  fates:  {', '.join(s['fates'])}")
    for fate, markers in s["fates"].items():
        click.echo(f"    {fate}: " + (", ".join(f"{g}={v}" for g, v in markers.items()) or "(no markers)"))
    if s["stages"]:
        click.echo(f"  stages: {' -> '.join(s['stages'])}")
    for name, on in s["start_states"].items():
        mark = " (default)" if name == s["default_start"] else ""
        click.echo(f"  start {name}{mark}: {_levels(on) or 'all off'}")
    if "attractors" in s:
        a = s["attractors"]
        listed = ", ".join(f"{x['fate']} ({x['kind']})" for x in a["attractors"])
        how = " (general asynchronous; priorities may reach fewer)" if s["scheme"] == "priority" else ""
        click.echo(f"  attractors from {a['start']} | {a['condition'] or '-'}{how}: {listed}")
    click.echo("")


def _attractor_summary(world) -> dict:
    """The attractors reachable from the default start under the default condition, named by fate."""
    from envs.attractors import reachable_attractors

    found = reachable_attractors(world.network, world.start_state(), scheme=world.scheme)
    out = []
    for a in found:
        labels = sorted({world.fate_labels[i] for i in world.classify(a.states)})
        kind = "fixed point" if a.is_fixed_point else f"cyclic, {a.size} states"
        out.append({"fate": "/".join(labels), "kind": kind, "size": a.size})
    return {"start": world.default_start, "condition": world.default_condition or None, "attractors": out}


@click.command("oracle")
@click.option("--world", required=True, help="Built-in world name or a world directory.")
@click.option("--task", type=click.Choice(["steer", "predict"]), default="steer", show_default=True)
@click.option("--target", default=None, help="Target fate (steer).")
@click.option("--max-perturb", type=int, required=True, help="At most this many perturbations.")
@click.option("--kinds", default=",".join(PERTURBATION_KINDS), show_default=True)
@click.option("--start", default=None, help="Start state name (default: the world's).")
@click.option("--condition", default=None, help="Input condition (default: the world's).")
@click.option("--top", type=int, default=5, show_default=True)
@click.option("--cells", type=int, default=1000, show_default=True,
              help="Monte-Carlo cells per set where exact is out of reach (the leaders are re-estimated on 4x as many).")
@click.option("--time-budget", "time_budget", type=float, default=None, help="Stop the search after this many seconds (a lower bound).")
@click.option("--background", multiple=True, help="A mutation fixed for the whole task (rescue), e.g. Notch1=ko; repeat.")
@click.option("--dynamic", is_flag=True,
              help="Also the exact optimum over timed policies (dynamic programming; worlds up to 12 variables).")
@click.option("--pulse-stages", type=int, default=None, help="With --dynamic: each perturbation lasts this many stages.")
@click.option("--n-stages", type=int, default=None, help="With --dynamic: the task's stages (default: the world's, else 4).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def oracle_cmd(world, task, target, max_perturb, kinds, start, condition, top, cells, time_budget, background, dynamic,
               pulse_stages, n_stages, seed, as_json) -> None:
    """The best perturbation sets and their exact success probability (or Bayes-optimal accuracy);
    with --dynamic also the best timed policy's."""
    from envs.oracle import bayes_optimal_accuracy, best_perturbations

    w = load_world(world)
    w = w.with_background(list(background)) if background else w
    if (pulse_stages is not None or n_stages is not None) and not dynamic:
        raise UserInputError("--pulse-stages and --n-stages describe a timed task: add --dynamic")
    kinds_t = parse_kinds(kinds)
    w.check_max_perturb(max_perturb, minimum=0, what="--max-perturb")
    if task == "predict":
        result = bayes_optimal_accuracy(w, max_perturb, kinds_t, start=start, condition=condition, n_cells=cells,
                                        seed=seed, time_budget_s=time_budget)
        if as_json:
            _echo_json({"task": "predict", "max_perturb": max_perturb, **result})
        else:
            exact = "exact" if result["exact"] else f"estimate ± {result['stderr']:.3f}"
            click.echo(f"Bayes-optimal time-0 accuracy, {w.name}, MAX_PERTURB {max_perturb}: "
                       f"{result['optimum']:.4f} ({exact}; {result['method']})")
        return
    if target is None:
        raise UserInputError(f"--target is required for steer; valid choices: {', '.join(w.fates)}")
    result = best_perturbations(w, target, max_perturb, kinds_t, start=start, top=top, condition=condition,
                                n_cells=cells, seed=seed, time_budget_s=time_budget)
    dyn = None
    if dynamic:
        from envs.dynamic_oracle import dynamic_optimum

        dyn = dynamic_optimum(w, target, max_perturb, n_stages=n_stages, pulse_stages=pulse_stages, kinds=kinds_t,
                              start=start, condition=condition)
    if as_json:
        _echo_json({**result.to_json(), **({"dynamic": dyn.to_json()} if dyn else {})})
        return
    if dyn is not None:
        first = ", ".join(f"{g} {k}" for g, k in dyn.first_action) or "none yet"
        click.echo(f"{w.name}: best timed policy {dyn.value:.4f} (exact; best time-0 set under the same timing "
                   f"{dyn.static_value:.4f}); its stage-0 action: {first}; {dyn.method}")
    click.echo(f"{w.name}: steer to {target}, at most {max_perturb} perturbation(s) of {', '.join(kinds_t)}")
    click.echo("baseline (no perturbation): " + _fmt_fates(result.baseline))
    err = f" ± {result.stderr:.3f}" if result.stderr else ""
    click.echo(f"optimum: {result.optimum:.4f}{err}  ({'exact' if result.exact else 'best found, a lower bound'}; {result.method})")
    for i, entry in enumerate(result.best[:top], start=1):
        sets = ", ".join(f"{g} {k}" for g, k in entry["perturbations"]) or "none"
        se = f" ± {entry['stderr']:.3f}" if entry.get("stderr") else ""
        click.echo(f"  {i}. p={entry['probability']:.4f}{se}  {sets}")


def _fmt_fates(fates: dict[str, float]) -> str:
    return "  ".join(f"{f} {p:.3f}" for f, p in fates.items())


def parse_scheduled(text: str) -> tuple[str, str, int | None]:
    """GENE=KIND, or GENE=KIND@STAGE for a perturbation applied at a chosen stage."""
    body, at, stage = text.partition("@")
    gene, kind = parse_perturbation(body)
    if not at:
        return gene, kind, None
    try:
        return gene, kind, int(stage)
    except ValueError:
        raise UserInputError(f"bad stage in {text!r}: {stage!r} is not a whole number (write GENE=ko@2)") from None


@click.command("simulate")
@click.option("--world", required=True)
@click.option("--perturb", "perturb", multiple=True,
              help="GENE=ko, GENE=oe, GENE=2 (a level) or SRC->DST=cut; GENE=ko@2 applies it at stage 2; repeat for several.")
@click.option("--background", multiple=True, help="A mutation fixed for the whole run (a rescue task's), e.g. Notch1=ko; repeat.")
@click.option("--pulse-stages", type=int, default=None, help="Each perturbation acts for this many stages, then its gene is released.")
@click.option("--n-stages", type=int, default=None, help="Stages of a scheduled run (default: the world's, else 4).")
@click.option("--start", default=None, help="A start state, or attractor:FATE (a cell on an attractor of that fate).")
@click.option("--condition", default=None, help="Input condition (default: the world's).")
@click.option("--cells", type=int, default=4000, show_default=True, help="Monte-Carlo cells where exact is out of reach.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dynamics", type=click.Choice(["boolean", "ode"]), default="boolean", show_default=True,
              help="ode: the world's rules as stochastic ODEs; --perturb then also takes GENE=kd:F / GENE=act:F.")
@click.option("--ode", "ode_settings", multiple=True,
              help="An ODE parameter, KEY=VALUE (hill, mrna_decay, dt, noise, noise_scale, proteins, ...); repeat.")
@click.option("--time", "duration", type=float, default=None,
              help="ODE time units simulated (default: the ODE env's stages x stage_time + settle_time).")
@click.option("--json", "as_json", is_flag=True)
def simulate_cmd(world, perturb, background, pulse_stages, n_stages, start, condition, cells, seed, dynamics,
                 ode_settings, duration, as_json) -> None:
    """Fate distribution of a progenitor under perturbations: exact where the network is small and every
    perturbation acts from time 0; through the environment, by Monte-Carlo, for stages and pulses; with
    --dynamics ode, by integrating the world's stochastic ODEs for a batch of cells (graded perturbations)."""
    from envs.oracle import fate_distribution
    from envs.schedule import simulate_schedule

    w = load_world(world)
    if dynamics == "ode":
        _simulate_ode(w, perturb, background, n_stages, start, condition, cells, seed, ode_settings, duration, as_json)
        return
    if ode_settings or duration is not None:
        raise UserInputError("--ode and --time need --dynamics ode")
    scheduled = [parse_scheduled(p) for p in perturb]
    timed = pulse_stages is not None or any(st is not None for *_, st in scheduled)
    if timed:
        env = {"world": w, "start": start, "condition": condition, "pulse_stages": pulse_stages,
               "n_stages": n_stages, "background": list(background) or None}
        result = simulate_schedule({k: v for k, v in env.items() if v is not None},
                                   [(g, k, st or 0) for g, k, st in scheduled], n_cells=cells, seed=seed)
        dist, perturbations = result.distribution, [f"{g}={k}@{st}" for g, k, st in result.schedule]
        w = w.with_background(list(background)) if background else w
    else:
        w = w.with_background(list(background)) if background else w
        perturbations = [(g, k) for g, k, _ in scheduled]
        dist = fate_distribution(w, perturbations, start=start, n_cells=cells, seed=seed, condition=condition)
    if as_json:
        _echo_json({"world": w.name, "perturbations": perturbations, **dist.to_json()})
        return
    label = ", ".join(p if isinstance(p, str) else f"{p[0]} {p[1]}" for p in perturbations) or "none"
    cond = w.check_condition(condition)
    click.echo(f"{w.name}, start {start or w.default_start}{f', condition {cond}' if cond else ''}, perturbations: {label}")
    click.echo(f"method: {dist.method}")
    for fate, p in dist.probabilities.items():
        se = dist.stderr.get(fate, 0.0)
        bar = "#" * int(round(p * 40))
        err = f" ± {se:.3f}" if se else ""
        click.echo(f"  {fate:<10} {p:6.3f}{err}  {bar}")


def _ode_setting(text: str) -> tuple[str, object]:
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise UserInputError(f"bad --ode setting {text!r}; write KEY=VALUE, e.g. hill=4")
    parsed = yaml.safe_load(value) if value.strip() else None
    return key.strip(), parsed


def _simulate_ode(w, perturb, background, n_stages, start, condition, cells, seed, ode_settings, duration,
                  as_json) -> None:
    from envs.ode.env import DEFAULTS as ODE_ENV_DEFAULTS
    from envs.ode.integrate import check_step
    from envs.ode.perturb import weights_from
    from envs.ode.world import ode_fate_distribution, ode_world

    w = w.with_background(list(background)) if background else w
    ode = ode_world(w, dict(_ode_setting(s) for s in ode_settings))
    check_step(ode.model)  # an unstable step is refused before any cell is integrated
    if duration is None:
        stages = n_stages or len(w.stages) or 4
        duration = stages * ODE_ENV_DEFAULTS["stage_time"] + ODE_ENV_DEFAULTS["settle_time"]
    weights = weights_from(w, list(perturb))
    dist = ode_fate_distribution(ode, weights, start, condition, duration, cells, seed)
    applied = {w.genes[g]: float(weights[g]) for g in np.flatnonzero(weights)}
    if as_json:
        _echo_json({"world": w.name, "dynamics": "ode", "perturbations": applied, "time": duration,
                    "cells": cells, "seed": seed, "probabilities": dist})
        return
    label = ", ".join(f"{g} {v:+.2f}" for g, v in applied.items()) or "none"
    click.echo(f"{w.name} (ODE, {duration:g} time units, {cells} cells), start {start or w.default_start}, "
               f"perturbations (gene weight): {label}")
    for fate, p in dist.items():
        click.echo(f"  {fate:<10} {p:6.3f}  {'#' * int(round(p * 40))}")


COMMANDS = (worlds_cmd, oracle_cmd, simulate_cmd)
