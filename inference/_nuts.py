"""NUTS on a :class:`~il6rcc.inference.Posterior`, driven chunk by chunk so that runs
can be checkpointed and resumed exactly.

numpyro's NUTS kernel runs on the posterior's log density through a one-site numpyro
model (``x`` with an improper flat prior and the log density as a factor, the data as
a dynamic argument), stepped with our own jitted ``lax.scan`` over a chunk of
iterations; every kept draw is recorded with :meth:`Posterior.record`. The whole
sampler state (position, gradient, adaptation state, PRNG key) is a pytree of
arrays: saving it after a chunk and continuing from it in another process gives the
same draws, bit for bit on CPU, as a run that never stopped.

Mass matrix: ``laplace`` uses the dense inverse Hessian at the MAP, fixed (only the
step size adapts during warmup); ``laplace_adapt`` starts from it and adapts it in
numpyro's warmup windows; ``dense``/``diag`` use numpyro's windowed adaptation from the
identity.
Chains: ``sequential`` runs them one after another, ``vectorized`` vmaps them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.infer import NUTS
from pydantic import ConfigDict, Field

from ..errors import Il6rccError
from ._posterior import BIG, Posterior

STAT_FIELDS = ("potential_energy", "energy", "diverging", "num_steps", "accept_prob", "step_size")


@dataclass(frozen=True)
class NutsSettings:
    """NUTS settings: the ``inference.nuts`` section of a job config (defaults here, once).

    ``mass_matrix``: ``laplace`` (dense, from the Hessian at the MAP, fixed),
    ``laplace_adapt`` (dense, starts from the Laplace matrix and is adapted in warmup
    windows), ``dense`` (adapted from the identity), or ``diag`` (adapted).
    ``chain_method``: ``sequential`` (one chain after the other; robust to failed
    solves), ``vectorized`` (all chains in one vmapped program; for GPUs) or
    ``parallel`` (one device per chain). ``max_init_attempts``: tries per chain to find
    a starting point near the MAP where the log density is finite.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    num_warmup: Annotated[int, Field(ge=0)] = 300
    num_samples: Annotated[int, Field(gt=0)] = 500
    num_chains: Annotated[int, Field(gt=0)] = 2
    chain_method: Literal["sequential", "vectorized", "parallel"] = "sequential"
    target_accept: Annotated[float, Field(gt=0, lt=1)] = 0.8
    max_tree_depth: Annotated[int, Field(gt=0)] = 8
    mass_matrix: Literal["laplace", "laplace_adapt", "dense", "diag"] = "laplace"
    max_init_attempts: Annotated[int, Field(gt=0)] = 20


def numpyro_model(posterior: Posterior):
    """A numpyro model whose only site ``x`` [dim] has the posterior's density (an
    improper flat prior plus the log density as a factor); call it with the data."""
    dim = posterior.dim

    def model(data):
        x = numpyro.sample("x", dist.ImproperUniform(constraints.real_vector, (), (dim,)))
        numpyro.factor("log_density", posterior.log_density(x, data))

    return model


def make_kernel(posterior: Posterior, settings: NutsSettings, inverse_mass_matrix=None) -> NUTS:
    given = settings.mass_matrix.startswith("laplace") and inverse_mass_matrix is not None
    fixed = given and settings.mass_matrix == "laplace"
    return NUTS(
        numpyro_model(posterior),
        inverse_mass_matrix=jnp.asarray(inverse_mass_matrix) if given else None,
        dense_mass=settings.mass_matrix in ("laplace", "laplace_adapt", "dense"),
        adapt_mass_matrix=not fixed,
        target_accept_prob=settings.target_accept,
        max_tree_depth=settings.max_tree_depth,
    )


class ChainRunner:
    """Steps NUTS chains on a posterior chunk by chunk.

    Args:
        posterior: the :class:`Posterior`.
        data: its data argument.
        settings: :class:`NutsSettings`.
        inverse_mass_matrix: dense matrix for ``mass_matrix='laplace'`` (fixed) or
            ``'laplace_adapt'`` (initial value).
    """

    def __init__(
        self, posterior: Posterior, data, settings: NutsSettings, inverse_mass_matrix=None
    ):
        self.posterior = posterior
        self.data = data
        self.settings = settings
        self.kernel = make_kernel(posterior, settings, inverse_mass_matrix)
        self._chunk_fns: dict = {}

    # ------------------------------------------------------------------ state
    def init(self, key, starts: np.ndarray) -> object:
        """Initial state of every chain (leading axis = chain) from ``starts``
        [n_chains, dim]."""
        keys = jax.random.split(key, self.settings.num_chains)
        states = [
            self.kernel.init(
                keys[c],
                self.settings.num_warmup,
                {"x": jnp.asarray(starts[c])},
                (self.data,),
                {},
            )
            for c in range(self.settings.num_chains)
        ]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *states)

    def _chunk_fn(self, n_iter: int, collect: bool):
        key = (n_iter, collect)
        if key in self._chunk_fns:
            return self._chunk_fns[key]
        kernel = self.kernel
        record = self.posterior.record

        def one_chain(state, data):
            def body(s, _):
                s = kernel.sample(s, (data,), {})
                stats = {
                    "potential_energy": s.potential_energy,
                    "energy": s.energy,
                    "diverging": s.diverging,
                    "num_steps": s.num_steps,
                    "accept_prob": s.accept_prob,
                    "step_size": s.adapt_state.step_size,
                }
                out = (stats, record(s.z["x"], data)) if collect else (stats, {})
                return s, out

            return jax.lax.scan(body, state, None, length=n_iter)

        if self.settings.chain_method == "vectorized":
            # lock-step chains in one program (GPU); note that a failed ODE solve in
            # one chain can make the others' proposals fail too (solver errors act on
            # the whole batch), so 'sequential' is the robust choice on CPU
            fn = jax.jit(jax.vmap(one_chain, in_axes=(0, None)))
        elif self.settings.chain_method == "parallel":
            n_dev = jax.local_device_count()
            if n_dev < self.settings.num_chains:
                raise Il6rccError(
                    f"chain_method 'parallel' needs one device per chain: {n_dev} device(s) "
                    f"for {self.settings.num_chains} chains; use 'sequential' or 'vectorized'"
                )
            fn = jax.pmap(one_chain, in_axes=(0, None))
        else:
            single = jax.jit(one_chain)

            def fn(states, data):
                outs = [
                    single(jax.tree.map(lambda x, c=c: x[c], states), data)
                    for c in range(self.settings.num_chains)
                ]
                return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

        self._chunk_fns[key] = fn
        return fn

    def advance(self, state, n_iter: int, collect: bool):
        """Run ``n_iter`` iterations of every chain. Returns (state, stats, draws) with
        arrays of shape [chain, n_iter, ...] (draws empty when ``collect`` is False)."""
        state, (stats, draws) = self._chunk_fn(n_iter, collect)(state, self.data)
        return state, stats, draws


def run_chains(
    runner: ChainRunner,
    state,
    done: int,
    chunk: int,
    on_chunk: Callable[[object, int, dict, dict, float], None] | None = None,
    progress: Callable[[str], None] | None = None,
    divergences: dict[str, int] | None = None,
):
    """Run warmup and sampling from iteration ``done`` (0 for a fresh run) to the end,
    ``chunk`` iterations per compiled call.

    ``on_chunk(state, done, stats, draws, seconds)`` is called after every chunk (the
    fit job saves a checkpoint there). ``divergences``: running counts
    ``{"warmup": .., "sampling": ..}`` (updated in place; a resumed run passes the
    counts it saved), which the progress lines report separately: only those after
    warmup are a gate. Returns the final state.
    """
    s = runner.settings
    total = s.num_warmup + s.num_samples
    counts = divergences if divergences is not None else {"warmup": 0, "sampling": 0}
    counts.setdefault("warmup", 0)
    counts.setdefault("sampling", 0)
    while done < total:
        phase = "warmup" if done < s.num_warmup else "sampling"
        phase_end = s.num_warmup if phase == "warmup" else total
        n = min(chunk, phase_end - done)
        t0 = time.perf_counter()
        state, stats, draws = runner.advance(state, n, phase == "sampling")
        jax.block_until_ready(state)
        seconds = time.perf_counter() - t0
        done += n
        counts[phase] += int(np.sum(np.asarray(stats["diverging"])))
        if on_chunk is not None:
            on_chunk(state, done, stats, draws, seconds)
        if progress is not None:
            steps = float(np.mean(np.asarray(stats["num_steps"])))
            rate = n / seconds if seconds > 0 else float("inf")
            eta = (total - done) / rate if rate > 0 else float("nan")
            progress(
                f"{phase:8s} {done:5d}/{total} iterations x {s.num_chains} chains | "
                f"{rate:5.2f} it/s | {steps:5.1f} leapfrog steps/it | divergences: "
                f"{counts['warmup']} in warmup, {counts['sampling']} after | "
                f"ETA {eta / 60:5.1f} min"
            )
    return state


def chain_starts(
    posterior: Posterior,
    data,
    key,
    x_map: np.ndarray,
    inverse_mass: np.ndarray,
    n_chains: int,
    max_attempts: int = 20,
    scale: float = 0.2,
    stride: int = 1000,
) -> np.ndarray:
    """Chain starting points around the MAP: ``x_map + scale * L z`` (L the Cholesky
    factor of the inverse mass matrix, z standard normal from ``fold_in(key, chain *
    stride + attempt)``), each accepted when the log density there is finite. At most
    ``max_attempts`` tries per chain, then a clear error. Returns [n_chains, dim]."""
    chol = np.linalg.cholesky(inverse_mass + 1e-12 * np.eye(len(x_map)))
    starts = []
    for chain in range(n_chains):
        for attempt in range(max_attempts):
            k = jax.random.fold_in(key, chain * stride + attempt)
            x = x_map + scale * chol @ np.asarray(jax.random.normal(k, (len(x_map),)))
            # the compiled gradient every method shares (a finite value: a finite density)
            if posterior.compiled.value_and_grad(x, data)[0] < BIG:
                starts.append(x)
                break
        else:
            raise Il6rccError(
                f"could not find a finite starting point for chain {chain + 1} in "
                f"{max_attempts} attempts around the MAP (every attempt had a failed ODE solve "
                f"or a non-finite log density); check the priors and solver settings"
            )
    return np.array(starts)


def state_to_arrays(state) -> dict[str, np.ndarray]:
    """Flatten a sampler state to named arrays (for ``np.savez``, no pickling)."""
    leaves = jax.tree.leaves(state)
    return {f"leaf_{i:03d}": np.asarray(_key_data(x)) for i, x in enumerate(leaves)}


def arrays_to_state(template, arrays: dict[str, np.ndarray]):
    """Rebuild a state saved with :func:`state_to_arrays` on a template's structure."""
    leaves, treedef = jax.tree.flatten(template)
    if len(leaves) != len(arrays):
        raise ValueError(f"checkpoint has {len(arrays)} arrays, sampler state has {len(leaves)}")
    new = []
    for i, like in enumerate(leaves):
        value = arrays[f"leaf_{i:03d}"]
        if jnp.issubdtype(getattr(like, "dtype", None), jax.dtypes.prng_key):
            new.append(jax.random.wrap_key_data(jnp.asarray(value)))
        else:
            new.append(jnp.asarray(value, dtype=like.dtype))
    return jax.tree.unflatten(treedef, new)


def _key_data(x):
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


__all__ = [
    "STAT_FIELDS",
    "ChainRunner",
    "NutsSettings",
    "arrays_to_state",
    "chain_starts",
    "make_kernel",
    "numpyro_model",
    "run_chains",
    "state_to_arrays",
]
