"""How the independent solves of a batch of conditions are laid out on the hardware.

``vmap`` solves every condition in one vectorised, lock-step loop; ``map`` one after
another; ``shard`` splits the batch over the process's JAX devices (on CPU: the XLA
host devices asked for with ``cpu_devices``, see :func:`il6rcc.runtime.use_cpu_devices`),
each device running the vectorised loop on its share.

``shard`` pads the batch to a multiple of the device count by repeating its first
condition (a real one, so the padding solves like the rest), constrains the batch axis
to be split over a one-dimensional device mesh and lets XLA's SPMD partitioner divide
the vectorised solve between the devices; the padded outputs are dropped, so they get
no gradient. The loop stays lock-step across devices (one while loop, its stopping test
reduced over all of them), as under ``vmap``: the per-condition failure flags and step
counts mean the same.

Why not ``jax.shard_map``: inside its manual-axes trace, the avals carry the mesh in
their sharding, and equinox's closure conversion and lineax's operator structure checks
(the implicit solvers' root finders go through both) compare shape-dtype structures
including that sharding with ones built outside it; the solve fails to trace
("Closure-converted function called with different dynamic arguments", "pytree does
not match out_structure"; equinox 0.13, lineax 0.1, JAX 0.12). The partitioner's split
has the same per-device work and differentiates like ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

Batching = Literal["vmap", "map", "shard"]

#: The batching names :class:`~il6rcc.models.SolverSettings` accepts.
BATCHING: tuple[str, ...] = ("vmap", "map", "shard")

#: Name of the device mesh axis the conditions are split along.
SHARD_AXIS = "conditions"


def shard_count(n_conditions: int) -> int:
    """Devices a batch of ``n_conditions`` is split over under ``shard``: the default
    backend's local devices, at most one per condition."""
    return max(1, min(jax.local_device_count(), n_conditions))


def batched(fn: Callable, batching: str) -> Callable:
    """``fn`` (one condition's arrays -> a pytree of arrays) mapped over the leading
    axis of all its arguments, laid out as ``batching`` says (see the module)."""
    if batching == "vmap":
        return jax.vmap(fn)
    if batching == "map":
        return lambda *xs: jax.lax.map(lambda a: fn(*a), xs)
    if batching == "shard":
        return _sharded(fn)
    raise ValueError(f"batching {batching!r} is unknown; valid: {', '.join(BATCHING)}")


def _sharded(fn: Callable) -> Callable:
    def run(*xs):
        n = jax.tree.leaves(xs)[0].shape[0]
        n_dev = shard_count(n)
        if n_dev == 1:  # one device: exactly the vectorised loop
            return jax.vmap(fn)(*xs)
        n_pad = -n % n_dev
        if n_pad:
            xs = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], n_pad, axis=0)]), xs)
        mesh = jax.sharding.Mesh(np.asarray(jax.local_devices()[:n_dev]), (SHARD_AXIS,))
        split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(SHARD_AXIS))
        out = jax.vmap(fn)(*jax.lax.with_sharding_constraint(xs, split))
        out = jax.lax.with_sharding_constraint(out, split)
        return jax.tree.map(lambda y: y[:n], out) if n_pad else out

    return run


__all__ = ["BATCHING", "SHARD_AXIS", "Batching", "batched", "shard_count"]
