"""Parsers of the small languages inside table cells (doses, tiers, times, p values).

Each parser returns its result together with a list of problems (plain sentences that
say what was received and what is expected), so that the linter can report every
problem of a file in one pass. Nothing here reads files.

Grammar (whitespace around separators is ignored)::

    perturbations := "none" | dose (";" dose)*
    dose          := NAME "=" ( "on"                       # on/off inputs
                              | NUMBER " " UNIT             # known dose
                              | "unknown" [ "[" LABEL "]" ] # nuisance dose )
    tiers         := tier (">" tier)*      tier := item ("," item)*
    time          := NUMBER | "unknown" | NUMBER ("|" NUMBER)+
    p_value       := NUMBER | "<" NUMBER | ">" NUMBER
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import choices
from ..models import ODEModel
from . import _columns as C
from ._units import conversion_factor

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_DOSE_RE = re.compile(rf"^(?P<number>{_NUMBER})\s*(?P<unit>\S+)?$")
_UNKNOWN_RE = re.compile(r"^unknown(?:\[(?P<label>[^\]]*)\])?$")
_LABEL_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SOURCE_RE = re.compile(r"^(doi:10\.\d{4,9}/\S+|PMC\d+|PMID:\d+|url:https?://\S+)(\s+\S.*)?$")
_P_RE = re.compile(rf"^(?P<op>[<>=]?)\s*(?P<number>{_NUMBER})$")
ROW_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
STUDY_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class InputInfo:
    """What the tables need to know about one model input."""

    unit: str
    indicator: bool


@dataclass(frozen=True)
class Vocabulary:
    """The names a table may use, taken from a model.

    Attributes:
        inputs: input name -> :class:`InputInfo` (the simulator's phase input excluded).
        cell_lines: every accepted spelling (names and aliases) -> canonical name.
        observables: observable id -> (unit, relative).
    """

    inputs: Mapping[str, InputInfo]
    cell_lines: Mapping[str, str]
    observables: Mapping[str, tuple[str, bool]]

    @classmethod
    def from_model(cls, model: ODEModel) -> Vocabulary:
        inputs = {u.name: InputInfo(u.unit, u.indicator) for u in model.inputs if not u.phase}
        lines: dict[str, str] = {}
        for line in model.cell_lines:
            lines[line.name] = line.name
            for alias in line.aliases:
                lines[alias] = line.name
        observables = {o.name: (o.unit, o.relative) for o in model.observables}
        return cls(inputs, lines, observables)


@dataclass(frozen=True)
class Dose:
    """One perturbation of a condition.

    Attributes:
        input: model input name.
        value: dose in the input's model unit (1.0 for on/off inputs); None when the
            dose is unknown (a nuisance quantity).
        label: label of an unknown dose (``invivo``, ``low``), None otherwise.
    """

    input: str
    value: float | None
    label: str | None = None

    @property
    def unknown(self) -> bool:
        return self.value is None

    def key(self) -> str:
        """Canonical text of the dose (used in condition ids and duplicate checks)."""
        if self.value is None:
            return f"{self.input}=unknown" + (f"[{self.label}]" if self.label else "")
        return f"{self.input}={self.value:.6g}"


Perturbations = tuple[Dose, ...]


def parse_dose(text: str, vocab: Vocabulary) -> tuple[Dose | None, list[str]]:
    """Parse ``name=dose`` (see the module grammar)."""
    if "=" not in text:
        return None, [f"perturbation {text!r} must be 'name=dose' (e.g. 'ifn_alpha=unknown')"]
    name, _, dose = (part.strip() for part in text.partition("="))
    info = vocab.inputs.get(name)
    if info is None:
        return None, [f"unknown perturbation {name!r}; valid: {choices(vocab.inputs)}"]
    if info.indicator:
        if dose != C.ON:
            return None, [f"{name!r} is an on/off perturbation; expected '{name}=on', got {text!r}"]
        return Dose(name, 1.0), []
    if dose == C.ON:
        return None, [f"{name!r} takes a dose in {info.unit} or 'unknown', not 'on' (got {text!r})"]
    unknown = _UNKNOWN_RE.match(dose)
    if unknown:
        label = unknown.group("label")
        if label is not None and not _LABEL_RE.match(label):
            return None, [
                f"label of {text!r} must be lower-case letters, digits and '_' "
                f"(e.g. 'unknown[invivo]'), got {label!r}"
            ]
        return Dose(name, None, label), []
    match = _DOSE_RE.match(dose)
    if not match:
        return None, [f"dose of {name!r} must be '<number> <unit>' or 'unknown', got {dose!r}"]
    number = float(match.group("number"))
    unit = match.group("unit")
    if unit is None:
        return None, [f"dose {dose!r} of {name!r} has no unit; expected a unit like {info.unit!r}"]
    try:
        factor = conversion_factor(unit, info.unit)
    except ValueError as err:
        return None, [f"dose of {name!r}: {err} (the model's unit is {info.unit!r})"]
    if not number > 0 or not math.isfinite(number):
        return None, [
            f"dose of {name!r} must be > 0 (leave an absent perturbation out), got {dose!r}"
        ]
    return Dose(name, number * factor), []


def parse_perturbations(text: str, vocab: Vocabulary) -> tuple[Perturbations | None, list[str]]:
    """Parse ``none`` or ``name=dose; name=dose`` into sorted doses."""
    text = text.strip()
    if text == C.NONE:
        return (), []
    if not text:
        return None, ["is empty; write 'none' for no perturbation"]
    doses: list[Dose] = []
    problems: list[str] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            problems.append(f"empty perturbation in {text!r} (stray ';')")
            continue
        dose, issues = parse_dose(part, vocab)
        problems.extend(issues)
        if dose is not None:
            doses.append(dose)
    names = [d.input for d in doses]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"perturbation {name!r} is given more than once in {text!r}")
    if problems:
        return None, problems
    return tuple(sorted(doses, key=lambda d: d.input)), []


def parse_tiers(text: str) -> tuple[tuple[tuple[str, ...], ...] | None, list[str]]:
    """Split ``a > b, c > d`` into tiers ``(("a",), ("b", "c"), ("d",))``."""
    tiers = []
    for tier in text.split(">"):
        items = tuple(item.strip() for item in tier.split(","))
        if any(not item for item in items):
            return None, [f"empty item in the order {text!r}"]
        tiers.append(items)
    flat = [item for tier in tiers for item in tier]
    if len(set(flat)) != len(flat):
        return None, [f"an item appears twice in the order {text!r}"]
    return tuple(tiers), []


def parse_time(
    text: str, *, allow_zero: bool = False
) -> tuple[tuple[float, ...] | None, list[str]]:
    """Parse a time cell: ``()`` for ``unknown``, else the candidate times (hours)."""
    text = text.strip()
    if text == C.UNKNOWN:
        return (), []
    values = []
    for part in text.split("|"):
        part = part.strip()
        if not re.fullmatch(_NUMBER, part):
            return None, [
                f"time {text!r} must be hours (a number), 'unknown' or candidates like '1|2|24'"
            ]
        value = float(part)
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            return None, [f"time {text!r} must be {bound} hours after treatment start"]
        values.append(value)
    if len(set(values)) != len(values):
        return None, [f"time candidates {text!r} repeat a value"]
    return tuple(sorted(values)), []


def parse_p_value(text: str) -> tuple[tuple[str, float] | None, list[str]]:
    """Parse ``0.04``, ``<0.01``, ``>0.05`` into (operator, number)."""
    match = _P_RE.match(text.strip())
    if not match:
        return None, [f"p value {text!r} must be a number, '<number' or '>number'"]
    value = float(match.group("number"))
    if not 0 < value <= 1:
        return None, [f"p value {text!r} must be in (0, 1]"]
    return (match.group("op") or "=", value), []


def check_source(text: str) -> list[str]:
    """A source must start with a DOI, PMCID, PMID or URL."""
    if _SOURCE_RE.match(text.strip()):
        return []
    return [
        f"source {text!r} must start with 'doi:10.…', 'PMC<digits>', 'PMID:<digits>' or "
        "'url:https://…', followed by the section or figure"
    ]


def parse_positive(text: str, what: str) -> tuple[float | None, list[str]]:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        return None, [f"{what} must be a number, got {text!r}"]
    if not math.isfinite(value) or value <= 0:
        return None, [f"{what} must be > 0, got {text!r}"]
    return value, []


def parse_calibration(text: str) -> tuple[tuple[tuple[float, float], ...] | None, list[str]]:
    """Parse ``<pixel>=<value>; <pixel>=<value>`` (two distinct points)."""
    points = []
    for part in text.split(";"):
        pixel, sep, value = (s.strip() for s in part.partition("="))
        try:
            points.append((float(pixel), float(value)))
        except ValueError:
            sep = ""
        if not sep:
            return None, [
                f"axis calibration {text!r} must be two points '<pixel>=<value>; <pixel>=<value>'"
            ]
    if len(points) != 2:
        return None, [f"axis calibration {text!r} needs exactly two points, got {len(points)}"]
    (p1, v1), (p2, v2) = points
    if p1 == p2 or v1 == v2:
        return None, [f"axis calibration {text!r}: the two points must differ in pixel and value"]
    return tuple(points), []


__all__ = [
    "Dose",
    "InputInfo",
    "Perturbations",
    "ROW_ID_RE",
    "STUDY_ID_RE",
    "Vocabulary",
    "check_source",
    "parse_calibration",
    "parse_dose",
    "parse_p_value",
    "parse_perturbations",
    "parse_positive",
    "parse_tiers",
    "parse_time",
]
