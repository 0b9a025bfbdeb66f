"""``solver.batching: shard`` and the ``cpu_devices`` config key (issue 13, item 4).

The comparisons on two CPU devices run in a process of their own
(tests/_sharding_probe.py): JAX fixes its device count when it starts, and this
process has one. There the config's ``cpu_devices: 2`` must take effect through the
entry points' path (load the config, build the posterior), and sharded solves must
equal the lock-step batch: values to rtol 1e-10, gradients to rtol 1e-8, success
flags and step counts exactly, over odd batch sizes (padding) and with a failed solve
in one shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from il6rcc import runtime
from il6rcc.configs import config_hash, load_config
from il6rcc.errors import ConfigError, ModelSpecError
from il6rcc.models import Condition, SolverSettings, batched, load_model, simulate

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("_sharding_probe.py")
DEFAULT = REPO / "configs" / "default.yaml"


def run_probe(*parts: str) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "EQX_ON_ERROR": "nan"}
    done = subprocess.run(
        [sys.executable, str(PROBE), *parts],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def probe():
    return run_probe("job", "batch")


# ------------------------------------------------------------------ two devices
def test_cpu_devices_of_the_config_take_effect_before_jax_starts(probe):
    job = probe["job"]
    assert job["devices"] == 2
    assert job["device_warnings"] == []
    assert job["info_cpu_devices"] == 2


def test_sharded_log_density_and_gradient_equal_the_lock_step_batch(probe):
    job = probe["job"]
    assert job["n_conditions"] % 2 == 1  # padded to a multiple of the 2 devices
    vmap, shard = job["vmap"], job["shard"]
    assert np.all(np.isfinite(vmap["values"]))
    np.testing.assert_allclose(shard["values"], vmap["values"], rtol=1e-10, atol=0)
    for g_shard, g_vmap in zip(shard["grads"], vmap["grads"], strict=True):
        g_vmap = np.asarray(g_vmap)
        assert np.all(np.isfinite(g_vmap)) and np.max(np.abs(g_vmap)) > 0
        # rtol 1e-8 of each component, or of the largest one for components near 0
        np.testing.assert_allclose(g_shard, g_vmap, rtol=1e-8, atol=1e-8 * np.abs(g_vmap).max())


def check_failure_is_counted(b: dict, expected_ok: list[bool], failing: int) -> None:
    vmap, shard = b["vmap"], b["shard"]
    assert b["devices"] == 2
    assert vmap["ok"] == expected_ok
    assert shard["ok"] == expected_ok
    assert shard["nan"] == [not ok for ok in expected_ok]  # outputs of the failure: NaN
    assert shard["steps"] == vmap["steps"]
    assert shard["steps"][failing] == 64  # ran out of its step budget
    np.testing.assert_allclose(shard["obs"], vmap["obs"], rtol=1e-10, atol=0)
    grad_v, grad_s = np.asarray(vmap["grad"]), np.asarray(shard["grad"])
    assert np.all(np.isfinite(grad_s)) and np.abs(grad_v).max() > 0
    np.testing.assert_allclose(grad_s, grad_v, rtol=1e-8, atol=1e-8 * np.abs(grad_v).max())
    # the solved conditions without a schedule against the closed form (a = 2, k = 0.5)
    t = np.asarray(vmap["times"])
    for c in (0, 1):
        u = shard["inducer"][c]
        x = 2 * (1 + u) / 0.5 + (2 / 0.5 - 2 * (1 + u) / 0.5) * np.exp(-0.5 * t)
        np.testing.assert_allclose(np.asarray(shard["obs"][c])[:, 0], x, rtol=1e-4)


def test_a_failed_solve_in_one_shard_stays_a_counted_failure(probe):
    """Three conditions padded to four over two devices: condition 2 (the stiff line)
    fails in the second shard, next to a padded copy of condition 0 that solves."""
    check_failure_is_counted(probe["batch"], [True, True, False], failing=2)


@pytest.mark.slow
def test_scheduled_solves_shard_like_the_lock_step_batch():
    """The scheduled-solve path (a bolus: solves stopped at the dose): a second batch
    of three conditions, padded the same way. Slow: the event machinery takes about two
    minutes to compile on 2 busy cores."""
    check_failure_is_counted(
        run_probe("scheduled")["scheduled"], [True, True, False, True, True, True], failing=2
    )


# ------------------------------------------------------------------ one device
def test_shard_on_one_device_is_the_lock_step_batch():
    assert jax.local_device_count() == 1
    model = load_model("inducible_gene")
    conditions = [Condition(f"u{u}", "default", {"inducer": u}) for u in (0.5, 1.0, 3.0)]
    times = [0.5, 2.0]
    sims = {
        b: simulate(model, None, conditions, times, SolverSettings(solver="tsit5", batching=b))
        for b in ("vmap", "shard")
    }
    np.testing.assert_array_equal(sims["shard"].observables, sims["vmap"].observables)
    np.testing.assert_array_equal(sims["shard"].num_steps, sims["vmap"].num_steps)


def test_batched_maps_every_layout_alike():
    xs = jnp.arange(5.0)
    for name in ("vmap", "map", "shard"):
        out = batched(lambda x, y: (x * y, x + 1), name)(xs, 2 * xs)
        np.testing.assert_array_equal(out[0], 2 * xs**2)
        np.testing.assert_array_equal(out[1], xs + 1)
    with pytest.raises(ValueError, match="'vmap', 'map', 'shard'|vmap, map, shard"):
        batched(lambda x: x, "pmap")


def test_unknown_batching_is_refused_with_the_choices():
    with pytest.raises(ModelSpecError, match=r"batching 'shards' is unknown; valid: .*shard"):
        SolverSettings(batching="shards")


# ------------------------------------------------------------------ config key
@pytest.mark.parametrize("value", ["two", 0, -1, True, 1.5])
def test_cpu_devices_bad_values_name_key_value_and_expectation(value):
    with pytest.raises(ConfigError) as err:
        load_config(DEFAULT, {"cpu_devices": value})
    text = str(err.value)
    assert "default.yaml: key cpu_devices: got " in text
    assert repr(value) in text
    assert "expected 'auto'" in text and "integer >= 1" in text


def test_cpu_devices_request_and_auto():
    cfg = load_config(DEFAULT).config
    assert cfg.cpu_devices is None and cfg.cpu_device_request() is None  # as shipped
    shard = load_config(DEFAULT, {"solver.batching": "shard"}).config
    assert shard.cpu_device_request() == "auto"
    assert load_config(DEFAULT, {"cpu_devices": 3}).config.cpu_device_request() == 3
    assert runtime.cpu_device_count("auto") == len(os.sched_getaffinity(0))
    assert runtime.cpu_device_count(None) is None
    with pytest.raises(ValueError, match="cpu_devices: expected 'auto'"):
        runtime.cpu_device_count(0)


def test_shard_with_parallel_chains_is_refused():
    with pytest.raises(ConfigError, match="chain_method 'parallel'"):
        load_config(
            DEFAULT, {"solver.batching": "shard", "inference.nuts.chain_method": "parallel"}
        )


def test_config_hash_without_cpu_devices_is_unchanged():
    """Runs started before the key existed must still resume: their config.yaml
    hashes as before (the key left out when it is not set)."""
    loaded = load_config(DEFAULT)
    dump = loaded.config.model_dump(mode="json")
    dump.pop("cpu_devices")
    expected = hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()
    assert loaded.sha256 == expected
    assert config_hash(load_config(DEFAULT, {"cpu_devices": 2}).config) != expected


def test_use_cpu_devices_after_jax_started():
    n = len(jax.devices("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runtime.use_cpu_devices(n) is True  # the count in effect: nothing to do
    with pytest.warns(RuntimeWarning, match=f"asks for {n + 1} CPU device.*already runs with {n}"):
        assert runtime.use_cpu_devices(n + 1) is False
