"""Locate the external data sets in ../shared/data (never copied into the project).

A test that needs one skips with the reason where the folder is absent (a user's fresh
clone) and fails instead when REQUIRE_SHARED_DATA=1, as CI sets it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data_file(relative: str) -> Path:
    """Path of `relative` under ../shared/data, or skip (fail under REQUIRE_SHARED_DATA=1)."""
    path = SHARED_DATA / relative
    if not path.exists():
        if os.environ.get("REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"REQUIRE_SHARED_DATA=1 but {path} is missing")
        pytest.skip(f"shared data not present: {path}")
    return path
