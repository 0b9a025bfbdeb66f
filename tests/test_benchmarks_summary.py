"""The PEtab benchmark's summary records (benchmarks/bench_petab.py, run_all.py): the
faster setting and the faster peer call per quantity, nothing from a side that missed
the reference llh, and issue 16.5's median over every shipped problem, where a
missing measurement counts as a loss. Pure functions on result dictionaries: no
solve, no AMICI."""

import json
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_petab  # noqa: E402
import run_all  # noqa: E402

from il6rcc.petab_io import BENCHMARK_PROBLEMS  # noqa: E402


def _timing(seconds: float) -> dict:
    return {"min": seconds, "median": seconds, "cpu_median": seconds, "runs": [seconds]}


def _il6rcc(label: str, llh: float) -> dict:
    compile_s = {"llh": {"total_s": 2.0, "trace_s": 1.0}, "grad": {"total_s": 3.0}}
    return {"label": label, "llh": llh, "gradient_by": "forward", "compile": compile_s}


def _result() -> dict:
    return {
        "il6rcc": [_il6rcc("bdf", -138.22), _il6rcc("kvaerno5", -138.22)],
        "amici": {"solver": {"rtol": 1e-8, "atol": 1e-8}, "import_compile_s": 10.0},
        "timings": {
            "il6rcc bdf llh": _timing(0.004),
            "il6rcc kvaerno5 llh": _timing(0.010),
            "il6rcc bdf gradient": _timing(0.090),
            "il6rcc kvaerno5 gradient": _timing(0.015),
            "AMICI run_simulations llh": _timing(0.005),
            "AMICI simulate_petab llh": _timing(0.012),
            "AMICI run_simulations gradient forward": _timing(0.020),
            "AMICI run_simulations gradient adjoint": _timing(0.030),
        },
    }


def test_records_take_the_faster_setting_and_the_faster_peer_call():
    recs = {r["quantity"]: r for r in bench_petab.records("Boehm_JProteomeRes2014", _result())}
    assert recs["llh"]["ratio"] == pytest.approx(0.004 / 0.005)
    assert recs["llh"]["il6rcc"].startswith("bdf")
    assert recs["llh"]["peer"].startswith("AMICI run_simulations llh")
    assert recs["gradient"]["ratio"] == pytest.approx(0.015 / 0.020)
    assert recs["gradient"]["il6rcc"].startswith("kvaerno5, forward")
    assert recs["gradient"]["peer"].startswith("AMICI run_simulations gradient forward")
    # compile: the first setting's llh + gradient, cold, against AMICI's import
    assert recs["compile"]["ratio"] == pytest.approx(5.0 / 10.0)


def test_the_peer_timed_alone_counts_when_it_is_faster():
    # AMICI's calls repeated alone in each round (bench_petab.interleaved): when that
    # is faster than its interleaved call, it is the reference, never the slower one
    res = _result()
    res["timings"]["AMICI run_simulations llh" + bench_petab.ALONE] = _timing(0.002)
    res["timings"]["AMICI run_simulations gradient forward" + bench_petab.ALONE] = _timing(0.025)
    recs = {r["quantity"]: r for r in bench_petab.records("Boehm_JProteomeRes2014", res)}
    assert recs["llh"]["ratio"] == pytest.approx(0.004 / 0.002)
    assert recs["llh"]["peer"].startswith("AMICI run_simulations llh (alone)")
    assert recs["gradient"]["ratio"] == pytest.approx(0.015 / 0.020)  # interleaved faster
    assert recs["gradient"]["peer"].startswith("AMICI run_simulations gradient forward (")


def test_the_less_favourable_of_wall_and_cpu_ratios_is_recorded():
    # under load a long peer call is preempted in every round, a short one of ours not:
    # the wall minima flatter il6rcc (0.004 / 0.010), the CPU minima do not (0.004 / 0.005)
    res = _result()
    for timing in res["timings"].values():
        timing["cpu_min"] = timing["min"]
    res["timings"]["AMICI run_simulations llh"] |= {"min": 0.010, "cpu_min": 0.005}
    res["timings"]["AMICI simulate_petab llh"] |= {"min": 0.020, "cpu_min": 0.012}
    recs = {r["quantity"]: r for r in bench_petab.records("Boehm_JProteomeRes2014", res)}
    assert recs["llh"]["ratio_wall"] == pytest.approx(0.004 / 0.010)
    assert recs["llh"]["ratio_cpu"] == pytest.approx(0.004 / 0.005)
    assert recs["llh"]["ratio"] == pytest.approx(0.004 / 0.005)
    assert recs["llh"]["measure"] == "CPU"
    assert "CPU time" in recs["llh"]["peer"]
    # where il6rcc's CPU exceeds its wall time (XLA threads in parallel), wall decides
    res["timings"]["il6rcc kvaerno5 gradient"]["cpu_min"] = 0.030
    res["timings"]["il6rcc bdf gradient"]["cpu_min"] = 0.180
    recs = {r["quantity"]: r for r in bench_petab.records("Boehm_JProteomeRes2014", res)}
    assert recs["gradient"]["ratio"] == pytest.approx(0.030 / 0.020)
    assert recs["gradient"]["ratio_wall"] == pytest.approx(0.015 / 0.020)


def test_a_side_off_the_reference_is_not_timed():
    res = _result()
    am = {"llh": -138.22, "llh_bare": -140.0}  # the bare call disagrees: 1.3e-2
    ils = [_il6rcc("bdf", -138.2), _il6rcc("kvaerno5", math.nan)]
    check = bench_petab.reference_check("Boehm_JProteomeRes2014", ils, am)
    assert check == {
        "reference": pytest.approx(-138.22199693517703),
        "source": "published reference",
        "rtol": bench_petab.LLH_RTOL,
        "il6rcc bdf": True,
        "il6rcc kvaerno5": False,
        "AMICI": False,
    }
    # without AMICI's timings there is no ratio to record
    res["timings"] = {k: v for k, v in res["timings"].items() if not k.startswith("AMICI")}
    assert [r["quantity"] for r in bench_petab.records("x", res)] == ["compile"]


def _write(folder: Path, name: str, date: str, recs: list[dict]) -> None:
    payload = {"environment": {"date": date}, "summary": recs}
    (folder / f"{name}.json").write_text(json.dumps(payload), encoding="utf-8")


def _rec(problem: str, quantity: str, ratio: float) -> dict:
    return {"problem": problem, "quantity": quantity, "ratio": ratio}


GRAD = (0.2, 0.4, 0.6, 0.8, 1.0, 3.0, 9.0)


def test_the_median_counts_a_missing_problem_as_a_loss(tmp_path):
    names = list(BENCHMARK_PROBLEMS)
    assert len(names) == 8
    llh = [_rec(p, "llh", 0.5 + 0.1 * i) for i, p in enumerate(names)]
    # gradients: 7 measured, the eighth missing (+inf); an older file's ratio for the
    # first problem is overridden by the newer one
    grad = [_rec(p, "gradient", r) for p, r in zip(names[:7], GRAD, strict=True)]
    _write(tmp_path, "petab", "2026-12-01T04:00:00+00:00", llh + grad)
    _write(tmp_path, "petab_old", "2026-11-30T04:00:00+00:00", [_rec(names[0], "gradient", 50)])
    out = json.loads(run_all.write_records(tmp_path).read_text(encoding="utf-8"))
    medians = {r["quantity"]: r for r in out if r["problem"].startswith("median")}
    assert medians["llh"]["ratio"] == pytest.approx((0.8 + 0.9) / 2)
    assert medians["llh"]["not_measured"] == []
    # sorted: 0.2 0.4 0.6 0.8 | 1.0 3 9 inf -> (0.8 + 1.0) / 2
    assert medians["gradient"]["ratio"] == pytest.approx(0.9)
    assert medians["gradient"]["not_measured"] == [names[7]]
    assert medians["gradient"]["ratios"][names[0]] == 0.2


def test_no_median_when_half_the_problems_are_missing(tmp_path):
    names = list(BENCHMARK_PROBLEMS)
    _write(tmp_path, "petab", "2026-12-01", [_rec(p, "llh", 0.1) for p in names[:4]])
    out = json.loads(run_all.write_records(tmp_path).read_text(encoding="utf-8"))
    (llh,) = [r for r in out if r["problem"].startswith("median") and r["quantity"] == "llh"]
    assert llh["ratio"] is None
    assert len(llh["not_measured"]) == 4


def test_a_wrong_value_counts_as_a_loss(tmp_path):
    names = list(BENCHMARK_PROBLEMS)
    grad = [_rec(p, "gradient", r) for p, r in zip(names[:7], GRAD, strict=True)]
    grad.append({**_rec(names[7], "gradient", 0.01), "wrong": "off finite differences"})
    _write(tmp_path, "petab", "2026-12-01", grad)
    out = json.loads(run_all.write_records(tmp_path).read_text(encoding="utf-8"))
    (med,) = [r for r in out if r["problem"].startswith("median") and r["quantity"] == "gradient"]
    # the wrong 0.01 would make it (0.6 + 0.8) / 2; as a loss: (0.8 + 1.0) / 2
    assert med["ratio"] == pytest.approx(0.9)
    assert med["wrong"] == [names[7]]
    assert med["not_measured"] == []
