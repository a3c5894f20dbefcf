"""Atomic file writes: readers (a live status display, a resumed run) never see half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: "str | Path", data: bytes) -> None:
    """Write to a temp file in the same folder, then rename; the temp file goes on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: "str | Path", text: str) -> None:
    """atomic_write_bytes of UTF-8 text, newlines as given."""
    atomic_write_bytes(path, text.encode("utf-8"))
