"""A process of tests/test_exported.py: evaluates the tiny job's posterior and prints
what it got as JSON (values, gradient, how many times the vector field was traced and
how the programs were obtained).

Usage: python tests/_export_child.py CONFIG [OVERRIDES_JSON]
"""

import json
import os
import sys

os.environ.setdefault("EQX_ON_ERROR", "nan")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from il6rcc import runtime  # noqa: E402

runtime.setup()

import numpy as np  # noqa: E402

from il6rcc.configs import load_config  # noqa: E402
from il6rcc.jobs import build_posterior  # noqa: E402
from il6rcc.models import ODEModel  # noqa: E402
from il6rcc.models.examples import InducibleGene  # noqa: E402

#: times the vector field was traced in this process
TRACES = 0


class CountedGene(ODEModel):
    """The tiny job's model (x' = a (1 + u) - k x), counting how often its vector field
    is traced."""

    name = "counted_gene"
    states = InducibleGene.states
    parameters = InducibleGene.parameters
    inputs = InducibleGene.inputs
    observables = InducibleGene.observables

    def vector_field(self, t, y, params, inputs):
        global TRACES
        TRACES += 1
        return params[0] * (1.0 + inputs[0]) - params[1] * y

    def observe(self, t, y, params, inputs):
        return y


def main(config: str, overrides: str = "{}") -> None:
    extra = {"model.name": f"{os.path.abspath(__file__)}:CountedGene", **json.loads(overrides)}
    posterior, _ = build_posterior(load_config(config, extra))
    compiled = posterior.compiled
    x = posterior.initial_point() + 0.1
    value, grad = compiled.value_and_grad(x, posterior.data)
    log_density = compiled.log_density(x, posterior.data)
    records = compiled.record(np.stack([x, x - 0.2]), posterior.data)
    functions = [compiled._value_and_grad, compiled._log_density, compiled._record]
    print(
        json.dumps(
            {
                "value": value,
                "grad": grad.tolist(),
                "log_density": log_density,
                "record": {k: np.asarray(v, dtype=float).tolist() for k, v in records.items()},
                # the config imports this file again, as the model's own module
                "traces": sys.modules[type(posterior.problem.model).__module__].TRACES,
                "hits": sum(f.hits for f in functions),
                "exports": sum(f.exports for f in functions),
                "fallbacks": sum(f.fallbacks for f in functions),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
