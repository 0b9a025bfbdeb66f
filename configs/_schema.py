"""The typed, frozen schema of il6rcc job configs.

Every section rejects unknown keys; names (model, variant, solver, sampler, cell line,
perturbation) are checked against registries when the file is loaded, so a typo fails
with the list of valid choices before any computation. Defaults live here, once.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..inference import Gates, LikelihoodSettings, MapSettings, NutsSettings, SviSettings
from ..models import Bolus, Condition, DosingSchedule, Exposure, SolverSettings
from ..models.circuit import COMPONENTS, VARIANTS

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _check_choice(value: str, valid, what: str) -> str:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(sorted(valid))}")
    return value


class VariantComponents(Section):
    """A circuit variant given by its components instead of by name (see
    :data:`il6rcc.models.circuit.COMPONENTS`)."""

    socs3_induction: str = "il6_loop"
    il6_receptor: str = "both"
    tki_action: str = "nfkb_il6"
    nfkb_activation: str = "akt"
    ifn_desensitisation: str = "socs3"
    adaptation: str = "none"

    @field_validator(*COMPONENTS)
    @classmethod
    def _component(cls, v: str, info) -> str:
        return _check_choice(v, COMPONENTS[info.field_name], info.field_name)


class ModelSection(Section):
    """Which model: an ODE model fitted to evidence tables, or a PEtab problem.

    ``name``: a built-in model (``rcc_circuit``) or ``path/to/file.py:ClassName``
    (relative to the config file's folder). ``variant``: a name from the circuit's
    variant registry, or its components. ``petab``: a PEtab problem YAML (relative to
    the config file's folder) instead: it brings its own model, data, bounds and priors.
    """

    name: str = "rcc_circuit"
    variant: str | VariantComponents = "main"
    petab: str | None = None

    @field_validator("variant")
    @classmethod
    def _variant(cls, v):
        if isinstance(v, str):
            return _check_choice(v, VARIANTS, "variant")
        return v

    @model_validator(mode="after")
    def _one_kind(self):
        if self.petab is not None and self.model_fields_set & {"name", "variant"}:
            raise ValueError(
                "give either petab (a PEtab problem) or name/variant (a model fitted to "
                "evidence tables), not both"
            )
        return self


def _default(dose: type, name: str):
    """The default of a field of a dose value object (kept there, once)."""
    return next(f.default for f in dataclasses.fields(dose) if f.name == name)


class BolusSpec(Section):
    """A :class:`~il6rcc.models.Bolus`: ``amount`` (the state's unit) added to
    ``state`` at ``time`` hours after treatment starts, ``count`` times ``every``
    hours. The value object checks the values (its message is the config's)."""

    state: str
    amount: float
    time: float = _default(Bolus, "time")
    every: float | None = _default(Bolus, "every")
    count: int = _default(Bolus, "count")

    @model_validator(mode="after")
    def _valid(self):
        self.to_dose()  # raises ModelSpecError, a ValueError: reported at this key
        return self

    def to_dose(self) -> Bolus:
        return Bolus(**self.model_dump())


class ExposureSpec(Section):
    """An :class:`~il6rcc.models.Exposure`: ``input`` held at ``level`` (the input's
    unit) from ``start`` (hours after treatment starts) until its wash-out
    ``duration`` hours later (null: never washed out), ``count`` times ``every``
    hours."""

    input: str
    level: float
    start: float = _default(Exposure, "start")
    duration: float | None = _default(Exposure, "duration")
    every: float | None = _default(Exposure, "every")
    count: int = _default(Exposure, "count")

    @model_validator(mode="after")
    def _valid(self):
        self.to_dose()
        return self

    def to_dose(self) -> Exposure:
        return Exposure(**self.model_dump())


class ScheduleSpec(Section):
    """A condition's :class:`~il6rcc.models.DosingSchedule`: its boluses, then its
    exposures. Names (states, inputs) are checked against the model at load."""

    boluses: list[BolusSpec] = Field(default_factory=list)
    exposures: list[ExposureSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.boluses and not self.exposures:
            raise ValueError("expected at least one entry under boluses or exposures")
        return self

    def to_schedule(self) -> DosingSchedule:
        return DosingSchedule(tuple(d.to_dose() for d in [*self.boluses, *self.exposures]))


class ExperimentSpec(Section):
    """One simulated condition: a cell line, perturbations (input name -> dose, held
    from treatment start to the end) and an optional dosing ``schedule``."""

    id: str
    cell_line: str
    perturbations: dict[str, float] = Field(default_factory=dict)
    schedule: ScheduleSpec | None = None

    def to_condition(self) -> Condition:
        schedule = None if self.schedule is None else self.schedule.to_schedule()
        return Condition(self.id, self.cell_line, dict(self.perturbations), schedule=schedule)


class PanelSpec(Section):
    """One figure panel: an observable of some experiments over time."""

    title: str
    observable: str
    experiments: list[str]
    relative_to: str | None = None


class SimulateSection(Section):
    """What ``il6rcc simulate`` runs (times in hours after treatment starts)."""

    times: list[PositiveFloat] = Field(
        default_factory=lambda: [0.25, 0.5, 1, 2, 4, 8, 12, 24, 36, 48, 72]
    )
    experiments: list[ExperimentSpec] = Field(default_factory=list)
    panels: list[PanelSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refs(self):
        ids = [e.id for e in self.experiments]
        problems = []
        if len(set(ids)) != len(ids):
            problems.append(f"experiment ids must be unique, got duplicates in {ids}")
        if sorted(self.times) != list(self.times) or len(set(self.times)) != len(self.times):
            problems.append(f"times must be strictly increasing, got {list(self.times)}")
        for panel in self.panels:
            for ref in [*panel.experiments, *([panel.relative_to] if panel.relative_to else [])]:
                if ref not in ids:
                    problems.append(f"panel {panel.title!r} names unknown experiment {ref!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DataSection(Section):
    """Which evidence is fitted.

    ``tables``: evidence TSV files (relative to the config); empty = the shipped tables.
    ``studies`` / ``cell_lines``: keep only these (empty = all). ``exclude_rows``: row ids
    left out entirely. ``holdout_rows``: row ids kept in the pointwise log-likelihood
    output but not fitted (exact leave-one-out and K-fold refits of ``il6rcc compare``).
    """

    tables: list[str] = Field(default_factory=list)
    digitised: list[str] = Field(default_factory=list)
    studies: list[str] = Field(default_factory=list)
    cell_lines: list[str] = Field(default_factory=list)
    exclude_rows: list[str] = Field(default_factory=list)
    holdout_rows: list[str] = Field(default_factory=list)


class PriorOverride(Section):
    """A prior replacing the model's default for one parameter (log-normal for
    log-scale parameters: ``median`` in the parameter's unit, ``log10_sd`` in decades)."""

    median: PositiveFloat | None = None
    log10_sd: PositiveFloat | None = None
    source: str = ""


class PriorSection(Section):
    """Priors and which parameters are estimated.

    ``estimate``: parameter names sampled (the rest fixed at their defaults);
    ``cell_line_specific``: the subset that varies by cell line through the non-centred
    hierarchy log theta_c = log theta + tau * z_c with tau ~ HalfNormal(``tau_scale``);
    ``tables``: prior tables (TSV: parameterId, median, log10_sd, source) applied in
    order, then ``overrides``; ``width_factor`` multiplies every default width.
    """

    estimate: list[str] = Field(default_factory=list)
    cell_line_specific: list[str] = Field(default_factory=list)
    tau_scale: PositiveFloat = 0.5
    tables: list[str] = Field(default_factory=list)
    overrides: dict[str, PriorOverride] = Field(default_factory=dict)
    width_factor: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _subset(self):
        extra = sorted(set(self.cell_line_specific) - set(self.estimate))
        if extra:
            raise ValueError(f"cell_line_specific names parameters not in estimate: {extra}")
        return self


class InferenceSection(Section):
    """Which method, its seed and its settings (each settings class is the library's
    own, see :mod:`il6rcc.inference`). ``checkpoint_every``: iterations between
    checkpoints of a NUTS run; ``prior_draws``: draws of the prior kept in the run's
    ``prior`` group (the first 20 also check how often the ODE solves fail)."""

    method: Literal["nuts", "svi", "map"] = "nuts"
    seed: NonNegativeInt = 0
    map: MapSettings = Field(default_factory=MapSettings)
    nuts: NutsSettings = Field(default_factory=NutsSettings)
    svi: SviSettings = Field(default_factory=SviSettings)
    checkpoint_every: PositiveInt = 50
    prior_draws: PositiveInt = 200


class CustomPrediction(Section):
    """One intervention to predict for any model: an observable at a time under
    ``inputs`` (model input name -> dose in the input's unit, held throughout) and an
    optional dosing ``schedule``, as a ratio to the same observable under ``control``
    (constant inputs, no schedule) when that is given (a fold change, like a data row)."""

    label: str
    cell_line: str
    inputs: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    control: dict[str, NonNegativeFloat] | None = None
    observable: str
    time: PositiveFloat
    schedule: ScheduleSpec | None = None

    def to_conditions(self, cid: str, line: str) -> tuple[Condition, Condition | None]:
        """The intervention (``inputs`` and ``schedule``) and its control (``control``
        alone, without the schedule; None when there is none) as conditions of cell
        line ``line``, with ids ``cid`` and ``cid-control``."""
        schedule = None if self.schedule is None else self.schedule.to_schedule()
        intervention = Condition(cid, line, dict(self.inputs), schedule=schedule)
        if self.control is None:
            return intervention, None
        return intervention, Condition(f"{cid}-control", line, dict(self.control))


class PredictSection(Section):
    """Interventions predicted from a posterior (``il6rcc predict``).

    ``standard``: the circuit's panel (IFN and TKI responses with tocilizumab, siRNAs,
    Bliss excess, share of resistance removed) for ``cell_lines``; it needs a model with
    the circuit's inputs. ``custom``: any further interventions, for any model.
    ``xenograft_days``: with ``standard``, days after the start of treatment at which
    tumour volume relative to vehicle is predicted under each in-vivo regimen of the
    evidence, at the regimen's posterior exposures ([] for none).
    """

    standard: bool = True
    custom: list[CustomPrediction] = Field(default_factory=list)
    xenograft_days: list[PositiveFloat] = Field(default_factory=lambda: [3.0, 7.0, 14.0, 21.0])

    cell_lines: list[str] = Field(default_factory=lambda: ["786-O", "ACHN"])
    ifn_dose: PositiveFloat = 1000.0
    tocilizumab_dose: PositiveFloat = 30.0
    tki: str = "sorafenib"
    tki_doses: list[PositiveFloat] = Field(default_factory=lambda: [0.5, 1.0, 5.0, 10.0])
    time: PositiveFloat = 72.0
    draws: PositiveInt = 200


#: Sections that only a model fitted to evidence tables uses (a PEtab problem brings
#: its own data and priors, and has no intervention panel).
EVIDENCE_ONLY = ("simulate", "data", "priors", "likelihood", "predict")


class RunConfig(Section):
    """A whole job. ``name`` labels the run; ``device``: ``cpu`` or ``gpu``.
    ``cpu_devices``: how many XLA devices the host CPU is split into, over which
    ``solver.batching: shard`` spreads the conditions of one log density: ``auto`` (the
    cores the process may use), an integer, or null (not set: JAX's default, one device;
    with ``batching: shard``, ``auto``). ``solver``: the ODE solver (default: the
    model's own; for a PEtab problem the tolerances 1e-8 its reference values were
    computed with)."""

    name: str = "il6rcc"
    device: Literal["cpu", "gpu"] = "cpu"
    cpu_devices: int | Literal["auto"] | None = None
    model: ModelSection = Field(default_factory=ModelSection)
    solver: SolverSettings | None = None
    simulate: SimulateSection = Field(default_factory=SimulateSection)
    data: DataSection = Field(default_factory=DataSection)
    priors: PriorSection = Field(default_factory=PriorSection)
    likelihood: LikelihoodSettings = Field(default_factory=LikelihoodSettings)
    inference: InferenceSection = Field(default_factory=InferenceSection)
    diagnostics: Gates = Field(default_factory=Gates)
    predict: PredictSection = Field(default_factory=PredictSection)

    @field_validator("cpu_devices", mode="before")
    @classmethod
    def _cpu_devices(cls, v):
        if v is None or v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            return v
        raise ValueError(
            "expected 'auto' (the cores this process may use), an integer >= 1 (XLA CPU "
            "devices) or null"
        )

    @model_validator(mode="after")
    def _shard_with_parallel_chains(self):
        if (
            self.solver is not None
            and self.solver.batching == "shard"
            and self.inference.nuts.chain_method == "parallel"
        ):
            raise ValueError(
                "solver.batching 'shard' spreads one chain's conditions over the devices, "
                "inference.nuts.chain_method 'parallel' puts one chain on each: choose one "
                "(batching 'vmap' with parallel chains, or chain_method 'sequential' with "
                "shard)"
            )
        return self

    def cpu_device_request(self) -> int | Literal["auto"] | None:
        """``cpu_devices`` as given, or ``auto`` when it is not and the solver shards."""
        if self.cpu_devices is None and self.solver is not None:
            return "auto" if self.solver.batching == "shard" else None
        return self.cpu_devices


__all__ = [
    "EVIDENCE_ONLY",
    "BolusSpec",
    "CustomPrediction",
    "DataSection",
    "ExperimentSpec",
    "ExposureSpec",
    "InferenceSection",
    "ModelSection",
    "PanelSpec",
    "PredictSection",
    "PriorOverride",
    "PriorSection",
    "RunConfig",
    "ScheduleSpec",
    "SimulateSection",
    "VariantComponents",
]
