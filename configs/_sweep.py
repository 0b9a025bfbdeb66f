"""The typed, frozen schema of sweep configs (``il6rcc sweep SWEEP.yaml --out DIR``).

A sweep names a base job config and the axes to vary; every combination of axis values
is one element, fitted as an ordinary run folder. Unknown keys are rejected with the
valid choices; every axis key is checked against the job schema, and every value by
validating the job config it produces (:mod:`il6rcc.jobs.sweep`).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError
from ._load import _read_yaml, format_validation_error
from ._schema import RunConfig

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]

#: the columns of sweep.csv besides one per axis (axis labels may not repeat them)
INDEX_COLUMNS = (
    "element",
    "status",
    "action",
    "attempts",
    "wall_seconds",
    "gates",
    "error",
    "run_dir",
    "log",
)
#: characters allowed in an element's folder name (others become '-')
NAME_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def key_problem(dotted: str) -> str | None:
    """Why ``dotted`` is not a key of the job schema (None when it is one), naming the
    valid keys at the level where it goes wrong."""
    fields: dict[str, Any] | None = _section_fields(RunConfig)
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if fields is None:
            where = ".".join(parts[:i])
            return f"{where!r} takes a value, not sub-keys (got {dotted!r})"
        if part not in fields:
            where = ".".join(parts[:i]) or "the top level"
            return (
                f"unknown key {part!r} at {where} of a job config; valid: "
                f"{', '.join(sorted(fields))}"
            )
        fields = _section_fields(fields[part])
    return None


def _section_fields(annotation) -> dict[str, Any] | None:
    """Field name -> annotation of a config section: a pydantic model, or a library
    settings dataclass validated through pydantic (``MapSettings``, ``SolverSettings``
    ...), ``X | None`` included; None for a plain value."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return {name: f.annotation for name, f in candidate.model_fields.items()}
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            hints = typing.get_type_hints(candidate)
            return {f.name: hints.get(f.name) for f in dataclasses.fields(candidate)}
    return None


class ValuesAxis(Section):
    """Vary one job-config key (dotted path, e.g. ``model.variant``, ``inference.seed``,
    ``priors.width_factor``) over ``values``. ``label`` names the axis in folder names
    and in sweep.csv (default: the key's last part); ``names`` (optional, one per value)
    replaces the values in folder names, e.g. for mapping values."""

    key: str
    values: list[Any] = Field(min_length=1)
    label: str | None = None
    names: list[str] | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        problem = key_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _names(self):
        if self.names is not None and len(self.names) != len(self.values):
            raise ValueError(
                f"names has {len(self.names)} entries for {len(self.values)} values; "
                "give one name per value"
            )
        return self

    @property
    def axis_label(self) -> str:
        return self.label or self.key.rsplit(".", 1)[-1]

    def display_names(self) -> list[str]:
        raw = self.names if self.names is not None else [_plain(v) for v in self.values]
        return [NAME_SAFE.sub("-", str(n)).strip("-") or "-" for n in raw]


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return "-".join(_plain(v) for v in (value.values() if isinstance(value, dict) else value))
    return str(value)


class SbcSpec(Section):
    """Simulation-based calibration (Talts et al. 2018): ``replicates`` data sets, each
    simulated from the model at parameters drawn from the prior (PRNG key from
    ``seed`` and the replicate's index), each fitted as one element. Every data row of
    the base config must be a quantitative value row (directions and other qualitative
    rows have no simulator yet)."""

    replicates: PositiveInt
    seed: NonNegativeInt = 0
    label: str = "replicate"


class SbcAxis(Section):
    """The SBC replicate axis: ``{sbc: {replicates: 60, seed: 2018}}``."""

    sbc: SbcSpec

    @property
    def axis_label(self) -> str:
        return self.sbc.label


def _axis_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "sbc axis" if "sbc" in value else "values axis"
    return "sbc axis" if isinstance(value, SbcAxis) else "values axis"


#: an axis is an SBC axis when it has the key ``sbc``, else a values axis
Axis = Annotated[
    Annotated[ValuesAxis, Tag("values axis")] | Annotated[SbcAxis, Tag("sbc axis")],
    Discriminator(_axis_kind),
]


class SlurmSection(Section):
    """Slurm resources of every element (one array task each), submitted by submitit.

    ``time_min``: the wall-clock limit of one attempt; an element that reaches it (or is
    preempted) is requeued and resumes from its checkpoint, at most ``max_requeues``
    times for time-outs. ``setup``: shell lines run before the element (``module load
    ...``, ``source venv/bin/activate``). ``python``: the interpreter on the nodes
    (default: the one running ``il6rcc sweep``). ``additional``: further sbatch options
    (e.g. ``{account: lab, qos: normal, constraint: a100}``)."""

    partition: str | None = None
    time_min: PositiveInt = 60
    cpus_per_task: PositiveInt = 2
    gpus_per_node: NonNegativeInt = 0
    mem_gb: PositiveInt = 8
    array_parallelism: PositiveInt = 64
    max_requeues: NonNegativeInt = 3
    signal_delay_s: PositiveInt = 120
    setup: list[str] = Field(default_factory=list)
    python: str | None = None
    additional: dict[str, str | int] = Field(default_factory=dict)
    poll_seconds: Annotated[float, Field(gt=0)] = 15.0

    @model_validator(mode="after")
    def _signal_before_limit(self):
        if self.signal_delay_s >= self.time_min * 60:
            raise ValueError(
                f"signal_delay_s ({self.signal_delay_s} s) must be shorter than time_min "
                f"({self.time_min} min): it is how long before the limit the task is told "
                "to stop"
            )
        return self


class ExecutorSection(Section):
    """Where elements run. ``kind``: ``local`` (a pool of ``jobs`` processes on this
    machine) or ``slurm`` (job arrays through submitit). ``il6rcc sweep --executor`` and
    ``--jobs`` override these."""

    kind: Literal["local", "slurm"] = "local"
    jobs: PositiveInt = 1
    slurm: SlurmSection = Field(default_factory=SlurmSection)


class SweepConfig(Section):
    """A sweep.

    ``base``: the job config every element starts from (relative to the sweep file).
    ``set``: job-config keys (dotted) given the same value in every element.
    ``axes``: what varies; ``combine``: ``product`` (every combination) or ``zip``
    (the i-th value of every axis together; equal lengths). ``then``: steps run over
    the finished elements: ``compare`` (``il6rcc compare`` -> DIR/compare/), ``sbc``
    (rank statistics of an SBC axis -> DIR/sbc/).
    """

    name: str = "sweep"
    base: str
    set: dict[str, Any] = Field(default_factory=dict)
    axes: list[Axis] = Field(min_length=1)
    combine: Literal["product", "zip"] = "product"
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    then: list[Literal["compare", "sbc"]] = Field(default_factory=list)
    sbc_thin: PositiveInt = 1

    @field_validator("set")
    @classmethod
    def _set_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        problems = [f"{k}: {p}" for k in v if (p := key_problem(k))]
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @model_validator(mode="after")
    def _axes(self):
        problems = []
        labels = [a.axis_label for a in self.axes]
        if len(set(labels)) != len(labels):
            problems.append(f"axis labels must be unique, got {labels}; set 'label'")
        taken = sorted(set(labels) & set(INDEX_COLUMNS))
        if taken:
            problems.append(f"axis labels {taken} are sweep.csv columns; set another 'label'")
        keys = [a.key for a in self.axes if isinstance(a, ValuesAxis)]
        dup = sorted({k for k in keys if keys.count(k) > 1} | (set(keys) & set(self.set)))
        if dup:
            problems.append(f"keys varied twice (by two axes or by an axis and 'set'): {dup}")
        n_sbc = sum(isinstance(a, SbcAxis) for a in self.axes)
        if n_sbc > 1:
            problems.append("at most one sbc axis")
        if "sbc" in self.then and not n_sbc:
            problems.append("then: 'sbc' needs an sbc axis")
        if self.combine == "zip":
            lengths = {
                len(a.values) if isinstance(a, ValuesAxis) else a.sbc.replicates for a in self.axes
            }
            if len(lengths) > 1:
                problems.append(f"combine 'zip' needs axes of equal length, got {sorted(lengths)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file; :class:`ConfigError` lists every problem (file,
    dotted key, value received, what is expected)."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as err:
        # the axis kind pydantic chose is not a key of the file: drop it from the key
        lines = format_validation_error(str(path), err).splitlines()
        lines = [ln.replace(".values axis", "").replace(".sbc axis", "") for ln in lines]
        raise ConfigError("\n".join(lines)) from None


__all__ = [
    "Axis",
    "ExecutorSection",
    "SbcAxis",
    "SbcSpec",
    "SlurmSection",
    "SweepConfig",
    "ValuesAxis",
    "key_problem",
    "load_sweep_config",
]
