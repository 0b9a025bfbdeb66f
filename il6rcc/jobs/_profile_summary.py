"""The summary of profile likelihoods as data (``profiles.json``) and as text
(``profiles.md``), and the merge of per-parameter profile folders (the elements of a
profile sweep) into one output folder.

Kept apart from :mod:`il6rcc.jobs.profile` (which compiles the posterior) so that the
sweep driver merges its elements' files without importing JAX: the summary is built
from plain records, which each element writes to its ``profiles.json``; the merged
``profiles.md`` is therefore the same text a single ``il6rcc profile`` process writes.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import _io

#: the files of a profile output folder (besides ``figures/profile_<parameter>.png``)
CSV, MARKDOWN, RECORDS = "profiles.csv", "profiles.md", "profiles.json"


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def open_at_range(p) -> list[str]:
    """The sides (``lower``, ``upper``) on which the profile reached the prior range's
    edge below the threshold: where the parameter is practically non-identifiable."""
    return [k for k, side in (("lower", p.lower), ("upper", p.upper)) if side.end == "prior range"]


def profile_record(p, natural_label: str | None, crossing_natural) -> dict:
    """One profile's summary as plain data: how each side ended, where it crossed the
    threshold (unconstrained and natural scale; None when open), its points and failed
    points, whether it is identifiable and on which sides it reached the prior range.
    ``crossing_natural(value)``: the natural-scale value at an unconstrained one."""

    def side(s) -> dict:
        crossing = None if s.open else _number(s.crossing)
        return {
            "end": s.end,
            "open": bool(s.open),
            "crossing": crossing,
            "crossing_natural": None if crossing is None else float(crossing_natural(crossing)),
        }

    return {
        "parameter": p.name,
        "profile": p.kind,
        "natural": natural_label,
        "lower": side(p.lower),
        "upper": side(p.upper),
        "points": len(p.values),
        "failed": sum(s == "failed" for s in p.status),
        "identifiable": bool(p.identifiable),
        "at_prior_range": open_at_range(p),
    }


def _bound(side: Mapping) -> str:
    if side["open"]:
        return f"open ({side['end']})"
    value = side["crossing_natural"]
    return f"{float('nan') if value is None else value:.4g}"


def summary_markdown(
    records: Sequence[Mapping],
    threshold: float,
    source: str | None = None,
    not_profiled: Mapping[str, str] | None = None,
) -> str:
    """The Markdown summary: each profile's 95 % interval (natural scale where one
    variable depends on the coordinate alone) and the practically non-identifiable
    parameters (judged on the likelihood profiles). ``not_profiled``: parameter ->
    why its profile is missing (a failed sweep element)."""
    lines = [
        "# Profile likelihoods" + (f" of {source}" if source is not None else ""),
        "",
        f"Threshold: {threshold:.3f} above each profile's minimum (chi2(1, 0.95) / 2, the "
        "95 % likelihood-ratio interval). Range: the prior's central 99 % interval of "
        "each coordinate. A side is *open* when the profile does not cross the threshold "
        "inside that range. The profile posterior is the negative log posterior density "
        "of the unconstrained coordinates (the prior and its Jacobian included).",
        "",
        "| parameter | profile | natural | lower 95 % | upper 95 % | points | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['parameter']} | {r['profile']} | {r['natural'] or '(unconstrained)'} | "
            f"{_bound(r['lower'])} | {_bound(r['upper'])} | {r['points']} | {r['failed']} |"
        )
    flagged, undetermined = [], []
    for r in records:
        if r["profile"] != "likelihood" or r["identifiable"]:
            continue
        at_range = r["at_prior_range"]
        if at_range:
            plural = "s" if len(at_range) > 1 else ""
            flagged.append(f"{r['parameter']} ({' and '.join(at_range)} side{plural})")
        else:
            ends = {s: r[s]["end"] for s in ("lower", "upper") if r[s]["open"]}
            undetermined.append(
                f"{r['parameter']} ({', '.join(f'{k}: {v}' for k, v in ends.items())})"
            )
    lines += ["", "## Practically non-identifiable (likelihood profile open)", ""]
    lines.append(", ".join(flagged) if flagged else "none of the profiled parameters")
    if undetermined:
        lines += [
            "",
            "## Undetermined (a side ended before crossing or reaching the range: rerun with "
            "a larger --max-points, or check the failed points)",
            "",
            ", ".join(undetermined),
        ]
    if not_profiled:
        lines += ["", "## Not profiled (the profile failed; see sweep.csv and its log)", ""]
        lines += [f"- {name}: {why}" for name, why in not_profiled.items()]
    return "\n".join(lines) + "\n"


def read_records(folder: Path) -> dict:
    """A profile folder's ``profiles.json``."""
    return json.loads((Path(folder) / RECORDS).read_text())


def merge_profiles(
    out: Path, folders: Sequence[Path], not_profiled: Mapping[str, str] | None = None
) -> str:
    """Merge profile folders (each one ``il6rcc profile`` output, in the order given)
    into ``out``: ``profiles.csv`` (their rows, in order), ``profiles.json``,
    ``profiles.md`` and ``figures/``; each file is replaced atomically. Returns the
    summary text."""
    out = Path(out)
    parts = [read_records(f) for f in folders]
    records = [r for part in parts for r in part["profiles"]]
    source = next((p["run"] for p in parts), None)
    threshold = parts[0]["threshold"] if parts else float("nan")
    header, rows = None, []
    for folder in folders:
        with (Path(folder) / CSV).open(newline="") as fh:
            reader = csv.reader(fh)
            head = next(reader)
            if header is not None and head != header:
                raise ValueError(f"{folder / CSV}: columns {head}, expected {header}")
            header = head
            rows += list(reader)

    def write_csv(path: Path) -> None:
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            if header is not None:
                writer.writerow(header)
            writer.writerows(rows)

    _io.atomic_write(out / CSV, write_csv)
    _io.write_text(
        out / RECORDS,
        json.dumps({"run": source, "threshold": threshold, "profiles": records}, indent=2) + "\n",
    )
    summary = summary_markdown(records, threshold, source, not_profiled)
    _io.write_text(out / MARKDOWN, summary)
    for folder in folders:
        for figure in sorted((Path(folder) / "figures").glob("*.png")):
            target = out / "figures" / figure.name
            _io.atomic_write(target, lambda p, src=figure: shutil.copyfile(src, p))
    return summary


__all__ = [
    "CSV",
    "MARKDOWN",
    "RECORDS",
    "merge_profiles",
    "open_at_range",
    "profile_record",
    "read_records",
    "summary_markdown",
]
