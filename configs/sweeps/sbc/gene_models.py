"""Two structural variants of a gene with an inducer and an siRNA: the reduced model of
the simulation-based calibration sweep (``configs/sweeps/sbc.yaml``), also the model of
the tests of model comparison, prediction, user model files and the mechanism report
(``tests/fixtures/compare_job/job.yaml`` is their job).

x' = a (1 + u) (1 - kd s) / (1 + f x / K) - k x, with u the inducer (fold), s the siRNA
(indicator, established before treatment), kd the knock-down efficiency and f the
structural switch: 1 for FeedbackGene (x represses its own production), 0 for PlainGene.
Without feedback the steady-state fold change of the inducer is exactly 1 + u whatever
a and k are; with feedback it is smaller, so data simulated from one variant cannot be
fitted by the other.
"""

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from il6rcc.models import InputSpec, ObservableSpec, ODEModel, ParameterSpec

_COMMON = (
    ParameterSpec("a", 2.0, "a.u./h", "basal production", "synthetic test model"),
    ParameterSpec("k", 0.5, "1/h", "decay rate", "synthetic test model"),
    ParameterSpec("K", 1.0, "a.u.", "feedback threshold", "synthetic test model"),
    ParameterSpec(
        "kd", 0.8, "1", "siRNA knock-down efficiency", "synthetic test model", scale="logit"
    ),
)


class _Gene(ODEModel):
    """What both variants share; abstract (``name`` and ``parameters`` are left to the
    variants), so that each variant is a final model of its own."""

    states: ClassVar[tuple[str, ...]] = ("x",)
    inputs: ClassVar[tuple[InputSpec, ...]] = (
        InputSpec("inducer", "fold", "induction"),
        InputSpec(
            "si_gene", "indicator", "siRNA against the gene", pretreatment=True, indicator=True
        ),
    )
    observables: ClassVar[tuple[ObservableSpec, ...]] = (ObservableSpec("x", "a.u.", "x"),)

    def vector_field(self, t, y, params, inputs):
        a, k, big_k, kd, f = (params[i] for i in range(5))
        production = a * (1.0 + inputs[0]) * (1.0 - kd * inputs[1])
        return jnp.atleast_1d(production / (1.0 + f * y[0] / big_k) - k * y[0])

    def observe(self, t, y, params, inputs):
        return y


def _switch(value: float) -> ParameterSpec:
    return ParameterSpec(
        "f",
        value,
        "1",
        "feedback switch (structural)",
        "synthetic test model",
        scale="lin",
        estimable=False,
    )


@dataclass(frozen=True)
class FeedbackGene(_Gene):
    name: ClassVar[str] = "feedback_gene"
    parameters: ClassVar[tuple[ParameterSpec, ...]] = (*_COMMON, _switch(1.0))


@dataclass(frozen=True)
class PlainGene(_Gene):
    name: ClassVar[str] = "plain_gene"
    parameters: ClassVar[tuple[ParameterSpec, ...]] = (*_COMMON, _switch(0.0))
