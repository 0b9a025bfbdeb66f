"""Run by tests/test_models_sharding.py in a process of its own: JAX fixes its device
count when it starts, and the test process has one CPU device.

Prints one JSON object: the devices the config's ``cpu_devices: 2`` gave, and values,
gradients and success flags of the same computations with ``solver.batching`` ``vmap``
and ``shard`` (a real job's log density, and a batch of conditions with a failing one).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from il6rcc import runtime

runtime.setup()

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "configs" / "sweeps" / "sbc" / "job.yaml"


def job_density() -> dict:
    """The SBC job's log density (FeedbackGene, its synthetic evidence) and gradient at
    its initial point and a point off it, from the same config built with each batching.
    ``cpu_devices`` is set by building the posterior, as the CLI does."""
    import jax
    import numpy as np

    from il6rcc.configs import load_config
    from il6rcc.jobs import build_posterior

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shard, info = build_posterior(
            load_config(JOB, {"cpu_devices": 2, "solver.batching": "shard"})
        )
    out = {
        "devices": jax.device_count(),
        "device_warnings": [str(w.message) for w in caught if "cpu_devices" in str(w.message)],
        "info_cpu_devices": info["cpu_devices"],
        "n_conditions": info["n_conditions"],
    }
    vmap, _ = build_posterior(load_config(JOB, {"solver.batching": "vmap"}))
    x0 = np.asarray(vmap.initial_point(), dtype=np.float64)
    for name, post in (("vmap", vmap), ("shard", shard)):
        fn = jax.jit(jax.value_and_grad(lambda x, d, p=post: p.log_density(x, d)))
        values, grads = [], []
        for x in (x0, x0 + 0.3):
            v, g = fn(x, post.data)
            values.append(float(v))
            grads.append(np.asarray(g).tolist())
        out[name] = {"values": values, "grads": grads}
    return out


def simulated_batch() -> dict:
    """Six conditions of InducibleGene solved in two batches of three (an odd count:
    each is padded to four over two devices): three without a schedule, three with a
    bolus (the scheduled-solve path); solved with an explicit solver and a small step budget: the condition of the
    ``fast`` line (k = 1e4, stiff for Tsit5) runs out of steps and must come back as a
    failed solve, the others as solved. Also with Kvaerno5, where all succeed.
    Returns observables, success flags and the gradient of the summed observables of
    the solved conditions with respect to the parameter rows."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from il6rcc.models import (
        Bolus,
        CellLine,
        Condition,
        DosingSchedule,
        ODEModel,
        SolverSettings,
        make_batch,
        simulate_arrays,
    )
    from il6rcc.models.examples import InducibleGene

    @dataclass(frozen=True)
    class TwoLines(ODEModel):
        """InducibleGene with a second cell line whose decay is stiff."""

        name: ClassVar[str] = "inducible_gene_two_lines"
        states = InducibleGene.states
        parameters = InducibleGene.parameters
        inputs = InducibleGene.inputs
        observables = InducibleGene.observables
        cell_lines: ClassVar[tuple[CellLine, ...]] = (
            CellLine("slow", "k = 0.5 / h"),
            CellLine("fast", "k = 1e4 / h: stiff for an explicit solver", {"k": 2.0e4}),
        )

        def vector_field(self, t, y, params, inputs):
            return params[0] * (1.0 + inputs[0]) - params[1] * y

        def observe(self, t, y, params, inputs):
            return y

    model = TwoLines()
    bolus = DosingSchedule((Bolus("x", 1.5, time=0.5),))
    conditions = [
        Condition("c0", "slow", {"inducer": 0.5}),
        Condition("c1", "slow", {"inducer": 2.0}),
        Condition("c2", "slow", {"inducer": 1.0}, schedule=bolus),
        Condition("c3", "fast", {"inducer": 1.0}),
        Condition("c4", "slow", {"inducer": 3.0}, schedule=bolus),
        Condition("c5", "slow", {"inducer": 0.2}, schedule=bolus),
    ]
    batch = make_batch(model, conditions)
    params = jnp.asarray(
        np.stack([model.default_params(r) for r in batch.row_names]), dtype=jnp.float64
    )
    times = np.array([0.25, 1.0, 3.0])

    def run(solver):
        def simulate(p):
            return simulate_arrays(
                model,
                solver,
                p,
                *(jnp.asarray(a) for a in batch.arrays),
                jnp.asarray(times),
                groups=batch.horizon_groups(times),
                schedule=batch.schedule,
                dose_values=jnp.asarray(batch.dose_values),
                dose_times=jnp.asarray(batch.dose_times),
            )

        def total(p):
            obs, _, ok, _ = simulate(p)
            return jnp.sum(jnp.where(ok[:, None, None], obs, 0.0))

        obs, _, ok, steps = jax.jit(simulate)(params)
        grad = jax.jit(jax.grad(total))(params)
        return {
            "obs": np.where(np.isnan(obs), -1.0, obs).tolist(),
            "nan": np.isnan(np.asarray(obs)).all(axis=(1, 2)).tolist(),
            "ok": np.asarray(ok).tolist(),
            "steps": np.asarray(steps).tolist(),
            "grad": np.asarray(grad).tolist(),
        }

    out = {}
    for solver_name, max_steps in (("tsit5", 64), ("kvaerno5", 4096)):
        for batching in ("vmap", "shard"):
            settings = SolverSettings(solver=solver_name, max_steps=max_steps, batching=batching)
            out[f"{solver_name}/{batching}"] = run(settings)
    out["row_names"] = list(batch.row_names)
    return out


if __name__ == "__main__":
    json.dump({"job": job_density(), "batch": simulated_batch()}, sys.stdout)
