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
