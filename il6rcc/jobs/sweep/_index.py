"""``DIR/sweep.csv``: one row per element, rewritten atomically whenever one finishes.

Columns: ``element``, one column per axis (its value), ``status`` (``complete``,
``failed``, ``running``, ``unfinished``: killed or stopped, resumes on the next run,
``pending``: not started), ``action`` (what this invocation did: ``started``,
``resumed``, ``skipped``), ``attempts``, ``wall_seconds`` (all attempts of the
element), ``gates`` (``passed`` or ``failed: <gates>``, from diagnostics.json),
``error`` (why the last attempt failed), ``run_dir``, ``log``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ... import _io
from ._element import element_paths, read_state, run_status

INDEX = "sweep.csv"


def gates_of(run_dir: Path) -> str:
    path = Path(run_dir) / "diagnostics.json"
    if not path.is_file():
        return ""
    try:
        diag = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    if diag.get("passed"):
        return "passed"
    return "failed: " + ", ".join(diag.get("failed_gates", []))


def _wall_seconds(run_dir: Path, attempts: list[dict]) -> float | str:
    if attempts:
        return round(sum(float(a.get("seconds") or 0.0) for a in attempts), 1)
    man = Path(run_dir) / "manifest.json"
    try:
        return round(float(json.loads(man.read_text())["wall_seconds"]), 1)
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def element_row(plan, out: Path, element, action: str = "", running: bool = False) -> dict:
    p = element_paths(out, element.name)
    attempts = read_state(p["state"]).get("attempts", [])
    status = run_status(p["run"])
    last_error = attempts[-1].get("error", "") if attempts else ""
    if status != "complete":
        if running:
            status = "running"
        elif last_error and not last_error.startswith("stopped"):
            status = "failed"
    row = {"element": element.name}
    row.update(dict(element.values))
    row.update(
        status=status,
        action=action,
        attempts=len(attempts),
        wall_seconds=_wall_seconds(p["run"], attempts),
        gates=gates_of(p["run"]) if status == "complete" else "",
        error="" if status == "complete" else last_error,
        run_dir=element.name,
        log=str(p["log"].relative_to(out)),
    )
    return row


def write_index(plan, out: Path, actions: dict[str, str], running: set[str] = frozenset()):
    """Rewrite ``out/sweep.csv`` from the run folders and the element state files;
    returns the rows."""
    rows = [
        element_row(plan, out, el, actions.get(el.name, ""), el.name in running)
        for el in plan.elements
    ]
    columns = ["element", *plan.labels, "status", "action", "attempts", "wall_seconds"]
    columns += ["gates", "error", "run_dir", "log"]

    def write(path: Path) -> None:
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    _io.atomic_write(Path(out) / INDEX, write)
    return rows


__all__ = ["INDEX", "element_row", "gates_of", "write_index"]
