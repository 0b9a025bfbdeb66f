"""A process of tests/test_exported.py: evaluates the tiny job's posterior (with
:class:`CountedGene`) and prints what it got as JSON: values, gradient, records, how
often the vector field was traced and how the programs were obtained.

Usage: python tests/_export_child.py CONFIG [OVERRIDES_JSON]
"""

import json
import os
import sys
from pathlib import Path

MODEL = f"{Path(__file__).with_name('_counted_gene.py')}:CountedGene"


def evaluate(config: str, overrides: dict | None = None, *, full: bool = True):
    """The tiny job's posterior and its compiled functions' results at a fixed point
    (``full=False``: only ``value_and_grad``)."""
    import numpy as np

    from il6rcc.configs import load_config
    from il6rcc.jobs import build_posterior

    posterior, _ = build_posterior(load_config(config, {"model.name": MODEL, **(overrides or {})}))
    compiled = posterior.compiled
    x = posterior.initial_point() + 0.1
    value, grad = compiled.value_and_grad(x, posterior.data)
    out = {"value": value, "grad": grad.tolist()}
    functions = [compiled._value_and_grad]
    if full:
        records = compiled.record(np.stack([x, x - 0.2]), posterior.data)
        out["log_density"] = compiled.log_density(x, posterior.data)
        out["record"] = {k: np.asarray(v, dtype=float).tolist() for k, v in records.items()}
        functions += [compiled._log_density, compiled._record]
    return posterior, {
        **out,
        # the config imports the model's file as a module of its own
        "traces": sys.modules[type(posterior.problem.model).__module__].TRACES,
        "hits": sum(f.hits for f in functions),
        "exports": sum(f.exports for f in functions),
        "fallbacks": sum(f.fallbacks for f in functions),
    }


if __name__ == "__main__":
    os.environ.setdefault("EQX_ON_ERROR", "nan")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from il6rcc import runtime

    runtime.setup()
    overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(evaluate(sys.argv[1], overrides)[1]))
