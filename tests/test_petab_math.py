"""Safe formula handling: parsing through libsbml, the node whitelist, and evaluation
with JAX and sympy against hand computations; noise-model densities and priors
against petab's own reference formulas."""

import math
import types

import jax.numpy as jnp
import numpy as np
import pytest
import sympy
from petab.v1.calculate import calculate_single_llh

from il6rcc.errors import PetabError
from il6rcc.petab_io import ParameterTable, make_log_prior
from il6rcc.petab_io._likelihood import measurement_log_likelihoods
from il6rcc.petab_io._math import (
    JaxBackend,
    SympyBackend,
    evaluate,
    free_symbols,
    parse_formula,
)

X, Y = 2.5, 0.4
VALUES = {"x": X, "y": Y}


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("x + 2 * y", X + 2 * Y),
        ("x^2 - y", X**2 - Y),
        ("x**3", X**3),  # sympy's power, accepted
        ("-x^2", -(X**2)),
        ("x / (1 + y)", X / (1 + Y)),
        ("exp(-y) * x", math.exp(-Y) * X),
        ("log(x)", math.log(X)),  # PEtab: natural logarithm
        ("ln(x)", math.log(X)),
        ("log(x, 2)", math.log2(X)),  # PEtab/sympy: log(value, base)
        ("log10(x)", math.log10(X)),
        ("log2(x)", math.log2(X)),
        ("sqrt(x)", math.sqrt(X)),
        ("abs(-x)", X),
        ("max(x, y)", X),
        ("Max(x, y, 7)", 7.0),
        ("min(x, y)", Y),
        ("piecewise(1, x > 2, 0)", 1.0),
        ("piecewise(1, x < 2 && y > 0, 5)", 5.0),
        ("1.5e-3 * x", 1.5e-3 * X),
        ("2 * time", 2 * 3.0),
        ("pi", math.pi),
        ("sign(-x)", -1.0),  # PEtab math only
        ("sec(y) + arcsinh(x)", 1 / math.cos(Y) + math.asinh(X)),  # PEtab math only
        ("x > 2 || y > 1", 1.0),
    ],
)
def test_formulas_evaluate_like_hand_computation(formula, expected):
    expr = parse_formula(formula, where="test")
    value = evaluate(expr, VALUES.__getitem__, time=3.0, backend=JaxBackend)
    assert float(value) == pytest.approx(expected, rel=1e-14)


def test_petab_math_parses_standard_formulas():
    """Standard PEtab formulas go through the petab library's parser; only what its
    grammar lacks (``**``, ``Max``) through the libsbml fallback."""
    from petab.v1.math import sympify_petab

    from il6rcc.petab_io._math import from_sympy

    for text in ("scale * x^2 + offset", "piecewise(1, x > 2, 0)", "log(x, 2) / sign(y)"):
        expected = from_sympy(sympify_petab(text, evaluate=False), where="test")
        assert parse_formula(text, where="test") == expected
    assert parse_formula("x**3", where="test") == ("pow", ("sym", "x"), ("num", 3.0))


def test_numbers_are_formulas():
    assert parse_formula(0.5, where="test") == ("num", 0.5)
    assert parse_formula("7", where="test") == ("num", 7.0)


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os').system('echo hacked')",
        "x.__class__",
        "x; y",
        "lambda: 1",
        "[x for x in y]",
        "",
    ],
)
def test_python_code_does_not_parse(formula):
    with pytest.raises(PetabError, match=r"observables\.tsv line 2"):
        parse_formula(formula, where="observables.tsv line 2")


@pytest.mark.parametrize(
    ("formula", "construct"),
    [
        ("__import__(os)", "unknown function '__import__'"),
        ("eval(x)", "unknown function 'eval'"),
        ("delay(x, 2)", "'delay'"),
        ("rateOf(x)", "'rateOf'"),
        ("lambda(x, x + 1)", "'lambda'"),
        ("factorial(x)", "unsupported"),
    ],
)
def test_constructs_outside_the_whitelist_are_named(formula, construct):
    with pytest.raises(PetabError) as info:
        parse_formula(formula, where="obs")
    assert construct in str(info.value)
    assert repr(formula) in str(info.value)


def test_free_symbols_and_sympy_backend():
    expr = parse_formula("k * exp(-d * time) + max(a, 0) / b", where="test")
    assert free_symbols(expr) == {"k", "d", "a", "b"}
    symbols = {n: sympy.Symbol(n) for n in ("k", "d", "a", "b")}
    t = sympy.Symbol("t")
    value = evaluate(expr, symbols.__getitem__, time=t, backend=SympyBackend)
    k, d, a, b = (symbols[n] for n in ("k", "d", "a", "b"))
    assert sympy.simplify(value - (k * sympy.exp(-d * t) + sympy.Max(a, 0) / b)) == 0


def test_jax_evaluation_is_vectorised():
    expr = parse_formula("x^2 + y", where="test")
    x = jnp.linspace(0.0, 1.0, 5)
    out = evaluate(expr, {"x": x, "y": 1.0}.__getitem__, backend=JaxBackend)
    np.testing.assert_allclose(out, x**2 + 1.0)


# ------------------------------------------------------------------ noise models
@pytest.mark.parametrize("transformation", ["lin", "log", "log10"])
@pytest.mark.parametrize("distribution", ["normal", "laplace"])
def test_noise_models_match_petab_reference(transformation, distribution):
    measured = np.array([0.7, 1.9, 3.2])
    simulated = np.array([0.8, 1.5, 3.3])
    sigma = np.array([0.1, 0.3, 0.2])
    observable = types.SimpleNamespace(
        transformation=transformation, noise_distribution=distribution
    )
    problem = types.SimpleNamespace(
        measurements=measured,
        n_measurements=3,
        observables=(observable,),
        measurement_observable_index=np.zeros(3, dtype=int),
    )
    ours = np.asarray(measurement_log_likelihoods(problem, jnp.asarray(simulated), sigma))
    theirs = [
        calculate_single_llh(m, s, transformation, distribution, sd)
        for m, s, sd in zip(measured, simulated, sigma, strict=True)
    ]
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)


# ------------------------------------------------------------------ priors
def test_log_prior_against_hand_computation():
    table = ParameterTable(
        ids=("a", "b", "c", "d"),
        names=("a", "b", "c", "d"),
        scales=("log10", "lin", "log", "log10"),
        lower=np.array([1e-3, -5.0, 1e-2, 1e-2]),
        upper=np.array([1e3, 5.0, 1e2, 1e2]),
        nominal=np.array([1.0, 0.0, 1.0, 1.0]),
        estimate=np.array([True, True, True, True]),
        prior_types=("parameterScaleNormal", "laplace", "logNormal", ""),
        prior_parameters=np.array([[0.5, 0.2], [1.0, 2.0], [0.1, 0.5], [np.nan, np.nan]]),
    )
    log_prior = make_log_prior(types.SimpleNamespace(parameters=table))
    theta = np.array([0.3, -1.0, 0.7, 1.0])
    expected = (
        -0.5 * math.log(2 * math.pi * 0.2**2)
        - 0.5 * ((0.3 - 0.5) / 0.2) ** 2
        + (-math.log(2 * 2.0) - abs(-1.0 - 1.0) / 2.0)
        # logNormal density of x = exp(theta) plus the Jacobian dx/dtheta = x
        + (-0.5 * math.log(2 * math.pi * 0.5**2) - 0.5 * ((0.7 - 0.1) / 0.5) ** 2 - 0.7 + 0.7)
        + 0.0
    )
    assert float(log_prior(theta)) == pytest.approx(expected, rel=1e-12)
    outside = theta.copy()
    outside[0] = 4.0  # above log10(1e3)
    assert float(log_prior(outside)) == -np.inf


def test_parameter_scales_round_trip():
    table = ParameterTable(
        ids=("a", "b", "c", "fixed"),
        names=("a", "b", "c", "fixed"),
        scales=("lin", "log", "log10", "log10"),
        lower=np.array([-1.0, 1e-3, 1e-3, 1e-3]),
        upper=np.array([1.0, 1e3, 1e3, 1e3]),
        nominal=np.array([0.5, 2.0, 30.0, 7.0]),
        estimate=np.array([True, True, True, False]),
        prior_types=("", "", "", ""),
        prior_parameters=np.full((4, 2), np.nan),
    )
    theta = table.nominal_theta
    np.testing.assert_allclose(theta, [0.5, math.log(2.0), math.log10(30.0)])
    np.testing.assert_allclose(table.values(theta), table.nominal, rtol=1e-14)
    np.testing.assert_allclose(table.values(np.array([0.1, 0.0, 1.0])), [0.1, 1.0, 10.0, 7.0])
    lower, upper = table.bounds_theta
    np.testing.assert_allclose(lower, [-1.0, math.log(1e-3), -3.0])
    np.testing.assert_allclose(upper, [1.0, math.log(1e3), 3.0])
