"""Infer a world (Boolean network, fates, start state) from single-cell data along pseudotime, IQCELL-style.

Steps (Heydari et al. 2022, PLoS Comput Biol 18: e1009907, adapted): check the data;
normalize and log1p raw counts (scanpy); pick genes (the user's, or highly variable ones
intersected with a transcription-factor list); take pseudotime from obs or compute
diffusion pseudotime from a root cell; optionally smooth over a kNN graph; binarize each
gene by 2-means and repair dropouts (EM over states); find each gene's transition points;
search one logic rule per gene against the next states along pseudotime (see
`envs.inference.rules`); read the fates from the mature cells of each cell type and the
start state from the earliest cells; swap in near-best rules where the network as a whole
would miss an end fate the data show (`envs.inference.consistency`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from envs.errors import UserInputError, choices_error
from envs.inference import preprocess as pp
from envs.inference.branches import branch_labels, lineage_columns, lineage_times, terminal_labels
from envs.inference.binarize import binarize, regulation_allowed, transition_points, undo_dropouts
from envs.inference.consistency import consistency, select_consistent_rules
from envs.inference.edges import bootstrap_counts, edge_table
from envs.inference.rules import RuleFit, infer_rules, next_state_targets
from envs.network import BooleanNetwork
from envs.world import World, make_world

# The rule parser's gene-name token (envs.boolean_rules); other names cannot appear in rules.
_GENE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*$")
_RESERVED = {"and", "or", "not", "True", "False", "true", "false"}
AMBIGUOUS_BAND = (0.3, 0.7)
EARLY_SHARE = 0.02
# How many more candidate regulators per gene the search may add to reach a missing end fate.
WIDEN_CANDIDATES = 2
# The obs column read as cell types when the caller names none (and it exists).
DEFAULT_CELL_TYPE = "cell_type"
# Bootstrap resamples of the cells behind each edge's confidence (envs.inference.edges).
EDGE_BOOTSTRAPS = 20


def usable_gene_name(name: str) -> bool:
    return bool(_GENE_NAME.match(name)) and name not in _RESERVED


@dataclass
class InferenceResult:
    """An inferred world with the evidence behind it: rules, agreements, switch times, data."""

    world: World
    rules: dict[str, RuleFit]
    switch_times: dict[str, float]
    adata: object = field(repr=False)  # selected genes; layers 'smoothed', 'binary', 'next'
    settings: dict = field(default_factory=dict)
    # Every ordered gene pair with sign, confidence and in_rules, best first (envs.inference.edges).
    ranked_edges: object = field(default=None, repr=False)

    @property
    def rule_scores(self) -> dict[str, float]:
        """Gene -> agreement of its rule with the gene's next state (fraction of cells)."""
        return {g: fit.agreement for g, fit in self.rules.items()}

    @property
    def edges(self) -> list[tuple[str, str, int]]:
        return [e for fit in self.rules.values() for e in fit.edges]

    def report(self) -> str:
        w = self.world
        s = self.settings
        lines = [
            f"Inferred world {w.name!r}: {w.n_genes} genes, {len(w.fates)} fates, from {s.get('n_cells')} cells "
            f"(pseudotime {s.get('pseudotime')!r}, cell type {s.get('cell_type')!r})",
            "Rules (agreement = share of cells whose next state the rule reproduces):",
        ]
        width = max(len(g) for g in w.genes)
        for gene, rule in zip(w.genes, w.network.rules):
            score = self.rules[gene].agreement
            lines.append(f"  {gene:<{width}} = {rule:<44} {score:.3f}")
        lines.append("Fates (binarized mature cells; genes not listed are unspecified):")
        for i, fate in enumerate(w.fates):
            sig = " ".join(f"{g}{'+' if v else '-'}" for g, v in zip(w.genes, w.signatures[i]) if v >= 0)
            lines.append(f"  {fate}: {sig}")
        for name, state in w.start_states.items():
            on = [g for g, v in zip(w.genes, state) if v]
            lines.append(f"Start state {name!r}: {', '.join(on) or '(all off)'} on")
        if "fates_reached" in s:
            missing = s.get("fates_missing") or []
            lines.append(
                f"End fates reached from the start (unperturbed): {', '.join(s['fates_reached']) or '(none)'}"
                + (f"; NOT reached: {', '.join(missing)}" if missing else "")
                + f"; unmatched attractors p = {s.get('p_unmatched', 0.0):.2f}"
            )
        for swap in s.get("rule_swaps", []):
            lines.append(f"  rule swapped to reach the observed fates: {swap}")
        return "\n".join(lines)


def _pseudotime(adata, column: str | None, root, seed: int) -> tuple[np.ndarray, str]:
    if column is not None and column in adata.obs.columns:
        return pp.check_pseudotime(adata.obs[column].to_numpy(), column), column
    if root is None and "iroot" not in adata.uns:
        shown = pp.shown(adata.obs.columns) or "(none)"
        raise UserInputError(
            f"pseudotime column {column!r} not in obs; available columns: {shown} "
            "(or pass root=<cell> / set uns['iroot'] to compute diffusion pseudotime)"
        )
    computed = pp.diffusion_pseudotime(adata, root, seed=seed)
    return pp.check_pseudotime(computed.obs["dpt_pseudotime"].to_numpy(), "dpt_pseudotime"), "dpt_pseudotime"


def _fate_types(
    labels: np.ndarray,
    binary: np.ndarray,
    pseudotime: np.ndarray,
    early: np.ndarray,
    start: np.ndarray,
    fates,
    mature_share: float,
) -> tuple[list[str], str | None, dict[str, np.ndarray]]:
    """Fate cell types, the start (progenitor) type if any, and each type's mature signature.

    `early` are the rows of the earliest cells; their most common type is the start type."""
    kinds = sorted(set(map(str, labels)))
    signatures = {k: _signature(binary[labels == k], pseudotime[labels == k], mature_share) for k in kinds}
    values, counts = np.unique(labels[early], return_counts=True)
    start_type = str(values[np.argmax(counts)])
    if fates is not None:
        fates = [str(f) for f in fates]
        for f in fates:
            if f not in kinds:
                raise choices_error("fate cell type", f, kinds)
        return fates, (start_type if start_type not in fates else None), signatures
    chosen = [k for k in kinds if k.strip().lower() not in pp.NON_FATE_LABELS and (signatures[k] >= 0).any()]
    if start_type in chosen:
        # The earliest cells' type is a progenitor type, not a fate, when its most mature
        # cells still match the start state or fall within another type's signature.
        sig = signatures[start_type]
        care = sig >= 0
        others = [signatures[k] for k in chosen if k != start_type]
        within = [((o[care] == sig[care]) | (o[care] < 0)).all() for o in others]
        if (sig[care] == start[care]).all() or any(within):
            chosen.remove(start_type)
    if not chosen:
        raise UserInputError(
            f"no fate cell types: every type in {kinds} is a non-fate label or looks like the start state; "
            "pass fates=[...] to name them"
        )
    progenitor = start_type if start_type not in chosen and start_type.lower() not in pp.NON_FATE_LABELS else None
    return chosen, progenitor, signatures


def _mature_state(binary: np.ndarray, pseudotime: np.ndarray, share: float = 0.1) -> np.ndarray:
    """The most common binarized state among a type's latest cells: taken as a steady state."""
    n = max(3, int(np.ceil(share * len(binary))))
    latest = binary[np.argsort(pseudotime, kind="stable")[-n:]]
    states, counts = np.unique(latest, axis=0, return_counts=True)
    return states[int(np.argmax(counts))]


def _is_steady(graph, state: np.ndarray) -> bool:
    """The state is observed and next_state_targets took it as steady."""
    row = graph.index_of(state)
    return row is not None and bool(graph.steady[row])


def _markers(genes, signatures: dict[str, np.ndarray], fate_types) -> tuple[dict, dict]:
    """Defining markers and informative genes of each fate type.

    A gene defines a fate when the type's mature cells agree on a value that no other
    fate type's cells share: the lineage-specific markers a biologist would use (on the
    krumsiek11 data: EKLF for Ery, Fli1 for Mk, cJun and EgrNab for Mo, Pu.1 and Gfi1
    for Neu). Failing that, the genes on which some other type agrees on the opposite
    value; failing that, the whole signature. The rest of the signature is informative
    (shown, used for shaping), never decisive.
    """
    markers: dict[str, dict[str, int]] = {}
    informative: dict[str, dict[str, int]] = {}
    for f in fate_types:
        sig = signatures[f]
        others = [signatures[o] for o in fate_types if o != f]
        full = {g: int(v) for g, v in zip(genes, sig) if v >= 0}
        unique = {
            g: int(v) for j, (g, v) in enumerate(zip(genes, sig)) if v >= 0 and all(o[j] != v for o in others)
        }
        opposed = {
            g: int(v) for j, (g, v) in enumerate(zip(genes, sig))
            if v >= 0 and any(o[j] >= 0 and o[j] != v for o in others)
        }
        markers[f] = unique or opposed or full
        informative[f] = {g: v for g, v in full.items() if g not in markers[f]}
    return markers, informative


def _signature(binary: np.ndarray, pseudotime: np.ndarray, mature_share: float) -> np.ndarray:
    """1/0 where the type's latest cells agree on a gene, -1 where they are split."""
    n = max(3, int(np.ceil(mature_share * len(binary))))
    mature = binary[np.argsort(pseudotime, kind="stable")[-n:]].mean(axis=0)
    return np.where(mature >= AMBIGUOUS_BAND[1], 1, np.where(mature <= AMBIGUOUS_BAND[0], 0, -1)).astype(np.int8)


def infer_world(
    adata,
    pseudotime: "str | Sequence[str] | None" = "pseudotime",
    cell_type: str | None = None,
    genes: Sequence[str] | None = None,
    n_genes: int = 20,
    tf_list: Sequence[str] | None = None,
    max_activators: int = 3,
    max_repressors: int = 2,
    smooth: int = 0,
    seed: int = 0,
    name: str = "inferred",
    *,
    root: "str | int | None" = None,
    normalize: bool | None = None,
    binarize_method: str = "kmeans",
    threshold: "float | dict[str, float] | None" = None,
    dropout: float = 0.1,
    fates: Sequence[str] | None = None,
    max_candidates: int = 8,
    tolerance: float = 0.02,
    min_state_cells: int = 2,
    min_ratio: float = 0.05,
    tie_window: float = 0.1,
    max_jump: int = 2,
    switch_slack: float = 0.05,
    allow_self: bool = False,
    mature_share: float = 0.25,
    fate_consistency: bool = True,
    n_alternatives: int = 8,
    alternative_margin: float = 0.05,
    n_bootstrap: int = EDGE_BOOTSTRAPS,
) -> InferenceResult:
    """Infer a world from AnnData with a pseudotime and cell types (see the module docstring).

    Data: `pseudotime` names an obs column, or a list of per-lineage columns (NaN off the
    lineage, as BEELINE and Slingshot write them); a name that is absent falls back to the
    lineage columns a reader found (`envs.inference.branches.lineage_columns`), and
    without any, diffusion pseudotime is computed from `root` (a cell name or row) or
    `uns['iroot']`. `cell_type` names the obs column of cell types (default: 'cell_type'
    when present); without one, the cell types come from the lineages: branch-only cells
    are their branch, the rest shared, and each branch's terminal state is a fate
    (`envs.inference.branches`). `fates` picks the fate types
    (default: all but 'other'-like labels and a progenitor type, i.e. the earliest
    cells' type when its most mature cells still look like the start or like another
    type). `genes` fixes the genes; otherwise up to `n_genes` highly variable genes
    (within `tf_list` if given). `normalize` None applies normalize_total + log1p only
    to raw counts.

    Dropout remedies: `smooth` > 1 averages each cell over its kNN in expression space
    before binarizing (off by default: with few genes, dropped cells are each other's
    neighbours and smoothing mostly blurs real switches); `dropout` is the per-gene
    rate assumed by the EM state repair after binarizing (0: off).

    Rules: at most `max_activators` / `max_repressors` per gene, searched over the
    `max_candidates` regulators with the most mutual information; `tolerance` is the
    agreement margin within which the rule with fewer regulators wins; regulators must
    switch no later than their target (within `switch_slack` of the pseudotime range).
    `min_state_cells`, `min_ratio`, `tie_window` and `max_jump` shape the next-state
    targets (`envs.inference.rules.next_state_targets`). `seed` fixes the PCA behind
    diffusion pseudotime on large gene sets; everything else is deterministic.

    Network level: with `fate_consistency`, when the best rules together miss an
    observed end fate from the start state (or end in attractors no type matches), rules are
    swapped for runners-up (up to `n_alternatives` per gene, within `alternative_margin`
    agreement of the best) until they reach it (`envs.inference.consistency`); while an
    end fate stays out of reach the search is run once more with `WIDEN_CANDIDATES` more
    candidate regulators per gene. End fates are the types whose latest cells
    form a steady state; a stage that later cells leave need not be an attractor. The
    swaps and the final reach are listed in `settings`.

    Ranked edges (`ranked_edges`): every ordered gene pair with a sign and a confidence,
    the share of `n_bootstrap` resamples of the cells whose rule for the target holds the
    regulator (`envs.inference.edges`; 0: the chosen edges score 1).
    """
    import anndata as ad

    if not isinstance(adata, ad.AnnData):
        raise UserInputError(f"expected an AnnData, got {type(adata).__name__}")
    if cell_type is not None:
        pp.check_obs_column(adata, cell_type, "cell type")
    elif DEFAULT_CELL_TYPE in adata.obs.columns:
        cell_type = DEFAULT_CELL_TYPE
    columns = lineage_columns(adata, pseudotime)
    branch = None
    if columns:
        lineage_time, branch = branch_labels(lineage_times(adata, columns))
        on_lineage = np.isfinite(lineage_time)
        if not on_lineage.all():  # cells on no lineage carry no time: left out
            adata, lineage_time, branch = adata[on_lineage].copy(), lineage_time[on_lineage], branch[on_lineage]
        lineage_time = pp.check_pseudotime(lineage_time, ",".join(columns))
    pp.check_cells(adata)
    if cell_type is not None:
        pp.check_cell_types(adata, cell_type)
    pp.check_finite(adata)
    if genes is not None:
        genes = pp.check_genes(adata, genes)
        bad = [g for g in genes if not usable_gene_name(g)]
        if bad:
            raise UserInputError(
                f"gene name {bad[0]!r} cannot appear in a rule; valid names start with a letter or '_' "
                "and hold letters, digits, '_', '.', '-'"
            )
    data = pp.normalize(adata, normalize)
    if genes is None:
        usable = [g for g in map(str, data.var_names) if usable_gene_name(g)]
        genes = pp.select_genes(data[:, usable], n_genes, tf_list)
    if columns:
        time_values, time_column = lineage_time, ",".join(columns)
    else:
        time_values, time_column = _pseudotime(data, pseudotime, root, seed)
    data = data[:, genes].copy()
    data.obs["inference_pseudotime"] = time_values
    data = pp.smooth_knn(data, smooth)
    data = binarize(data, binarize_method, threshold, layer="smoothed", dropout=dropout)
    binary = undo_dropouts(data.layers["binary"], dropout)
    data.layers["binary"] = binary
    if cell_type is not None:
        labels = data.obs[cell_type].astype(str).to_numpy()
    else:
        labels = branch if branch is not None else terminal_labels(time_values)
    type_source = cell_type or ("pseudotime branches" if branch is not None else "latest cells")

    early = np.argsort(time_values, kind="stable")[: max(5, int(EARLY_SHARE * data.n_obs))]
    start = (binary[early].mean(axis=0) >= 0.5).astype(np.uint8)
    fate_types, progenitor, signatures = _fate_types(labels, binary, time_values, early, start, fates, mature_share)

    shared = ~np.isin(labels, fate_types)
    lineages = [(labels == f) | shared for f in fate_types]
    span = float(np.ptp(time_values))
    first, last = transition_points(binary, time_values, lineages)
    end_states = np.array([_mature_state(binary[labels == f], time_values[labels == f]) for f in fate_types])
    targets, weights, graph = next_state_targets(
        binary, time_values, start, end_states, min_state_cells, min_ratio, tie_window, max_jump
    )
    data.layers["next"] = targets
    data.layers["next_weight"] = weights
    allowed = regulation_allowed(first, last, switch_slack * span)

    def search(n_candidates: int) -> dict[str, RuleFit]:
        return infer_rules(
            binary,
            targets,
            genes,
            allowed,
            max_activators=max_activators,
            max_repressors=max_repressors,
            max_candidates=n_candidates,
            tolerance=tolerance,
            allow_self=allow_self,
            weights=weights,
            n_alternatives=n_alternatives if fate_consistency else 0,
            alternative_margin=alternative_margin,
        )

    fate_dict, informative = _markers(genes, signatures, fate_types)
    start_name = progenitor or "start"
    description = (
        f"Inferred from single-cell data (IQCELL-style): {data.n_obs} cells, {len(genes)} genes, "
        f"pseudotime {time_column!r}, cell types {type_source!r}."
    )

    def build(chosen: dict[str, RuleFit]) -> World:
        network = BooleanNetwork.from_rules({g: chosen[g].text for g in genes}, where=f"inferred world {name}")
        return make_world(
            name,
            network,
            fate_dict,
            {start_name: [g for g, v in zip(genes, start) if v]},
            signatures=informative,
            default_start=start_name,
            description=description,
            source="inferred",
        )

    # End fates: types whose mature state is steady; a stage that later cells leave is not one.
    end_fates = [f for f, e in zip(fate_types, end_states) if _is_steady(graph, e)]
    n_candidates = max_candidates
    if fate_consistency:
        solved: dict = {}
        chosen = select_consistent_rules(search(n_candidates), build, end_fates, seed=seed, solved=solved)
        # A fate still out of reach may need a regulator the mutual-information cut left out.
        widest = min(len(genes) - 1, max_candidates + WIDEN_CANDIDATES)
        if chosen.reach.missing and n_candidates < widest:
            n_candidates = widest
            wider = select_consistent_rules(search(n_candidates), build, end_fates, seed=seed, solved=solved)
            if wider.reach.key() > chosen.reach.key():
                chosen = wider
        rules, swaps, reach, world = chosen.rules, chosen.swaps, chosen.reach, chosen.world
    else:
        rules, swaps = search(n_candidates), []
        world = build(rules)
        reach = consistency(world, end_fates, seed=seed)
    def fit_rows(rows: np.ndarray) -> dict[str, RuleFit]:
        t, w, _ = next_state_targets(
            binary[rows], time_values[rows], start, end_states, min_state_cells, min_ratio, tie_window, max_jump
        )
        return infer_rules(
            binary[rows], t, genes, allowed, max_activators=max_activators, max_repressors=max_repressors,
            max_candidates=max_candidates, tolerance=tolerance, allow_self=allow_self, weights=w,
        )

    counts = bootstrap_counts(fit_rows, data.n_obs, n_bootstrap, seed) if n_bootstrap > 0 else {}
    ranked = edge_table(list(genes), rules, binary, targets, weights, counts, n_bootstrap)
    settings = {
        "n_cells": int(data.n_obs),
        "pseudotime": time_column,
        "cell_type": type_source,
        "smooth": smooth,
        "normalized": bool(data.uns.get("inference_normalized", False)),
        "binarize": binarize_method,
        "max_activators": max_activators,
        "max_repressors": max_repressors,
        "max_candidates": max_candidates,
        "candidates_searched": n_candidates,
        "tolerance": tolerance,
        "dropout": dropout,
        "n_states": int(len(graph.states)),
        "seed": seed,
        "n_bootstrap": n_bootstrap,
        "fate_consistency": fate_consistency,
        "rule_swaps": [swap.describe() for swap in swaps],
        "end_fates": end_fates,
        "fates_reached": list(reach.reached),
        "fates_missing": list(reach.missing),
        "p_unmatched": reach.p_unmatched,
    }
    return InferenceResult(
        world=world,
        rules=rules,
        switch_times={g: float(t) for g, t in zip(genes, first.min(axis=0))},
        adata=data,
        settings=settings,
        ranked_edges=ranked,
    )
