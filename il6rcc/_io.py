"""Atomic file output: write to a temporary name in the same folder, then rename.

A reader (or a resumed run) therefore sees either the old file or the complete new
one, never a half-written file, even if the process is killed mid-write.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_figure(fig, path: str | Path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format from the final suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda p: fig.savefig(p, format=fmt, **kwargs))


def clean_temporaries(folder: str | Path) -> int:
    """Remove temporary files left by a killed writer; returns how many."""
    n = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


__all__ = ["atomic_write", "clean_temporaries", "save_figure", "write_json", "write_text"]
