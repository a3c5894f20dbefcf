"""Tournaments on a real multi-node Ray cluster on this machine, and Ray's security defaults.

The cluster is three raylets (ray.cluster_utils.Cluster, one CPU each) and the driver joins it
with `tournament run --address`, as on a real cluster. Its RAY_TMPDIR is private, so a plain
`ray.init()` elsewhere on the machine does not find and join it. Checked: trials spread over the
nodes with a storage URI; a node removed mid-tournament loses nothing; the embedded local Ray
listens on loopback only, runs no dashboard and keeps token authentication.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from tournament_helpers import rows, tiny_ppo_spec, with_changes

SCRIPTED = "tournament.engine.scripted:ScriptedRunner"
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def spec_dict(name: str, storage: str, **changes) -> dict:
    """The tiny PPO spec with one tuning trial and one final seed per cell."""
    base = tiny_ppo_spec(name, storage, hpo={"trials_per_cell": 1}, final={"seeds": 1}, execution={"max_failures": 2})
    return with_changes(base, changes)


def run_cli(args: list[str], cwd: Path, timeout: float = 900, wait: bool = True):
    cmd = [sys.executable, "-m", "tournament.cli.main", *args]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if wait:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # short: Ray's socket paths live under it and must stay below 108 characters
    tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", tmp)
        mp.delenv("RAY_ADDRESS", raising=False)
        c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
        try:
            c.add_node(num_cpus=1)
            c.add_node(num_cpus=1)
            c.wait_for_nodes()
            yield c
        finally:
            c.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)


def test_trials_spread_over_the_nodes_with_storage_behind_a_uri(tmp_path, cluster):
    storage = (tmp_path / "shared").as_uri()  # a shared path as a URI: the pyarrow filesystem path
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(spec_dict("cluster", storage)))
    out = run_cli(["run", "cluster.yaml", "--quiet", "--address", cluster.address], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "cluster"  # the local mirror of the URI's run directory
    trials = rows(run / "trials.csv")
    assert len(trials) == 2 * (1 + 1) and {r["status"] for r in trials} == {"ok"}
    nodes = {r["node_id"] for r in trials}
    assert nodes <= {n.node_id for n in cluster.list_all_nodes()}
    assert len(nodes) >= 2  # one CPU per node and three trials at once: they cannot share one node
    remote = tmp_path / "shared" / "cluster"
    assert (remote / "trials.csv").read_text() == (run / "trials.csv").read_text()
    assert len(list((remote / "tune").rglob("result.json"))) == len(trials)
    assert json.loads((remote / "manifest.json").read_text())["status"] == "finished"


def _running_on(tune_dir: Path, node_id: str) -> str | None:
    """The key of a trial that reported from `node_id` and has not finished, if any."""
    for path in tune_dir.rglob("result.json"):
        lines = path.read_text().splitlines()
        results = [json.loads(line) for line in lines if line.strip().endswith("}")]
        if results and results[-1].get("node_id") == node_id and not results[-1].get("finished"):
            return results[-1]["trial_key"]
    return None


def test_a_node_removed_mid_tournament_loses_nothing(tmp_path, cluster):
    spec = spec_dict(
        "nodeloss", str(tmp_path / "runs"),
        grid={"algorithm": ["PPO", "A2C"], "optimizer": ["adam"]},
        algorithm_settings={"PPO": {"train_batch_size": 200, "work_s": 0.5},
                            "A2C": {"train_batch_size": 200, "work_s": 0.5}},
        budget={"env_steps": 1000}, hpo={"trials_per_cell": 2},
        execution={"storage": str(tmp_path / "runs"), "runner": SCRIPTED, "max_failures": 2, "checkpoint_every": 1},
    )
    (tmp_path / "nodeloss.yaml").write_text(yaml.safe_dump(spec))
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    run = tmp_path / "runs" / "nodeloss"
    driver = run_cli(["run", "nodeloss.yaml", "--quiet", "--address", cluster.address], cwd=tmp_path, wait=False)
    victim = None
    try:
        deadline = time.monotonic() + 400
        while victim is None and time.monotonic() < deadline and driver.poll() is None:
            victim = _running_on(run / "tune", doomed.node_id)
            time.sleep(0.2)
        assert victim, "no trial ran on the added node"
        cluster.remove_node(doomed, allow_graceful=False)
        _, err = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err[-3000:]

    trials = {r["trial_id"]: r for r in rows(run / "trials.csv")}
    assert len(trials) == 2 * (2 + 1) and {r["status"] for r in trials.values()} == {"ok"}
    assert trials[victim]["node_id"] != doomed.node_id and int(trials[victim]["env_steps"]) == 1000
    # retried from its last checkpoint: the second attempt starts after iteration 1
    results = [json.loads(line) for p in (run / "tune").rglob("result.json") for line in p.read_text().splitlines()]
    mine = [r for r in results if r["trial_key"] == victim]
    assert min(r["iteration"] for r in mine if r["attempt"] >= 1) > 1
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    cells = {r["cell_id"] for r in trials.values()}
    board = [r for r in rows(run / "leaderboard.csv") if r["entry"] == "rl"]  # baseline rows beside them
    assert {r["cell_id"] for r in board} == cells and all(r["score_source"] == "final seeds" for r in board)


# ---- security defaults of the embedded local Ray ------------------------------------------------

PROBE = r"""
import json, time
import psutil, ray
from ray._raylet import AuthenticationMode, get_authentication_mode
from tournament.engine.ray_session import init_ray

init_ray(None, 1)
time.sleep(3)  # workers and agents open their ports after ray.init returns
me = psutil.Process()
listening, commands = set(), []
for p in [me] + me.children(recursive=True):
    try:
        commands.append(" ".join(p.cmdline()))
        listening |= {c.laddr.ip for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    except psutil.Error:
        pass
print(json.dumps({"listening": sorted(listening), "commands": commands,
                  "token_auth": get_authentication_mode() == AuthenticationMode.TOKEN}))
ray.shutdown()
"""


def test_embedded_ray_listens_on_loopback_only_without_dashboard_and_with_token_auth(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env.update(RAY_TMPDIR=tempfile.mkdtemp(prefix="rs", dir="/tmp"), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    try:
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert any("gcs_server" in c for c in found["commands"])  # the probe saw Ray's own processes
    assert found["listening"] and set(found["listening"]) <= LOOPBACK, found["listening"]
    # no dashboard: Ray's head process runs only its minimal internal modules, without the web UI
    heads = [c for c in found["commands"] if "dashboard/dashboard.py" in c]
    assert all("--minimal" in c and "--disable-frontend" in c for c in heads), heads
    assert found["token_auth"]
