"""`tournament import` and the symbolic attractors behind it: exact against explicit search, the Cacace model end to end, bad input.

Cacace markers (decided from the authors' GINsim files, /work/shared/data/cacace2020-tcell/ginsim):
- DN3: the `DN3` state of initialState.xml has Bcl11b, pTa, Rag1, CD3e and TCRb on and Kit, Flt3
  off; those seven are the T-commitment program (Bcl11b) and its readouts. Pu1 is *not* a DN3
  marker here: the authors' DN3 state itself has Pu1 at level 1 (its level 2 is the myeloid one).
- B: EBF1+ and Pax5+ (the B program), Bcl11b- (not T).
- myeloid: CEBPa+ with Pu1 at level 2 (high PU.1, the myeloid level of this 0..2 gene), Bcl11b-.
- NK_like: Id2+ (inhibitor of E proteins, the NK/ILC regulator) without Bcl11b, and neither the
  myeloid (CEBPa) nor the B (EBF1) program, since the myeloid attractor also has Id2 on.
The four sets are mutually exclusive by construction (Bcl11b, CEBPa, EBF1), so no attractor is
ambiguous.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from envs.attractors import all_attractors, reachable_attractors
from envs.importer import import_model, read_ginsim_priority, read_ginsim_states
from envs.network import BooleanNetwork
from envs.world import read_world
from shared_data import shared_data_file
from cli_helpers import files_under, one_line_error, run_cli
from tournament.cli.main import main

CACACE_MARKERS = [
    "DN3=Bcl11b+,pTa+,Rag1+,CD3e+,TCRb+,Kit-,Flt3-",
    "B=EBF1+,Pax5+,Bcl11b-",
    "myeloid=CEBPa+,Pu1=2,Bcl11b-",
    "NK_like=Id2+,Bcl11b-,CEBPa-,EBF1-",
]
T_COMMIT = "input_T_commit_Delta_IL7"

# A toggle (A, B) gated by the free input S, a readout C, a 0..2 gene X (bits X_b1, X_b2) that
# climbs to 2 with A, and an oscillator D/E that runs only with A: the A attractor is cyclic
# (4 states), the B attractor a fixed point.
TINY = """\
targets, factors
A, !B & S
B, !A
C, A
X_b1, A | X_b2
X_b2, X_b1 & A
D, !E & A
E, D
"""


def cacace_dir() -> Path:
    return shared_data_file("cacace2020-tcell")  # skips where absent, fails under REQUIRE_SHARED_DATA=1


# ---- attractors: exact against an explicit search ------------------------------------------


def explicit_attractors(net: BooleanNetwork, start: np.ndarray, pinned: dict[int, int], scheme: str = "async"):
    """Terminal SCCs of the explicit state graph reachable from `start` (tiny networks only)."""
    n = net.n_genes
    states = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)[:, ::-1]  # code = sum bit g << g
    image = net.sync_update(states)
    for v, x in pinned.items():
        image[:, v] = x
    codes = np.arange(1 << n)
    rows, cols = [], []
    if scheme == "sync":
        rows, cols = list(codes), list((image.astype(np.int64) << np.arange(n)).sum(axis=1))
    else:
        for g in range(n):
            moved = codes ^ (1 << g)
            change = image[:, g] != states[:, g]
            rows += list(codes[change])
            cols += list(moved[change])
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(1 << n, 1 << n))
    s = int(sum(int(b) << g for g, b in enumerate(start)))
    for v, x in pinned.items():
        s = (s | (1 << v)) if x else (s & ~(1 << v))
    seen, todo = {s}, [s]
    while todo:
        c = todo.pop()
        for d in graph.indices[graph.indptr[c]:graph.indptr[c + 1]]:
            if int(d) not in seen:
                seen.add(int(d))
                todo.append(int(d))
    _, comp = connected_components(graph, directed=True, connection="strong")
    out = set()
    for label in {comp[c] for c in seen}:
        members = set(np.flatnonzero(comp == label).tolist())
        leaves = any(int(d) not in members for c in members for d in graph.indices[graph.indptr[c]:graph.indptr[c + 1]])
        if not leaves and members & seen:
            out.add(frozenset(members))
    return out


def as_code_sets(found) -> set[frozenset]:
    return {frozenset(int(sum(int(b) << g for g, b in enumerate(s))) for s in a.states) for a in found}


def random_network(rng: np.random.Generator, n: int) -> BooleanNetwork:
    names = [f"g{i}" for i in range(n)]
    rules = {}
    for i, g in enumerate(names):
        if i == n - 1:
            rules[g] = g  # an input
            continue
        regs = rng.choice(names, size=int(rng.integers(1, 4)), replace=False)
        lits = [("!" if rng.random() < 0.4 else "") + r for r in regs]
        ops = [" & " if rng.random() < 0.5 else " | " for _ in lits[1:]]
        rules[g] = lits[0] + "".join(o + lit for o, lit in zip(ops, lits[1:]))
    return BooleanNetwork.from_rules(rules)


def test_reachable_attractors_equal_the_explicit_terminal_sccs():
    rng = np.random.default_rng(7)
    cyclic = 0
    for trial in range(40):
        net = random_network(rng, int(rng.integers(4, 8)))
        if trial % 4 == 3:  # an edge knockout rewrites a table, not the rule text
            dst = int(rng.integers(0, net.n_genes - 1))
            net = net.without_edges([(int(net.inputs[dst, 0]), dst)])
        start = rng.integers(0, 2, net.n_genes).astype(np.uint8)
        pins = {int(rng.integers(0, net.n_genes)): int(rng.integers(0, 2))} if trial % 2 else {}
        mask = np.zeros(net.n_genes, bool)
        value = np.zeros(net.n_genes, np.uint8)
        for v, x in pins.items():
            mask[v], value[v] = True, x
        for scheme in ("async", "sync"):
            found = reachable_attractors(net, start, mask, value, scheme=scheme)
            assert as_code_sets(found) == explicit_attractors(net, start, pins, scheme), (trial, scheme, net.rules)
            cyclic += sum(not a.is_fixed_point for a in found)
            for a in found:
                assert a.is_fixed_point == (a.size == 1) and a.complete and len(a.states) == a.size
                assert set(a.oscillating) == set(np.flatnonzero(a.states.min(0) != a.states.max(0)))
    assert cyclic > 0  # the draw covers cyclic attractors too


def test_a_regulator_a_rule_names_but_ignores_is_no_error():
    # SBML exports write such rules; AEON refuses them unless its regulatory graph is repaired.
    net = BooleanNetwork.from_rules({"a": "(a & !a) | b", "b": "b", "c": "(!c & a) | (c & !c)"})
    (a,) = reachable_attractors(net, np.array([0, 1, 0], np.uint8))
    assert a.size == 2 and a.oscillating_names == ("c",) and a.on() == ["a", "b"]


def test_large_cyclic_attractor_is_sampled_and_counted_exactly():
    # Ten bits that each flip (x = !x) make one cyclic attractor of 2**10 states under async updates.
    net = BooleanNetwork.from_rules({f"x{i}": f"!x{i}" for i in range(10)} | {"y": "y"})
    (a,) = reachable_attractors(net, np.zeros(11, np.uint8), limit=50)
    assert a.size == 1024 and not a.complete and len(a.states) == 50
    assert a.oscillating == tuple(range(10)) and a.stable[10] == 0
    assert a.count_matching({0: 1, 1: 1}) == 256  # symbolic count, not the sample's
    assert a.contains(np.ones((1, 11), np.uint8)).tolist() == [False]  # y differs
    assert len(all_attractors(net)) == 2 and len(all_attractors(net, {"y": 1})) == 1


# ---- import on a tiny model -------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "model" / "tiny.bnet"
    path.parent.mkdir()
    path.write_text(TINY)
    return path


def test_import_names_attractors_by_markers_and_writes_a_loadable_world(tiny, tmp_path, capsys):
    out = tmp_path / "worlds" / "tiny"
    code, text, err = run_cli([
        "import", str(tiny), "--out", str(out), "--condition", "on=S=1", "--condition", "off=S=0",
        "--start", "naive=B-", "--marker", "hi=A+,X=2", "--marker", "quiet=D-,E-", "--cells", "50",
    ], capsys)
    assert code == 0, err
    assert "world written to" in text and "X (0..2)" in text
    assert "hi (cyclic, 4 states; quiet matches in 1 of 4 states" in text  # partial: not a name
    world = read_world(out)
    assert world.fates == ("hi", "quiet") and world.conditions == {"on": {"S": 1}, "off": {"S": 0}}
    assert world.max_level("X") == 2
    code, text, err = run_cli(["import", str(tiny), "--out", str(tmp_path / "w2"), "--condition", "on=S=1",
                               "--marker", "hi=A+", "--marker", "readout=C+", "--json"], capsys)
    assert code == 0, err
    report = json.loads(text)
    statuses = {a["status"] for a in report["attractors"]}
    assert "ambiguous" in statuses  # A and C are on together: the attractor matches both fates


def test_import_report_lists_reachable_attractors_per_start_and_condition(tiny):
    report = import_model(tiny, conditions={"on": {"S": 1}, "off": {"S": 0}}, markers={"hi": {"A": 1}, "lo": {"B": 1}}, n_cells=100)
    on = report.reachable("all_off", "on")
    assert sorted(f.fate for f in on) == ["hi", "lo"]
    assert [f.fate for f in report.reachable("all_off", "off")] == ["lo"]
    hi = next(f for f in on if f.fate == "hi")
    assert hi.attractor.size == 4 and hi.levels["D"] == "~" and hi.levels["X"] == 2
    assert next(f for f in on if f.fate == "lo").attractor.is_fixed_point
    cells = next(r for r in report.reached if r.condition == "on").cells
    assert abs(sum(cells.values()) - 1) < 1e-9
    assert "every variable 0 except the condition's inputs" in report.text()


def test_bare_model_file_is_a_world_whose_fates_are_its_attractors(tiny, capsys):
    code, text, err = run_cli(["simulate", "--world", str(tiny), "--json"], capsys)
    assert code == 0, err
    fates = json.loads(text)["fates"]
    assert set(fates) == {"attractor_1", "aberrant"} and fates["attractor_1"] == 1.0  # S=0: B wins
    report = import_model(tiny, conditions={"on": {"S": 1}}, n_cells=0)
    assert report.world.fates == ("attractor_1", "attractor_2")
    markers = report.world.summary()["fates"]
    assert all("S" not in m for m in markers.values())  # the input aside
    assert sorted("D" in m for m in markers.values()) == [False, True]  # oscillating D aside, stable D=0 kept
    for f in report.found:
        assert set(report.world.fate_labels[i] for i in report.world.classify(f.attractor.states)) == {f.fate}


def test_multivalued_levels_stay_apart_without_markers(tmp_path):
    # P climbs to 1 or to 2 depending on the input Q; "at least 1" alone would also match level 2.
    path = tmp_path / "levels.bnet"
    path.write_text("targets, factors\nP_b1, 1\nP_b2, P_b1 & Q\n")
    report = import_model(path, conditions={"low": {"Q": 0}, "high": {"Q": 1}}, n_cells=0)
    names = {f.levels["P"]: f.fate for f in report.found}
    assert set(names) == {1, 2} and names[1] != names[2]
    for f in report.found:
        assert {report.world.fate_labels[i] for i in report.world.classify(f.attractor.states)} == {f.fate}


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--marker", "hi=Zeta+"], "'Zeta'"),
        (["--condition", "on=S=1", "--marker", "hi=A+,B+"], "marker set of fate hi matches no attractor"),
        (["--condition", "bad=A=1"], "input gene in condition 'bad'"),
        (["--marker", "hi=X=3"], "level 3 of gene X is out of range; valid levels: 0..2"),
        (["--marker", "hi=A*"], "bad item 'A*'"),
        (["--scheme", "chaotic"], "'chaotic'"),
        (["--start", "s=@nowhere.xml:ETP"], "file not found"),
    ],
)
def test_bad_import_input_is_one_line_and_writes_nothing(args, needle, tiny, tmp_path, capsys):
    before = files_under(tmp_path)
    code, _, err = run_cli(["import", str(tiny), "--out", str(tmp_path / "out" / "w"), *args], capsys)
    line = one_line_error(code, err, needle)
    assert len(line) < 400
    assert files_under(tmp_path) == before


def test_an_existing_world_is_replaced_only_with_force(tiny, tmp_path, capsys):
    out = tmp_path / "w"
    assert run_cli(["import", str(tiny), "--out", str(out), "--cells", "0"], capsys)[0] == 0
    code, _, err = run_cli(["import", str(tiny), "--out", str(out), "--cells", "0"], capsys)
    one_line_error(code, err, "--force")
    code, _, err = run_cli(["import", str(tiny), "--out", str(out), "--cells", "0", "--force", "--name", "renamed"], capsys)
    assert code == 0, err
    assert read_world(out).name == "renamed" and files_under(tmp_path) - {"model", "model/tiny.bnet"} == {"w", "w/world.json", "w/network.bnet"}


def test_ginsim_files_map_names_and_report_the_unknown(tiny, tmp_path):
    states = tmp_path / "initialState.xml"
    states.write_text(
        '<initialStates><initialState name="up" value="A;1 B;0 X;2 Nope;1"/>'
        '<input name="signal" value="S;1"/></initialStates>'
    )
    prio = tmp_path / "reg2dyn.xml"
    prio.write_text(
        '<simulationParameters><priorityClassList id="p">'
        '<class name="Fast" mode="1" rank="1" content="C D "/><class name="Slow" mode="1" rank="2" content="A B E X S Gone"/>'
        '</priorityClassList></simulationParameters>'
    )
    parsed = read_ginsim_states(states)
    assert parsed.states["up"] == {"A": 1, "B": 0, "X": 2, "Nope": 1} and parsed.inputs == {"signal": {"S": 1}}
    classes, _ = read_ginsim_priority(prio)
    assert classes["C"] == 0 and classes["A"] == 1
    report = import_model(tiny, ginsim_states=states, ginsim_priority=prio, n_cells=20)
    w = report.world
    assert w.scheme == "priority" and "signal" in w.conditions
    assert w.start_state("up", "signal").tolist()[:5] == [1, 0, 0, 1, 1]  # A, B, C, X_b1, X_b2
    notes = " ".join(report.notes)
    assert "Nope" in notes and "Gone" in notes and "general asynchronous" in notes
    assert w.network.priority[w.variables.index("C")] == 0 and w.network.priority[w.variables.index("X_b2")] == 1


def test_worlds_lists_the_good_and_reports_every_broken_world(tiny, tmp_path, capsys):
    root = tmp_path / "worlds"
    assert run_cli(["import", str(tiny), "--out", str(root / "good"), "--cells", "0", "--name", "tinyworld"], capsys)[0] == 0
    (root / "broken_json").mkdir()
    (root / "broken_json" / "world.json").write_text("{nope")
    (root / "broken_net").mkdir()
    (root / "broken_net" / "world.json").write_text('{"network": "network.bnet", "fates": {}, "start_states": {"s": []}}')
    (root / "broken_net" / "network.bnet").write_text("A A\n")
    assert run_cli(["import", str(tiny), "--out", str(root / "clash"), "--cells", "0", "--name", "tcell"], capsys)[0] == 0
    code, out, err = run_cli(["worlds", str(root)], capsys)
    assert code == 2
    assert "tinyworld" in out and "myeloid" in out
    errors = [ln for ln in err.splitlines() if ln.strip()]
    assert len(errors) == 3 and all(ln.startswith("error: ") for ln in errors), err
    assert any("broken_json" in ln and "not valid JSON" in ln for ln in errors)
    assert any("broken_net" in ln and "expected 'target, rule'" in ln for ln in errors)
    assert any("clash" in ln and "built-in" in ln for ln in errors)
    assert out.count("tcell  (") == 1  # the built-in one only


# ---- the Cacace model, end to end -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cacace(tmp_path_factory):
    data = cacace_dir()
    out = tmp_path_factory.mktemp("cacace") / "world"
    args = [
        "import", str(data / "bbm196_model.bnet"), "--out", str(out),
        "--ginsim-states", str(data / "ginsim" / "initialState.xml"),
        "--default-start", "ETP", "--default-condition", T_COMMIT, "--cells", "100", "--json",
    ]
    for m in CACACE_MARKERS:
        args += ["--marker", m]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # module scope: capsys is per test
        code = main(args)
    return code, out, printed.getvalue()


def test_cacace_imports_in_one_command(cacace):
    code, out, printed = cacace
    assert code == 0, printed
    report = json.loads(printed)
    world = read_world(out)
    assert world.fates == ("DN3", "B", "myeloid", "NK_like")
    # Genes are named without BBM's v_ prefix; the variables keep it.
    assert set(world.inputs) == {"Delta", "IL7", "MCSF"} and "v_Gata3_b2" in world.variables
    assert world.max_level("Pu1") == 2 and world.max_level("Bcl11b") == 1
    assert {"pre-thymic", "ETP", "DN2a", "DN2b", "DN3"} <= set(world.start_states)
    assert world.conditions[T_COMMIT] == {"MCSF": 0, "IL7": 1, "Delta": 1}
    # ETP's profile from initialState.xml, multi-valued genes included.
    levels = dict(zip(world.genes, world.gene_levels(world.start_state("ETP"))[0]))
    assert levels["Pu1"] == 1 and levels["Runx1"] == 1 and levels["TCF1"] == 1 and levels["Bcl11b"] == 0
    reached = {(r["start"], r["condition"]): {a["fate"] for a in r["attractors"]} for r in report["reached"]}
    assert {"DN3", "NK_like"} <= reached[("ETP", T_COMMIT)]
    assert reached[("DN3", T_COMMIT)] == {"DN3"}
    assert "myeloid" in reached[("ETP", "input_myel_MCSF")] and "DN3" not in reached[("ETP", "input_myel_MCSF")]
    assert not any(a["status"] == "ambiguous" for a in report["attractors"])


def test_cacace_wrong_marker_names_the_closest_attractor(capsys, tmp_path):
    data = cacace_dir()
    before = files_under(tmp_path)
    code, _, err = run_cli([
        "import", str(data / "bbm196_model.bnet"), "--out", str(tmp_path / "w"),
        "--ginsim-states", str(data / "ginsim" / "initialState.xml"), "--cells", "0",
        "--marker", "impossible=Bcl11b+,EBF1+",
    ], capsys)
    line = one_line_error(code, err, "marker set of fate impossible matches no attractor reachable")
    assert "closest" in line
    assert files_under(tmp_path) == before
