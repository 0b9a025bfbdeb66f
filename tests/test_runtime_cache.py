"""The persistent compilation cache is on by default and safe with several processes
compiling into the same folder at once (issue 16 item 3)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from il6rcc import runtime

WORKER = Path(__file__).with_name("_cache_worker.py")
HIT = "/jax/compilation_cache/cache_hits"
MISS = "/jax/compilation_cache/cache_misses"


def _start(cache: Path) -> subprocess.Popen:
    env = dict(os.environ, IL6RCC_JAX_CACHE=str(cache), JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [sys.executable, str(WORKER)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


def test_cache_is_on_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("IL6RCC_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert runtime.compilation_cache_dir() == str(tmp_path / "il6rcc" / "jax")
    monkeypatch.setenv("IL6RCC_JAX_CACHE", "off")
    assert runtime.compilation_cache_dir() is None
    monkeypatch.setenv("IL6RCC_JAX_CACHE", str(tmp_path / "mine"))
    assert runtime.compilation_cache_dir() == str(tmp_path / "mine")


def test_two_processes_compile_into_one_cache_at_once(tmp_path):
    """Two processes compile the same programs into an empty cache at the same time
    (both miss and both write); both finish and agree. A third process then reads
    every program from the cache and compiles none."""
    cache = tmp_path / "cache"
    first = [_start(cache), _start(cache)]
    a, b = (_finish(p) for p in first)
    np.testing.assert_allclose(a["observables"], b["observables"], rtol=1e-12)
    # both compiled and wrote (JAX records a miss when it writes an entry)
    assert a["events"].get(MISS, 0) >= 1 and b["events"].get(MISS, 0) >= 1
    assert len(list(cache.glob("*-cache"))) >= 1
    third = _finish(_start(cache))
    # nothing new was compiled and written; programs that compile faster than
    # CACHE_MIN_COMPILE_SECS are never cached, so not every request is a hit
    assert third["events"].get(MISS, 0) == 0, third["events"]
    assert third["events"].get(HIT, 0) >= a["events"][MISS], third["events"]
    np.testing.assert_allclose(third["observables"], a["observables"], rtol=1e-12)
