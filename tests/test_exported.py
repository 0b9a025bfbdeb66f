"""Exported programs kept on disk: a later process neither traces nor compiles the
posterior's ODE-solving functions, gets the same numbers, never runs a stale program
and survives a corrupt entry (il6rcc.inference._exported)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _export_child import evaluate
from numpy.testing import assert_array_equal

from il6rcc.inference._exported import PersistentFunction, fingerprint, identity, program_key

HERE = Path(__file__).parent
CONFIG = HERE / "fixtures" / "tiny_job" / "tiny.yaml"


def _start(cache: Path) -> subprocess.Popen:
    env = dict(os.environ, IL6RCC_JAX_CACHE=str(cache), EQX_ON_ERROR="nan", JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [sys.executable, str(HERE / "_export_child.py"), str(CONFIG)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Two processes evaluate the same job at once on one empty cache folder (both
    trace, export and write the same entries), then a third one reads them back."""
    cache = tmp_path_factory.mktemp("jax-cache")
    at_once = [_start(cache), _start(cache)]
    first, other = (_finish(p) for p in at_once)
    return cache, first, other, _finish(_start(cache))


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "exported").glob("*.jaxexp"))


def test_a_later_process_reads_the_programs_back_without_tracing(two_processes):
    cache, first, other, later = two_processes
    for run in (first, other):
        assert run["traces"] > 0 and run["fallbacks"] == 0
        assert run["exports"] + run["hits"] == 3
    assert len(_entries(cache)) == 3  # value_and_grad, log_density, record
    assert not list((cache / "exported").glob(".tmp-*"))  # no temporary file left
    # the later process never traced the vector field: every program came from disk
    assert later["traces"] == 0
    assert (later["exports"], later["hits"], later["fallbacks"]) == (0, 3, 0)
    for run in (first, other):
        for name in ("value", "grad", "log_density"):
            assert_array_equal(later[name], run[name], err_msg=name)
        assert later["record"].keys() == run["record"].keys()
        for name, values in run["record"].items():
            assert_array_equal(later["record"][name], values, err_msg=name)


@pytest.fixture(scope="module")
def exported_in_process(tmp_path_factory):
    """The tiny job evaluated in this process with its programs exported to a fresh
    folder (this process's settings differ from a child's, so it has keys of its own)."""
    cache = tmp_path_factory.mktemp("jax-cache-here")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IL6RCC_JAX_CACHE", str(cache))
        posterior, result = evaluate(str(CONFIG), full=False)
    # keys now: loading the config again replaces the model's module (and class), after
    # which the first posterior's class can no longer be found by its name
    keys = {name: _key(posterior, name) for name in ("value_and_grad", "record")}
    assert keys["value_and_grad"] == _entries(cache)[0].stem
    return cache, keys, result


def _key(posterior, name="value_and_grad"):
    args = (jnp.asarray(posterior.initial_point()), posterior.data)
    leaves, treedef = jax.tree.flatten(args)
    return program_key(name, identity(posterior), treedef, leaves)


@pytest.mark.parametrize(
    "overrides",
    [{"solver.rtol": 1e-5}, {"priors.overrides": {"a": {"median": 3.0}}}],
    ids=["rtol", "prior_median"],
)
def test_a_changed_setting_is_a_new_program_with_new_results(
    exported_in_process, two_processes, overrides, monkeypatch
):
    cache, base_keys, base_result = exported_in_process
    # this process's program agrees with the child processes' (same job, same point)
    np.testing.assert_allclose(base_result["value"], two_processes[3]["value"], rtol=1e-12)
    np.testing.assert_allclose(base_result["grad"], two_processes[3]["grad"], rtol=1e-10)
    monkeypatch.setenv("IL6RCC_JAX_CACHE", str(cache))
    before = set(_entries(cache))
    changed, result = evaluate(str(CONFIG), overrides, full=False)
    assert _key(changed) != base_keys["value_and_grad"]
    assert _key(changed, "record") != base_keys["record"]
    assert result["traces"] > 0  # traced anew, not read back
    assert (result["exports"], result["hits"]) == (1, 0)
    assert len(set(_entries(cache)) - before) == 1
    assert result["value"] != base_result["value"]


def test_a_corrupt_entry_is_traced_again_with_a_warning(exported_in_process, monkeypatch):
    cache, base_keys, base_result = exported_in_process
    monkeypatch.setenv("IL6RCC_JAX_CACHE", str(cache))
    path = Path(cache) / "exported" / f"{base_keys['value_and_grad']}.jaxexp"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2 :] = b"\0" * (len(blob) - len(blob) // 2)  # a torn write
    path.write_bytes(bytes(blob))
    with pytest.warns(RuntimeWarning, match="checksum"):
        _, result = evaluate(str(CONFIG), full=False)
    assert (result["exports"], result["hits"]) == (1, 0)  # the entry is written again
    assert result["traces"] > 0
    assert_array_equal(
        [result["value"], *result["grad"]], [base_result["value"], *base_result["grad"]]
    )
    path.write_bytes(b"not an exported program")
    with pytest.warns(RuntimeWarning, match="not an il6rcc exported program"):
        _, result = evaluate(str(CONFIG), full=False)
    assert result["value"] == base_result["value"]
    # the entry written after the fallback is read back
    _, result = evaluate(str(CONFIG), full=False)
    assert (result["exports"], result["hits"], result["traces"]) == (0, 1, 0)


def test_a_program_with_a_host_callback_is_jitted_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("IL6RCC_JAX_CACHE", str(tmp_path))
    seen = []

    def fn(x):
        jax.debug.callback(lambda v: seen.append(float(v)), x[0])
        return jnp.sum(x**2)

    f = PersistentFunction("with_callback", fn, lambda: "owner")
    assert float(f(jnp.arange(3.0))) == 5.0
    assert f.fallbacks == 1 and f.exports == 0 and seen == [0.0]
    assert not list(tmp_path.rglob("*.jaxexp"))


def test_identities_are_by_value_and_refuse_what_cannot_be_named():
    from il6rcc.inference import LikelihoodSettings

    a = LikelihoodSettings()
    assert fingerprint(a) == fingerprint(LikelihoodSettings())
    assert fingerprint((a, np.arange(3.0))) != fingerprint((a, np.arange(3.0) + 1e-15))
    assert fingerprint({"k": 1.0}) != fingerprint({"k": 1})
    local = jax.jit(lambda x: x)  # a jitted lambda cannot be found by its name
    assert identity((a, local)) is None
    assert fingerprint(lambda x: x + 1) != fingerprint(lambda x: x + 2)
