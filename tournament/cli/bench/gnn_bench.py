"""GNN message passing: forward + backward time per batch vs graph size, sparse PyG vs dense.

The timed part is the GNN module's graph encoder (algorithms.modules.gnn.SignedGraphEncoder:
input layer, `layers` pairs of signed convolutions with residuals, mean/max pooling) built from
the same model_config a trial uses, once with the ``sparse`` backend (PyG GCNConv/GATConv over
the batch as one disconnected graph) and once with ``dense`` (PyG's Dense*Conv on an (n, n)
adjacency per edge sign). Size 11 is the myeloid world's network; other sizes are synthetic
random networks (envs.worlds.synthetic, two regulators per gene). A CUDA GPU is used when
torch sees one; every row names its device.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from envs.world import World, load_world
from envs.worlds.synthetic import random_world


def _world(n: int) -> World:
    if n == 11:
        return load_world("myeloid")
    return random_world(n, seed=0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_encoder(world: World, conv: str, backend: str, batch: int, repeats: int, device: torch.device,
                 hidden: int = 64, layers: int = 2) -> dict[str, float]:
    """Median and best seconds of one forward + backward pass of the encoder on a random batch."""
    from algorithms.modules import model_config
    from algorithms.modules.gnn import SignedGraphEncoder

    cfg = model_config(world, "steer", ("knockout", "overexpression"), "gnn",
                       {"conv": conv, "backend": backend, "hidden": hidden, "layers": layers})
    torch.manual_seed(0)
    encoder = SignedGraphEncoder(cfg).to(device)
    x = torch.rand(batch, world.n_genes, int(cfg["node_features"]), device=device)
    times = []
    for i in range(repeats + 2):  # two warm-up passes (allocator, cached batched edges, kernels)
        _sync(device)
        start = time.perf_counter()
        enc = encoder({"x": x})
        (enc.nodes.sum() + enc.pooled.sum()).backward()
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
        encoder.zero_grad(set_to_none=True)
    return {"median": statistics.median(times), "best": min(times)}


def bench_gnn(
    sizes: tuple[int, ...] = (11, 21, 50, 100, 300),
    batch: int = 256,
    repeats: int = 10,
    convs: tuple[str, ...] = ("gcn", "gat"),
    device: str | None = None,
    threads: int | None = 1,
) -> list[dict[str, Any]]:
    """One row per (graph size, conv, backend): ms per batch (forward + backward), median of
    `repeats`, and dense/sparse = dense time / sparse time of the same size and conv.

    On the CPU torch runs `threads` threads (one by default, as one trial's learner does on a
    shared machine); None keeps torch's setting.
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    saved_threads = torch.get_num_threads()
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    try:
        return _rows(sizes, batch, repeats, convs, dev)
    finally:
        torch.set_num_threads(saved_threads)


def _rows(sizes: tuple[int, ...], batch: int, repeats: int, convs: tuple[str, ...],
          dev: torch.device) -> list[dict[str, Any]]:
    n_threads = torch.get_num_threads()
    dev_name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                else f"cpu ({n_threads} thread{'s' if n_threads != 1 else ''})")
    rows: list[dict[str, Any]] = []
    for n in sizes:
        world = _world(n)
        n_edges = len(world.network.edges)
        for conv in convs:
            ms: dict[str, float] = {}
            for backend in ("sparse", "dense"):
                t = time_encoder(world, conv, backend, batch, repeats, dev)
                ms[backend] = 1000.0 * t["median"]
                rows.append({
                    "genes": world.n_genes, "edges": n_edges, "conv": conv, "backend": backend, "batch": batch,
                    "device": dev_name, "fwd_bwd_ms": round(ms[backend], 2),
                    "best_ms": round(1000.0 * t["best"], 2),
                    "us_per_cell": round(1000.0 * ms[backend] / batch, 1),
                })
            rows[-1]["dense/sparse"] = round(ms["dense"] / ms["sparse"], 2)
            rows[-2]["dense/sparse"] = rows[-1]["dense/sparse"]
    return rows
