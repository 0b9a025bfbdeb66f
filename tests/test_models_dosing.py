"""Dosing schedules of an ODEModel condition (boluses, exposures with wash-out),
against closed forms, value and gradient.

Model: ``InducibleGene``, x' = a (1 + u) - k x, pre-equilibrated to x = a / k. Between
two events u is constant, so x(t) = T + (x(s) - T) exp(-k (t - s)), T = a (1 + u) / k;
a bolus adds its amount to x; an exposure sets u to its level and its wash-out back
to 0. Repeated boluses of A at t_i on the basal level give the linear-decay
superposition x(t) = a / k + sum_{t_i <= t} A exp(-k (t - t_i)).

One batch holds every condition: one compilation of the value (about 15 s of CPU);
the gradient's (about 70 s of CPU) runs with ``-m slow``, as does the circuit's
tocilizumab wash-out. Bad schedules are refused without compiling anything.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from il6rcc.errors import ModelSpecError
from il6rcc.models import (
    Bolus,
    Condition,
    DosingSchedule,
    Exposure,
    RCCCircuit,
    SolverSettings,
    load_model,
    make_batch,
    simulate,
    simulate_arrays,
)

MODEL = load_model("inducible_gene")
A, K = MODEL.default_params()
AMOUNT, LEVEL = 1.5, 3.0
TIMES = np.array([0.25, 1.0, 2.0, 2.5, 3.0, 4.0, 4.5, 6.0])
#: Tsit5 (explicit, cheap to compile) at 1e-12 keeps the solver's error well below
#: the tests' rtol, value and gradient.
SOLVER = SolverSettings(solver="tsit5", rtol=1e-12, atol=1e-12, max_steps=20000)
RTOL = 1e-6

CONDITIONS = [
    Condition("plain", "default"),
    Condition("constant", "default", {"inducer": LEVEL}),
    Condition(
        "bolus", "default", schedule=DosingSchedule((Bolus("x", AMOUNT, 1.0, every=1.5, count=3),))
    ),
    Condition(
        "washout",
        "default",
        schedule=DosingSchedule((Exposure("inducer", LEVEL, start=0.5, duration=2.0),)),
    ),
    # Two touching exposures: the wash-out at 1.5 and the second start at 1.5 act at
    # one instant (wash-out first), so this is the single exposure above.
    Condition(
        "pulses",
        "default",
        schedule=DosingSchedule(
            (Exposure("inducer", LEVEL, start=0.5, duration=1.0, every=1.0, count=2),)
        ),
    ),
    Condition(
        "both",
        "default",
        schedule=DosingSchedule(
            (
                Bolus("x", AMOUNT, 2.0),
                Bolus("x", AMOUNT, 6.0),  # at the last output time: seen there
                Exposure("inducer", LEVEL, start=1.0, duration=3.0, every=4.0, count=2),
            )
        ),
    ),
]
#: Each condition's events as (time, op, value), op "add" (to x), "on" (u = value) or
#: "off" (u = 0), written out by hand from the schedules above.
EVENTS = {
    "plain": [],
    "constant": [],
    "bolus": [(1.0, "add", AMOUNT), (2.5, "add", AMOUNT), (4.0, "add", AMOUNT)],
    "washout": [(0.5, "on", LEVEL), (2.5, "off", 0.0)],
    "pulses": [(0.5, "on", LEVEL), (1.5, "off", 0.0), (1.5, "on", LEVEL), (2.5, "off", 0.0)],
    "both": [
        (1.0, "on", LEVEL),
        (2.0, "add", AMOUNT),
        (4.0, "off", 0.0),
        (5.0, "on", LEVEL),
        (6.0, "add", AMOUNT),
    ],
}
ORDER = {"off": 0, "add": 1, "on": 2}  # at one instant


def closed_form(a, k, u0, events, times):
    """x at ``times`` (right-continuous), piecewise exact; differentiable in every
    argument with JAX (event times and values included). ``events``: (time, op,
    value) or (time as a number, traced time, op, value) to differentiate in times."""
    events = [e if len(e) == 4 else (e[0], *e) for e in events]
    events = sorted(events, key=lambda e: (e[0], ORDER[e[2]]))
    out = []
    for t in times:
        x, u, s = a / k, u0, 0.0
        for known, te, op, value in events:
            if known > t:
                break
            target = a * (1.0 + u) / k
            x = target + (x - target) * jnp.exp(-k * (te - s))
            s = te
            if op == "add":
                x = x + value
            else:
                u = value
        target = a * (1.0 + u) / k
        out.append(target + (x - target) * jnp.exp(-k * (t - s)))
    return jnp.stack(out)


def test_closed_form_of_repeated_boluses_is_the_decay_superposition():
    """The reference itself: boluses on the basal level add A exp(-k (t - t_i))."""
    got = closed_form(A, K, 0.0, EVENTS["bolus"], TIMES)
    want = A / K + sum(
        AMOUNT * np.exp(-K * (TIMES - ti)) * (TIMES >= ti) for ti, _, _ in EVENTS["bolus"]
    )
    np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.fixture(scope="module")
def batch():
    return make_batch(MODEL, CONDITIONS)


@pytest.fixture(scope="module")
def sim(batch):
    return simulate(MODEL, None, batch, TIMES, SOLVER)


def test_schedules_match_closed_forms(sim):
    assert sim.success.all()
    for c, cond in enumerate(CONDITIONS):
        u0 = cond.perturbations.get("inducer", 0.0)
        want = closed_form(A, K, u0, EVENTS[cond.id], TIMES)
        np.testing.assert_allclose(sim.observable("x")[c], want, rtol=RTOL, err_msg=cond.id)


def test_conditions_without_schedule_are_integrated_without_events(batch):
    assert batch.schedule.conditions == (2, 3, 4, 5)
    assert make_batch(MODEL, CONDITIONS[:2]).schedule is None


def _event_list(batch, row, values, times):
    """Events of scheduled condition ``row`` from the batch's (traced) slot arrays."""
    slots = batch.schedule.events.slots
    return [
        (float(batch.dose_times[row, j]), times[j], op, values[j])
        for j, (_, _, op) in enumerate(slots)
        if batch.dose_times[row, j] < 1e29
    ]


@pytest.mark.slow  # compiling the gradient through the event solver: about 70 s of CPU
def test_gradient_matches_closed_form_and_finite_differences(batch):
    """d/d(a, k, dose amounts and levels, dose times) of a weighted sum of outputs.

    Outputs at a dose time, and the touching pulses (moving one edge there switches
    the other exposure), are discontinuous in the dose times: they get weight 0.
    """
    rng = np.random.default_rng(7)
    dose_times_all = {t for evs in EVENTS.values() for t, _, _ in evs}
    smooth = ~np.isin(TIMES, sorted(dose_times_all))
    weights = rng.normal(size=(len(CONDITIONS), len(TIMES))) * smooth[None, :]
    weights[[c.id for c in CONDITIONS].index("pulses")] = 0.0
    arrays = [jnp.asarray(x) for x in batch.arrays]

    def loss(params, values, times):
        obs = simulate_arrays(
            MODEL,
            SOLVER,
            params[None, :],
            *arrays,
            jnp.asarray(TIMES),
            schedule=batch.schedule,
            dose_values=values,
            dose_times=times,
        )[0]
        return jnp.sum(weights * obs[:, :, 0])

    def reference(params, values, times):
        a, k = params
        total = 0.0
        for c, cond in enumerate(CONDITIONS):
            if c in batch.schedule.conditions:
                row = batch.schedule.conditions.index(c)
                events = _event_list(batch, row, values[row], times[row])
            else:
                events = []
            u0 = cond.perturbations.get("inducer", 0.0)
            total = total + jnp.sum(weights[c] * closed_form(a, k, u0, events, TIMES))
        return total

    point = (jnp.asarray([A, K]), jnp.asarray(batch.dose_values), jnp.asarray(batch.dose_times))
    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    value, grads = value_and_grad(*point)
    want_value, want = jax.value_and_grad(reference, argnums=(0, 1, 2))(*point)
    np.testing.assert_allclose(value, want_value, rtol=RTOL)
    used = batch.dose_times < 1e29
    for got, ref, mask in zip(grads, want, (np.ones(2, bool), used, used), strict=True):
        np.testing.assert_allclose(
            np.asarray(got)[mask], np.asarray(ref)[mask], rtol=RTOL, atol=1e-9
        )
        assert np.all(np.asarray(got)[~mask] == 0.0)

    # Central finite differences of the simulator itself, entry by entry (with the
    # compiled gradient function: one compilation less).
    def f(*args):
        return value_and_grad(*args)[0]

    for arg, mask in ((0, np.ones(2, bool)), (1, used), (2, used)):
        base = np.asarray(point[arg])
        for index in zip(*np.nonzero(mask), strict=True):
            h = 1e-5 * max(abs(base[index]), 1.0)
            up, down = base.copy(), base.copy()
            up[index] += h
            down[index] -= h
            args_up = list(point)
            args_down = list(point)
            args_up[arg], args_down[arg] = jnp.asarray(up), jnp.asarray(down)
            fd = (f(*args_up) - f(*args_down)) / (2 * h)
            np.testing.assert_allclose(
                np.asarray(grads[arg])[index], fd, rtol=1e-5, atol=1e-7, err_msg=f"{arg} {index}"
            )


# ------------------------------------------------------------------ bad schedules
@pytest.mark.parametrize(
    ("build", "needles"),
    [
        (lambda: Bolus("x", 1.0, time=-1.0), ("Bolus into 'x'", "time", "-1.0", ">= 0")),
        (lambda: Bolus("x", float("nan")), ("amount", "nan", ">= 0")),
        (lambda: Bolus("x", 1.0, count=3), ("count is 3", "every is not set")),
        (lambda: Bolus("x", 1.0, every=0.0, count=2), ("every", "0.0", "> 0")),
        (lambda: Exposure("inducer", -2.0), ("Exposure to 'inducer'", "level", "-2.0", ">= 0")),
        (
            lambda: Exposure("inducer", 1.0, duration=3.0, every=2.0, count=2),
            ("duration 3.0 h is longer than every 2.0 h", "expected duration <= every"),
        ),
        (
            lambda: Exposure("inducer", 1.0, every=2.0, count=2),
            ("duration is None", "never washed out", "duration <= every"),
        ),
        (lambda: Exposure("inducer", 1.0, duration=0.0), ("duration", "0.0", "> 0")),
        (lambda: DosingSchedule(("inducer",)), ("Bolus and Exposure", "'inducer'")),
    ],
)
def test_bad_dose_is_refused_with_field_value_and_expectation(build, needles):
    with pytest.raises(ModelSpecError) as err:
        build()
    for needle in needles:
        assert needle in str(err.value)


def test_bad_schedules_are_all_reported_in_one_error():
    def cond(cid, *doses, **perturbations):
        return Condition(cid, "default", perturbations, schedule=DosingSchedule(doses))

    conditions = [
        cond("unknown_input", Exposure("inducerr", 1.0)),
        cond("unknown_state", Bolus("y", 1.0)),
        cond(
            "overlap",
            Exposure("inducer", 1.0, start=0.0, duration=2.0),
            Exposure("inducer", 2.0, start=1.0, duration=2.0),
        ),
        cond("both_ways", Exposure("inducer", 1.0, duration=1.0), inducer=2.0),
    ]
    with pytest.raises(ModelSpecError) as err:
        make_batch(MODEL, conditions)
    text = str(err.value)
    for needle in (
        "condition 'unknown_input': Exposure to unknown input 'inducerr'; valid: 'inducer'",
        "condition 'unknown_state': Bolus into unknown state 'y'; valid: 'x'",
        "condition 'overlap': exposures to 'inducer' overlap: one from 0.0 h to its wash-out "
        "at 2.0 h, the next from 1.0 h",
        "condition 'both_ways': input 'inducer' is both a constant perturbation (2.0)",
    ):
        assert needle in text


def test_pretreatment_and_phase_inputs_cannot_be_scheduled():
    circuit = RCCCircuit()
    conditions = [
        Condition("si", "786-O", schedule=DosingSchedule((Exposure("si_socs3", 1.0),))),
        Condition("phase", "786-O", schedule=DosingSchedule((Exposure("treatment_phase", 1.0),))),
    ]
    with pytest.raises(ModelSpecError) as err:
        make_batch(circuit, conditions)
    assert "Exposure to 'si_socs3', a pre-treatment input" in str(err.value)
    assert "Exposure to 'treatment_phase', the treatment-phase input" in str(err.value)


@pytest.mark.slow  # compiles the circuit with dose events (minutes)
def test_circuit_tocilizumab_washout_releases_the_il6r_blockade():
    """IL-6-stimulated 786-O cells under tocilizumab, continuous vs washed out at 24 h:
    equal before the wash-out; afterwards IL-6R is free again, so pSTAT3 recovers above
    the continuously blocked cells."""
    circuit = RCCCircuit()
    exposure = Exposure("tocilizumab", 100.0, start=0.0, duration=24.0)
    conditions = [
        Condition("continuous", "786-O", {"il6": 10.0, "tocilizumab": 100.0}),
        Condition("washout", "786-O", {"il6": 10.0}, schedule=DosingSchedule((exposure,))),
    ]
    times = np.array([12.0, 23.0, 30.0, 48.0])
    sim = simulate(circuit, None, conditions, times)
    assert sim.success.all()
    pstat3 = sim.observable("pstat3")
    np.testing.assert_allclose(pstat3[1, :2], pstat3[0, :2], rtol=1e-5)
    assert np.all(pstat3[1, 2:] > pstat3[0, 2:] * 1.01)
