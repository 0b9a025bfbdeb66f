"""The typed, frozen schema of sweep configs (``il6rcc sweep SWEEP.yaml --out DIR``).

A sweep of ``kind: fit`` (the default) names a base job config and the axes to vary;
every combination of axis values is one element, fitted as an ordinary run folder. A
sweep of ``kind: profile`` names a finished run folder (``run``) and one axis,
``{parameter: [...]}``: each element is the profile likelihood of one parameter of that
run (``il6rcc profile``), merged into one ``profiles.csv`` / ``profiles.md`` afterwards.
Unknown keys are rejected with the valid choices; every axis key is checked against the
job schema, and every value by validating the job config it produces
(:mod:`il6rcc.jobs.sweep`).
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


class ParameterAxis(Section):
    """The parameters of a profile sweep (``kind: profile``), one element each:
    ``{parameter: [k_a, k_b]}``; names as in the run's ``map.csv`` (PEtab: parameter
    ids). A name the run does not have fails its element (recorded in sweep.csv), not
    the sweep."""

    parameter: list[str] = Field(min_length=1)
    label: str = "parameter"

    @field_validator("parameter")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        repeated = sorted({n for n in v if v.count(n) > 1})
        if repeated:
            raise ValueError(f"each parameter once; repeated: {repeated}")
        blank = [n for n in v if not n.strip()]
        if blank:
            raise ValueError("expected parameter names, got an empty name")
        return v

    @property
    def axis_label(self) -> str:
        return self.label

    def display_names(self) -> list[str]:
        return [NAME_SAFE.sub("-", n).strip("-") or "-" for n in self.parameter]


def _axis_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "sbc" in value:
            return "sbc axis"
        return "parameter axis" if "parameter" in value else "values axis"
    if isinstance(value, SbcAxis):
        return "sbc axis"
    return "parameter axis" if isinstance(value, ParameterAxis) else "values axis"


#: an axis is an SBC axis when it has the key ``sbc``, a parameter axis (profile
#: sweeps) when it has the key ``parameter``, else a values axis
Axis = Annotated[
    Annotated[ValuesAxis, Tag("values axis")]
    | Annotated[SbcAxis, Tag("sbc axis")]
    | Annotated[ParameterAxis, Tag("parameter axis")],
    Discriminator(_axis_kind),
]


class ProfileOptions(Section):
    """How each profile of a ``kind: profile`` sweep walks (``il6rcc profile``'s
    options): ``grid``: that many equally spaced values across the prior's range
    instead of the adaptive step; ``max_points``: points per side at most."""

    grid: Annotated[int, Field(ge=2)] | None = None
    max_points: PositiveInt = 30


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

    ``kind``: ``fit`` (each element an ``il6rcc fit`` run folder; the default) or
    ``profile`` (each element the profile of one parameter of the run folder ``run``).
    ``base``: the job config every element starts from (relative to the sweep file).
    ``set``: job-config keys (dotted) given the same value in every element.
    ``axes``: what varies; ``combine``: ``product`` (every combination) or ``zip``
    (the i-th value of every axis together; equal lengths). ``then``: steps run over
    the finished elements: ``compare`` (``il6rcc compare`` -> DIR/compare/), ``sbc``
    (rank statistics of an SBC axis -> DIR/sbc/), ``report`` (the mechanism report,
    ``il6rcc report-mechanisms`` -> ``report_out``; after ``compare``).
    ``compare_by``: axis labels; ``compare`` then compares the elements within each
    combination of their values (DIR/compare/<label>=<value>/), e.g. per likelihood
    weighting, since runs fitted to differently weighted likelihoods are not rivals.
    ``compare_refit``: ``auto`` (rows whose Pareto k is too high are refitted, as
    ``il6rcc compare`` does) or ``none`` (they are only reported).
    ``report_out``: where ``report`` writes (relative to the sweep file; default
    DIR/report).

    ``kind: profile`` takes ``run`` (a finished run folder, relative to the sweep
    file), ``profile`` (:class:`ProfileOptions`) and one axis ``{parameter: [...]}``,
    and no ``base``, ``set`` or ``then``: its elements are merged into DIR/profiles.csv,
    DIR/profiles.md and DIR/figures/ after every run of the sweep.
    """

    name: str = "sweep"
    kind: Literal["fit", "profile"] = "fit"
    base: str | None = None
    run: str | None = None
    profile: ProfileOptions | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    axes: list[Axis] = Field(min_length=1)
    combine: Literal["product", "zip"] = "product"
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    then: list[Literal["compare", "sbc", "report"]] = Field(default_factory=list)
    compare_by: list[str] = Field(default_factory=list)
    compare_refit: Literal["auto", "none"] = "auto"
    report_out: str | None = None
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
        problems += kind_problems(
            self.kind,
            {k for k in ("base", "run", "profile") if getattr(self, k) is not None},
            list(self.set),
            [_axis_kind(a) for a in self.axes],
            list(self.then),
        )
        keys = [a.key for a in self.axes if isinstance(a, ValuesAxis)]
        dup = sorted({k for k in keys if keys.count(k) > 1} | (set(keys) & set(self.set)))
        if dup:
            problems.append(f"keys varied twice (by two axes or by an axis and 'set'): {dup}")
        n_sbc = sum(isinstance(a, SbcAxis) for a in self.axes)
        if n_sbc > 1:
            problems.append("at most one sbc axis")
        if "sbc" in self.then and not n_sbc:
            problems.append("then: 'sbc' needs an sbc axis")
        unknown = [c for c in self.compare_by if c not in labels]
        if unknown:
            problems.append(f"key compare_by: got {unknown}; expected axis labels of {labels}")
        if "report" in self.then and "compare" not in self.then[: self.then.index("report")]:
            problems.append(
                f"key then: got {list(self.then)}; 'report' reads compare's outputs: put "
                "'compare' before it"
            )
        if self.combine == "zip":
            lengths = {_axis_length(a) for a in self.axes}
            if len(lengths) > 1:
                problems.append(f"combine 'zip' needs axes of equal length, got {sorted(lengths)}")
        if problems:
            raise ValueError(_JOIN.join(problems))
        return self


#: joins the problems of one model-level check (split again into lines when reported)
_JOIN = " | "


def _axis_length(axis) -> int:
    if isinstance(axis, ValuesAxis):
        return len(axis.values)
    if isinstance(axis, SbcAxis):
        return axis.sbc.replicates
    return len(axis.parameter)


def kind_problems(
    kind: Any,
    keys: set[str],
    set_keys: list[str],
    axes: list[str],
    then: list[Any],
) -> list[str]:
    """The keys that do not fit the sweep's ``kind`` (each saying what to do).
    ``keys``: the top-level keys given (not None); ``axes``: each axis's kind
    (``values axis``, ``sbc axis``, ``parameter axis``)."""
    problems = []
    n_param = axes.count("parameter axis")
    if kind == "fit":
        if "base" not in keys:
            problems.append(
                "key base: required key is missing; kind 'fit' needs the job config every "
                "element starts from (or kind: profile with run: RUN_DIR to profile a run)"
            )
        for key in ("run", "profile"):
            if key in keys:
                problems.append(f"key {key}: only for kind 'profile' (this sweep's kind is 'fit')")
        if n_param:
            problems.append("key axes: a {parameter: [...]} axis needs kind: profile and run")
        return problems
    if kind != "profile":
        return problems  # reported by the schema
    if "run" not in keys:
        problems.append(
            "key run: required key is missing; kind 'profile' needs the finished run folder "
            "whose parameters are profiled (the --out of 'il6rcc fit')"
        )
    if "base" in keys:
        problems.append(
            "key base: kind 'profile' takes no base config (the run folder's own "
            "config.yaml rebuilds its posterior); remove it"
        )
    if set_keys:
        problems.append(f"key set: got {sorted(set_keys)}; kind 'profile' sets no job-config keys")
    if n_param != 1 or len(axes) != 1:
        others = [a for a in axes if a != "parameter axis"]
        problems.append(
            f"key axes: kind 'profile' takes exactly one axis, {{parameter: [NAME, ...]}}; got "
            f"{n_param} parameter axes and {len(others)} other axes"
        )
    if then:
        problems.append(
            f"key then: got {list(then)}; kind 'profile' takes none (its elements are "
            "merged into profiles.csv and profiles.md after every run of the sweep)"
        )
    return problems


def _raw_kind_problems(data: Any) -> list[str]:
    """:func:`kind_problems` of a sweep file's raw mapping (used when the schema fails,
    so that these problems are reported in the same pass)."""
    if not isinstance(data, dict):
        return []
    axes = data.get("axes") if isinstance(data.get("axes"), list) else []
    set_keys = data.get("set") if isinstance(data.get("set"), dict) else {}
    then = data.get("then") if isinstance(data.get("then"), list) else []
    return kind_problems(
        data.get("kind", "fit"),
        {k for k, v in data.items() if v is not None},
        list(set_keys),
        [_axis_kind(a) for a in axes],
        then,
    )


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file; :class:`ConfigError` lists every problem (file,
    dotted key, value received, what is expected)."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            if e["loc"]:
                continue
            # a whole-sweep check (axes, kind): one line per problem, not the whole file
            msg = e["msg"].removeprefix("Value error, ")
            lines += [f"{path}: {m}" for m in msg.split(_JOIN)]
        if not lines:  # the field errors stopped the whole-sweep checks: run them here
            lines = [f"{path}: {m}" for m in _raw_kind_problems(data)]
        # the axis kind pydantic chose is not a key of the file: drop it from the key
        fields = [ln for ln in format_validation_error(str(path), err).splitlines()]
        fields = [ln for ln in fields if not ln.startswith(f"{path}: key : ")]
        for tag in (".values axis", ".sbc axis", ".parameter axis"):
            fields = [ln.replace(tag, "") for ln in fields]
        raise ConfigError("\n".join(fields + lines)) from None


__all__ = [
    "Axis",
    "ExecutorSection",
    "ParameterAxis",
    "ProfileOptions",
    "SbcAxis",
    "SbcSpec",
    "SlurmSection",
    "SweepConfig",
    "ValuesAxis",
    "key_problem",
    "kind_problems",
    "load_sweep_config",
]
