"""A process that compiles and runs a few il6rcc programs with the persistent
compilation cache of ``$IL6RCC_JAX_CACHE``, and prints what it computed and how often
the cache was used, as JSON (see test_runtime_cache.py)."""

import json
import sys
import time

from il6rcc import runtime

runtime.setup()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from il6rcc.models import (  # noqa: E402
    Condition,
    SolverSettings,
    load_model,
    make_batch,
    simulate_arrays,  # noqa: E402
)

events: dict[str, int] = {}


def listen(name: str, **kwargs) -> None:
    if name.startswith("/jax/compilation_cache/"):
        events[name] = events.get(name, 0) + 1


jax.monitoring.register_event_listener(listen)

model = load_model("linear_two_state")
batch = make_batch(model, [Condition("a", "default"), Condition("b", "default")])
times = jnp.array([0.5, 1.0, 2.0])
arrays = [jnp.asarray(x) for x in batch.arrays]
out = {}
start = time.perf_counter()
rows = jnp.asarray([model.default_params()])
obs, _, ok, _ = simulate_arrays(model, SolverSettings(solver="bdf"), rows, *arrays, times)
out["observables"] = np.asarray(obs).ravel().tolist()
out["seconds"] = time.perf_counter() - start
out["events"] = events
json.dump(out, sys.stdout)
