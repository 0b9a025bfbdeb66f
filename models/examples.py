"""Small models with closed-form solutions, for tests and as templates for user models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from ._model import InputSpec, ObservableSpec, ODEModel, ParameterSpec


@dataclass(frozen=True)
class LinearDecay(ODEModel):
    """x' = -k x, x(0) = x0.  Closed form: x0 exp(-k t)."""

    name: ClassVar[str] = "linear_decay"
    states: ClassVar[tuple[str, ...]] = ("x",)
    parameters: ClassVar[tuple[ParameterSpec, ...]] = (
        ParameterSpec("k", 0.7, "1/h", "decay rate", "test model"),
        ParameterSpec("x0", 2.0, "a.u.", "initial amount", "test model"),
    )
    observables: ClassVar[tuple[ObservableSpec, ...]] = (ObservableSpec("x", "a.u.", "x"),)
    equilibrate: ClassVar[bool] = False

    def vector_field(self, t, y, params, inputs):
        return -params[0] * y

    def initial_guess(self, params, inputs):
        return jnp.stack([params[1]])

    def observe(self, t, y, params, inputs):
        return y


@dataclass(frozen=True)
class LinearTwoState(ODEModel):
    """A -> B -> (nothing): a' = -k1 a, b' = k1 a - k2 b, a(0) = a0, b(0) = 0.

    Closed form: a = a0 exp(-k1 t), b = a0 k1 / (k2 - k1) (exp(-k1 t) - exp(-k2 t)).
    """

    name: ClassVar[str] = "linear_two_state"
    states: ClassVar[tuple[str, ...]] = ("a", "b")
    parameters: ClassVar[tuple[ParameterSpec, ...]] = (
        ParameterSpec("k1", 1.3, "1/h", "conversion rate", "test model"),
        ParameterSpec("k2", 0.4, "1/h", "elimination rate", "test model"),
        ParameterSpec("a0", 5.0, "a.u.", "initial amount of A", "test model"),
    )
    observables: ClassVar[tuple[ObservableSpec, ...]] = (
        ObservableSpec("a", "a.u.", "A"),
        ObservableSpec("b", "a.u.", "B"),
        ObservableSpec("total", "a.u.", "A + B"),
    )
    equilibrate: ClassVar[bool] = False

    def vector_field(self, t, y, params, inputs):
        k1, k2 = params[0], params[1]
        return jnp.stack([-k1 * y[0], k1 * y[0] - k2 * y[1]])

    def initial_guess(self, params, inputs):
        return jnp.stack([params[2], 0.0 * params[2]])

    def observe(self, t, y, params, inputs):
        return jnp.stack([y[0], y[1], y[0] + y[1]])


@dataclass(frozen=True)
class InducibleGene(ODEModel):
    """Production and decay with an inducer: x' = a (1 + u) - k x.

    Basal state (u = 0): a / k (found by pre-equilibration). After the inducer is added
    at t = 0: x = a (1 + u) / k + (a / k - a (1 + u) / k) exp(-k t).
    """

    name: ClassVar[str] = "inducible_gene"
    states: ClassVar[tuple[str, ...]] = ("x",)
    parameters: ClassVar[tuple[ParameterSpec, ...]] = (
        ParameterSpec("a", 2.0, "a.u./h", "basal production", "test model"),
        ParameterSpec("k", 0.5, "1/h", "decay rate", "test model"),
    )
    inputs: ClassVar[tuple[InputSpec, ...]] = (InputSpec("inducer", "fold", "induction"),)
    observables: ClassVar[tuple[ObservableSpec, ...]] = (ObservableSpec("x", "a.u.", "x"),)

    def vector_field(self, t, y, params, inputs):
        return params[0] * (1.0 + inputs[0]) - params[1] * y

    def observe(self, t, y, params, inputs):
        return y


__all__ = ["InducibleGene", "LinearDecay", "LinearTwoState"]
