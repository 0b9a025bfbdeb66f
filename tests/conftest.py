"""Test-wide settings: float64 and non-fatal solver errors before JAX/equinox load."""

import os

os.environ.setdefault("EQX_ON_ERROR", "nan")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from il6rcc import runtime  # noqa: E402

runtime.setup()
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    """A fixed PRNG key (tests never draw seeds from the clock)."""
    return jax.random.key(20260101)


@pytest.fixture
def rng():
    return np.random.default_rng(20260101)


#: Test files that take minutes (compiling the circuit or fitting), longest first.
#: `make test` runs files in parallel processes, one file per process; starting the
#: long ones first keeps one of them from running alone at the end.
LONG_FILES = (
    "test_compare_predict.py",
    "test_sweep_slurm.py",
    "test_fit_job.py",
    "test_petab_fit.py",
    "test_sweep.py",
    "test_petab_export.py",
    "test_models_biology.py",
    "test_models_circuit.py",
    "test_petab_benchmarks.py",
    "test_petab_events.py",
    "test_petab_transfer.py",
    "test_profile.py",
    "test_models_sharding.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))
