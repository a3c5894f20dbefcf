"""T-cell specification world: mouse thymic progenitors from ETP through DN2a and DN2b to DN3.

A 21-gene Boolean network whose rules we wrote from published perturbation studies
(each rule's comment says which facts it encodes). The cell starts as an early thymic
progenitor (ETP: Kit, PU.1 and the phase-1 factors on, Notch signalling on, Bcl11b and
T-lineage genes off) and, in an unperturbed run, commits and reaches DN3; the
alternative fates are B-like, myeloid/DC-like and NK-like.

Sources:
- Rothenberg EV (2007) Immunity 26:690; Rothenberg EV & Scripture-Adams DD (2008) Semin
  Immunol 20:236; Hosokawa H & Rothenberg EV (2021) Nat Rev Immunol 21:162; Shin B et al.
  (2024) J Exp Med 221:e20230893 (stages, phase-1 factors, PU.1 / GATA-3 / Notch balance,
  commitment at DN2a -> DN2b).
- Radtke F et al. (1999) Immunity 10:547 (no Notch1: thymic progenitors become B cells).
- Weber BN et al. (2011) Nature 476:63; Germar K et al. (2011) PNAS 108:20060 (TCF-1 is
  induced by Notch, needed from the ETP stage, and drives Gata3 and Bcl11b).
- Garcia-Ojeda ME et al. (2013) Blood 121:1749 (GATA-3 for DN1 -> DN2; represses B genes).
- Li L et al. (2010) Science 329:89; Li P et al. (2010) Science 329:85; Ikawa T et al.
  (2010) Science 329:93 (Bcl11b is the commitment gene; without it cells arrest at a
  DN2-like stage and turn NK-like; it represses Id2, Nfil3 and the progenitor program).
- Anderson MK et al. (2002) Immunity 16:285 (constitutive PU.1 blocks pro-T cells);
  De Obaldia ME et al. (2013) Nat Immunol 14:1277 (Hes1 restrains the myeloid regulator
  C/EBP-alpha); Laiosa CV et al. (2006) Immunity 25:731 (PU.1 + C/EBP-alpha turn pro-T
  cells into macrophages and dendritic cells, silencing T-cell genes).
- Ikawa T et al. (2006) J Exp Med 203:1329 (E proteins induce Notch1 and drive T genes);
  Miyazaki M et al. (2017) Immunity 46:818 (E proteins hold the innate lymphoid program off,
  Id proteins release it); Male V et al. (2014) J Exp Med 211:635 (Nfil3 -> Id2).

Modelling choices:
- `Delta` is the stromal Notch ligand, a constant input; Notch signalling is
  `Delta & Notch1` (ligand and receptor), so a Delta or a Notch1 knockout removes it.
  `Tcf3` stands for E-protein (E2A/HEB) activity, `Runx1` for Runx activity; Lyl1, Lmo2 and
  Kit stand for the phase-1 progenitor set (Hhex, Bcl11a, Meis1, Erg and Mef2c behave alike
  and are left out to keep the reachable state space small).
- Commitment is irreversible: once on, Bcl11b keeps itself, TCF-1 and GATA-3 on, so a
  committed cell that loses Notch stays T-lineage.
- `Myeloid` is the myeloid/DC-like fate (PU.1 on, T and B programs off). Without Notch,
  PU.1 -> C/EBP-alpha gives the macrophage-like branch and races E2A -> Ebf1 -> Pax5 (B);
  B usually wins, as Ebf1 only waits for Notch to go while Cebpa also waits for Hes1.
  A pinned PU.1 blocks Bcl11b: the uncommitted DN2 cell turns on Nfil3 and Id2, loses
  E-protein activity and with it TCF-1 and GATA-3, and settles PU.1+ Id2+ Nfil3+ (DC-like).
- In an unperturbed cell the NK program (CD25 signalling -> Nfil3 -> Id2 -| E proteins)
  races the commitment step (GATA-3 -| PU.1, then Bcl11b): a minority turns NK-like.
"""

from __future__ import annotations

from envs.network import BooleanNetwork
from envs.world import World, make_world

RULES: dict[str, str] = {
    # Stromal Delta-like ligand: constant; a knockout means no Notch signal.
    "Delta": "Delta",
    # Notch1 receptor: induced by E proteins and by its own signalling.
    "Notch1": "Tcf3 | Delta & Notch1",
    # Hes1: direct Notch target.
    "Hes1": "Delta & Notch1",
    # E2A/HEB activity, titrated away by Id2.
    "Tcf3": "!Id2",
    # Runx activity: present in progenitors, kept by Notch signalling.
    "Runx1": "Runx1 | Delta & Notch1",
    # TCF-1: Notch with E proteins; kept by Bcl11b after commitment; silenced by C/EBP-alpha.
    "Tcf7": "Tcf3 & !Cebpa & (Delta & Notch1 | Bcl11b)",
    # GATA-3: driven by TCF-1, supported by Notch, kept by Bcl11b after commitment.
    "Gata3": "Tcf7 & (Delta & Notch1 | Bcl11b)",
    # CD25: Notch target that needs GATA-3 (DN1 -> DN2).
    "Il2ra": "Delta & Notch1 & Gata3",
    # Bcl11b: Notch + TCF-1 + GATA-3 + Runx together, held off while PU.1 is on;
    # self-sustaining once on (commitment).
    "Bcl11b": "Tcf7 & Gata3 & Runx1 & (Bcl11b | Delta & Notch1 & !Spi1)",
    # PU.1: kept by the phase-1 network (Lyl1) or by C/EBP-alpha; repressed by GATA-3.
    "Spi1": "!Gata3 & (Spi1 & Lyl1 | Cebpa)",
    # C/EBP-alpha: PU.1 target, repressed by Hes1 and by the B program.
    "Cebpa": "Spi1 & !Hes1 & !Ebf1",
    # Phase-1 progenitor factors, shut off by Bcl11b; Lyl1 (bHLH) needs E-protein partners.
    "Lyl1": "Tcf3 & !Bcl11b",
    "Lmo2": "Lmo2 & !Bcl11b",
    "Kit": "Kit & !Bcl11b",
    # NK/ILC program: cytokine receptor signalling or loss of E proteins; Bcl11b represses it.
    "Nfil3": "!Bcl11b & (Il2ra | !Tcf3)",
    "Id2": "Nfil3 & !Bcl11b",
    # B program: E2A -> Ebf1 -> Pax5, blocked by Notch, GATA-3 and C/EBP-alpha.
    "Ebf1": "Tcf3 & !(Delta & Notch1) & !Gata3 & !Cebpa",
    "Pax5": "Ebf1",
    # DN3 T-lineage genes need Bcl11b; pT-alpha Notch and E proteins, Rag1 E proteins.
    "Ptcra": "Bcl11b & Delta & Notch1 & Tcf3",
    "Rag1": "Bcl11b & Tcf3",
    "Cd3e": "Bcl11b & Tcf7",
}

ETP_ON = ["Delta", "Notch1", "Hes1", "Tcf3", "Runx1", "Spi1", "Lyl1", "Lmo2", "Kit"]

# Defining markers: a state is a stage or fate only if all of these match (the stage
# definitions of Rothenberg and Hosokawa & Rothenberg 2021; GATA-3 low in ETP and up with TCF-1 in DN2a (CD25 follows, informative),
# Lyl1 without C/EBP-alpha or Id2 for the uncommitted progenitor, Bcl11b for commitment, Kit (CD117) high in DN2b and gone in DN3 as in
# the flow-cytometry definition (DN2: CD117+ CD25+, DN3: CD117- CD25+), CD3 on in DN3;
# pT-alpha and Rag1 informative (a committed cell that loses Notch loses pT-alpha); Ebf1+Pax5 for B, PU.1 without the T
# program for myeloid/DC, Id2+Nfil3 without PU.1 for NK-like).
MARKERS: dict[str, dict[str, int]] = {
    "ETP": {"Kit": 1, "Spi1": 1, "Lyl1": 1, "Il2ra": 0, "Gata3": 0, "Bcl11b": 0, "Cebpa": 0, "Id2": 0, "Ebf1": 0},
    "DN2a": {"Tcf7": 1, "Gata3": 1, "Bcl11b": 0},
    "DN2b": {"Il2ra": 1, "Bcl11b": 1, "Spi1": 0, "Kit": 1},
    "DN3": {"Bcl11b": 1, "Spi1": 0, "Kit": 0, "Cd3e": 1},
    "B_like": {"Ebf1": 1, "Pax5": 1, "Tcf7": 0, "Bcl11b": 0},
    "Myeloid": {"Spi1": 1, "Tcf7": 0, "Gata3": 0, "Bcl11b": 0, "Ebf1": 0},
    "NK_like": {"Id2": 1, "Nfil3": 1, "Spi1": 0, "Bcl11b": 0},
}

# The full expected profile of each stage and fate: informative (shaping, the GNN's fate
# head, reports), never decisive.
SIGNATURES: dict[str, dict[str, int]] = {
    "ETP": {
        "Kit": 1, "Spi1": 1, "Lyl1": 1, "Lmo2": 1, "Il2ra": 0,
        "Gata3": 0, "Bcl11b": 0, "Id2": 0, "Cebpa": 0, "Ebf1": 0,
    },
    "DN2a": {"Il2ra": 1, "Tcf7": 1, "Gata3": 1, "Bcl11b": 0, "Kit": 1, "Id2": 0},
    "DN2b": {"Il2ra": 1, "Tcf7": 1, "Gata3": 1, "Bcl11b": 1, "Spi1": 0, "Ptcra": 0, "Rag1": 0},
    "DN3": {
        "Il2ra": 1, "Tcf7": 1, "Gata3": 1, "Bcl11b": 1, "Spi1": 0, "Ptcra": 1,
        "Rag1": 1, "Cd3e": 1, "Kit": 0, "Lyl1": 0, "Lmo2": 0,
    },
    "B_like": {"Ebf1": 1, "Pax5": 1, "Cebpa": 0, "Tcf7": 0, "Gata3": 0, "Bcl11b": 0},
    "Myeloid": {"Spi1": 1, "Tcf7": 0, "Gata3": 0, "Bcl11b": 0, "Ebf1": 0, "Pax5": 0},
    "NK_like": {"Id2": 1, "Nfil3": 1, "Spi1": 0, "Cebpa": 0, "Bcl11b": 0, "Ebf1": 0, "Ptcra": 0},
}

STAGES = ("ETP", "DN2a", "DN2b", "DN3")


def tcell_world() -> World:
    """Build the T-cell world (cheap: no files, no heavy imports)."""
    network = BooleanNetwork.from_rules(RULES, where="tcell world")
    return make_world(
        "tcell",
        network,
        MARKERS,
        {"ETP": ETP_ON},
        signatures=SIGNATURES,
        default_start="ETP",
        stages=STAGES,
        description=__doc__ or "",
    )
