"""Shared fixtures: one embedded Ray instance per test module, never joining a stray cluster."""

from __future__ import annotations

import pytest


def start_local_ray() -> bool:
    """Start an embedded 2-CPU Ray unless one runs; True when this call started it.

    address="local": never join a cluster that another process left in /tmp/ray.
    """
    import ray

    if ray.is_initialized():
        return False
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    return True


@pytest.fixture(scope="module")
def ray_session():
    """Ray for RLlib trials run in-process; a session another module started is reused."""
    start_local_ray()
    yield


@pytest.fixture(scope="module")
def ray_local():
    """Ray for tournaments; shut down after the module if this module started it."""
    import ray

    started = start_local_ray()
    yield
    if started:
        ray.shutdown()
