"""The one interface every fitting method works on: :class:`Posterior`.

A posterior is a log density of flat, unconstrained coordinates ``x`` [n] whose data
come in as an argument (so compiled programs depend on shapes, not values: the same
program serves other seeds, variants with the same shapes, held-out rows, or SBC
replicates), together with what a run records of each draw (natural-scale values,
the pointwise log-likelihood, posterior-predictive quantities), the names of the
coordinates and the layout of the run's DataTree.

Two adapters implement it: :class:`il6rcc.inference.EvidencePosterior` (any
:class:`~il6rcc.models.ODEModel` and evidence tables, e.g. the RCC circuit) and
:class:`il6rcc.petab_io.PetabPosterior` (a PEtab problem). MAP, Laplace, NUTS and
SVI are written once against this interface; a new problem type adds an adapter,
a new method adds one module.

Coordinates are standardised by each adapter so that the prior alone gives a
curvature of order one in every direction (a unit Normal for standardised
parameters, a unit Logistic for parameters uniform within bounds); the Laplace floor
and the MAP's start jitter are stated in those units.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from ._exported import PersistentFunction, identity

#: Value that stands for an infinite negative log density inside optimisers (a finite
#: number keeps line searches and finite differences free of NaN).
BIG = 1e30
#: Draws per compiled call of :meth:`CompiledPosterior.record`: every call has this
#: shape, so the prior check, Laplace or SVI draws and predictions share one program
#: (at the price of at most RECORD_BATCH - 1 padding evaluations).
RECORD_BATCH = 10


@dataclass(frozen=True)
class DrawLayout:
    """Where a posterior's recorded variables go in a run's DataTree.

    Attributes:
        posterior: variables of the ``posterior`` (and ``prior``) group, natural scale
            (PEtab problems: their estimation scale, named ``log10(...)`` etc.).
        log_likelihood: the pointwise log-likelihood variable (``log_likelihood`` group).
        predictive: variables of the ``posterior_predictive`` group.
        dims: dimension names of every variable (without chain and draw).
        coords: coordinate values of every dimension.
        observed: the ``observed_data`` group.
        observation_coords: extra coordinates on the observation dimension (name ->
            (dimension, values)), e.g. each row's study and kind.
    """

    posterior: tuple[str, ...]
    log_likelihood: str
    predictive: tuple[str, ...] = ()
    dims: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    coords: Mapping[str, Sequence] = field(default_factory=dict)
    observed: Mapping[str, np.ndarray] = field(default_factory=dict)
    observation_coords: Mapping[str, tuple[str, Sequence]] = field(default_factory=dict)


class Posterior(abc.ABC):
    """A posterior on flat unconstrained coordinates (see the module docstring).

    Subclasses implement the abstract members and nothing else; the concrete members
    below (compiled functions shared by every method) are final.
    """

    # ------------------------------------------------------------------ interface
    @property
    @abc.abstractmethod
    def coordinate_names(self) -> tuple[str, ...]:
        """A readable name of every coordinate of ``x``."""

    @property
    @abc.abstractmethod
    def layout(self) -> DrawLayout:
        """Where the recorded variables go in a DataTree."""

    @property
    @abc.abstractmethod
    def data(self):
        """The data argument the posterior was built with (a pytree of arrays)."""

    @abc.abstractmethod
    def initial_point(self) -> np.ndarray:
        """[n] the centre of the prior in ``x`` (the first MAP start)."""

    @abc.abstractmethod
    def log_density(self, x: jax.Array, data) -> jax.Array:
        """Log posterior density of ``x`` [n] (up to a constant; -inf where an ODE solve
        fails). Pure JAX, differentiable."""

    @abc.abstractmethod
    def log_likelihood(self, x: jax.Array, data) -> jax.Array:
        """The log-likelihood term of :meth:`log_density` (the fitted data's density
        without the prior; -inf where an ODE solve fails): what a profile likelihood
        optimises. Independent of the coordinates' parameterisation. Pure JAX."""

    @abc.abstractmethod
    def record(self, x: jax.Array, data) -> dict[str, jax.Array]:
        """Everything a run records of one draw, from one evaluation of the model: the
        :attr:`layout`'s variables, ``log_density`` and ``n_failed`` (failed solves)."""

    @abc.abstractmethod
    def natural(self, x: jax.Array, data) -> dict[str, jax.Array]:
        """The :attr:`layout`'s ``posterior`` variables of ``x`` without solving the model."""

    @abc.abstractmethod
    def prior_sample(self, key: jax.Array, n: int, data) -> np.ndarray:
        """[n, dim] draws from the prior, in ``x`` coordinates."""

    # ------------------------------------------------------------------ final helpers
    @property
    def dim(self) -> int:
        return len(self.coordinate_names)

    @cached_property
    def compiled(self) -> CompiledPosterior:
        """The compiled functions of this posterior, built once and shared by every
        method that uses it (MAP, Laplace, chain starts, importance checks)."""
        return CompiledPosterior(self)


class CompiledPosterior:
    """Jitted functions of one :class:`Posterior` (its data passed as an argument).

    ``value_and_grad(x, data)``: the negative log density and its gradient, with
    non-finite values replaced by (:data:`BIG`, 0) so that optimisers and finite
    differences see a wall, never a NaN; ``likelihood_value_and_grad(x, data)``: the same
    of the negative log-likelihood (compiled when first called). ``log_density(x, data)``.
    ``record(xs, data)``:
    :meth:`Posterior.record` of many draws, mapped one after the other (a failed solve
    of one draw cannot touch the others, as it can inside a vmapped batch).

    The functions that solve ODEs are :class:`~il6rcc.inference._exported.PersistentFunction`:
    their traced programs are kept on disk next to the compilation cache, so a later
    process (a resumed run, the next fit of a sweep) neither traces nor compiles them.
    """

    def __init__(self, posterior: Posterior):
        #: compiled objects of the methods (e.g. the MAP's BFGS stepper), by key
        self.cache: dict = {}

        def walled(log_fn):
            def safe_value_and_grad(x, data):
                value, grad = jax.value_and_grad(lambda y: -log_fn(y, data))(x)
                ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
                return jnp.where(ok, value, BIG), jnp.where(ok, grad, 0.0)

            return safe_value_and_grad

        def record_many(xs, data):
            return jax.lax.map(lambda x: posterior.record(x, data), xs)

        # functions that solve ODEs: traced once, then read back from disk by later
        # processes (see il6rcc.inference._exported)
        owner = functools.cache(lambda: identity(posterior))
        self._value_and_grad = PersistentFunction(
            "value_and_grad", walled(posterior.log_density), owner
        )
        self._likelihood_value_and_grad = PersistentFunction(
            "likelihood_value_and_grad", walled(posterior.log_likelihood), owner
        )
        self._log_density = PersistentFunction("log_density", posterior.log_density, owner)
        self._record = PersistentFunction("record", record_many, owner)
        self._natural = jax.jit(jax.vmap(posterior.natural, in_axes=(0, None)))

    def value_and_grad(self, x, data) -> tuple[float, np.ndarray]:
        value, grad = self._value_and_grad(jnp.asarray(x, dtype=jnp.float64), data)
        return float(value), np.asarray(grad)

    def likelihood_value_and_grad(self, x, data) -> tuple[float, np.ndarray]:
        value, grad = self._likelihood_value_and_grad(jnp.asarray(x, dtype=jnp.float64), data)
        return float(value), np.asarray(grad)

    def log_density(self, x, data) -> float:
        return float(self._log_density(jnp.asarray(x, dtype=jnp.float64), data))

    def record(self, xs, data) -> dict[str, np.ndarray]:
        """Recorded variables of draws ``xs`` [k, n]: arrays with a leading axis k."""
        xs = np.asarray(xs, dtype=np.float64)
        k = xs.shape[0]
        batch = RECORD_BATCH
        pad = (-k) % batch  # every call has the same shape: one compiled program
        padded = np.concatenate([xs, np.repeat(xs[-1:], pad, axis=0)]) if pad else xs
        parts = [
            self._record(jnp.asarray(padded[i : i + batch]), data)
            for i in range(0, len(padded), batch)
        ]
        return {key: np.concatenate([np.asarray(p[key]) for p in parts])[:k] for key in parts[0]}

    def natural(self, xs, data) -> dict[str, np.ndarray]:
        out = self._natural(jnp.asarray(xs, dtype=jnp.float64), data)
        return {k: np.asarray(v) for k, v in out.items()}


__all__ = ["BIG", "CompiledPosterior", "DrawLayout", "Posterior"]
