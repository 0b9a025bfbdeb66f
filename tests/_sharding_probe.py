"""Run by tests/test_models_sharding.py in a process of its own: JAX fixes its device
count when it starts, and the test process has one CPU device.

``python tests/_sharding_probe.py PART...`` (parts: ``job``, ``batch``, ``scheduled``)
prints one JSON object: the devices the config's ``cpu_devices: 2`` gave, and values,
gradients and success flags of the same computations with ``solver.batching`` ``vmap``
and ``shard`` (a real job's log density, and batches of conditions with a failing one).
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


def simulated_batch(scheduled: bool) -> dict:
    """Conditions of a two-line InducibleGene, solved with an explicit solver and a
    small step budget: the condition of the ``fast`` line (k = 2e4 / h, stiff for
    Tsit5) runs out of steps and must come back as a failed solve, the others as
    solved. Three conditions (an odd count: padded to four over two devices); with
    ``scheduled``, three more with a bolus (the scheduled-solve path, a second batch of
    three). (The implicit solver, basal steady states and their gradients are covered
    by :func:`job_density`.)
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
            CellLine("fast", "k = 2e4 / h: stiff for an explicit solver", {"k": 4.0e4}),
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
        Condition("c2", "fast", {"inducer": 1.0}),
    ]
    if scheduled:
        conditions += [
            Condition(f"s{i}", "slow", {"inducer": u}, schedule=bolus)
            for i, u in enumerate((1.0, 3.0, 0.2))
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
                dose_values=None if batch.schedule is None else jnp.asarray(batch.dose_values),
                dose_times=None if batch.schedule is None else jnp.asarray(batch.dose_times),
            )

        def total(p):
            obs, _, ok, steps = simulate(p)
            return jnp.sum(jnp.where(ok[:, None, None], obs, 0.0)), (obs, ok, steps)

        # one program for values and gradient (one compile per batching)
        (_, (obs, ok, steps)), grad = jax.jit(jax.value_and_grad(total, has_aux=True))(params)
        return {
            "inducer": np.asarray(batch.arrays[0])[:, 0].tolist(),
            "times": times.tolist(),
            "obs": np.where(np.isnan(obs), -1.0, obs).tolist(),
            "nan": np.isnan(np.asarray(obs)).all(axis=(1, 2)).tolist(),
            "ok": np.asarray(ok).tolist(),
            "steps": np.asarray(steps).tolist(),
            "grad": np.asarray(grad).tolist(),
        }

    out = {}
    for batching in ("vmap", "shard"):
        out[batching] = run(SolverSettings(solver="tsit5", max_steps=64, batching=batching))
    out["row_names"] = list(batch.row_names)
    out["devices"] = jax.device_count()
    return out


PARTS = {
    "job": job_density,
    "batch": lambda: simulated_batch(scheduled=False),
    "scheduled": lambda: simulated_batch(scheduled=True),
}

if __name__ == "__main__":
    import time

    if "job" not in sys.argv[1:]:  # else the job's config sets them, as the CLI does
        runtime.use_cpu_devices(2)
    out = {}
    for part in sys.argv[1:]:
        start = time.perf_counter()
        out[part] = PARTS[part]()
        print(f"{part}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    json.dump(out, sys.stdout)
