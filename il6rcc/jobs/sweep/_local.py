"""The ``local`` executor: a pool of ``jobs`` worker threads, each running one element's
``il6rcc fit`` process at a time on this machine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from ._element import ElementRunner


def run_local(
    out: Path,
    names: list[str],
    jobs: int,
    on_change: Callable[[dict[str, str], set[str]], None],
    say: Callable[[str], None],
) -> dict[str, dict]:
    """Run ``names`` with at most ``jobs`` at once; ``on_change(actions, running)`` is
    called whenever an element starts or ends. Returns each element's result."""
    results: dict[str, dict] = {}
    actions: dict[str, str] = {}
    runners = {n: ElementRunner(out, n, python=sys.executable) for n in names}
    running: set[str] = set()
    pending = list(names)
    futures = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            while pending or futures:
                while pending and len(futures) < jobs:
                    name = pending.pop(0)
                    futures[pool.submit(runners[name].run)] = name
                    running.add(name)
                    on_change(actions, running)
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    name = futures.pop(fut)
                    running.discard(name)
                    try:
                        res = fut.result()
                    except Exception as err:  # a bug in the runner: record it, go on
                        res = {
                            "element": name,
                            "status": "failed",
                            "action": "started",
                            "error": f"{type(err).__name__}: {err}",
                        }
                    results[name] = res
                    actions[name] = res.get("action", "")
                    say(_line(res))
                    on_change(actions, running)
        except KeyboardInterrupt:
            # stop the running fits (they keep their checkpoints), then let the pool end
            for name in list(running):
                runners[name].stop("interrupted by the user")
            raise
    return results


def _line(res: dict) -> str:
    took = f" in {res['seconds']:.0f} s" if "seconds" in res else ""
    error = f": {res['error']}" if res.get("error") else ""
    return f"{res['element']}: {res['status']} ({res.get('action', '')}{took}){error}"


__all__ = ["run_local"]
