"""The sparse direct solver (il6rcc.models.SparseLU) against dense LAPACK solves,
its guard against tiny pivots, its derivatives against finite differences, and the
BDF solver with it against the BDF with dense LU."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from il6rcc.models import BDF, SparseLU, bdf_statistics, colour_columns, sparse_solver_for
from il6rcc.models._sparse_lu import MAX_FILL_DENSITY, SPARSE_MIN_STATES


def _pattern(rng, n, density):
    pattern = rng.random((n, n)) < density
    np.fill_diagonal(pattern, False)
    return pattern


def _matrix(rng, lu: SparseLU, c=0.3):
    """Values of ``I - c J`` at the analysis' entries (J random on the pattern)."""
    jac = rng.normal(size=len(lu.rows)) * lu.in_pattern
    return np.where(lu.rows == lu.cols, 1.0, 0.0) - c * jac


def _solver(lu: SparseLU):
    """``(values, b) -> x``, jitted (the steps are static: each compiles once)."""
    return jax.jit(lambda values, b: lu.solve(lu.factorise(values), b))


def _dense(lu: SparseLU, values) -> np.ndarray:
    out = np.zeros((lu.n, lu.n))
    out[lu.rows, lu.cols] = np.asarray(values)
    return out


@pytest.fixture(scope="module")
def small():
    """A random 10 x 10 pattern: sparse levels and a dense tail of at most 3."""
    lu = SparseLU.analyse(_pattern(np.random.default_rng(3), 10, 0.2), max_tail=3)
    assert lu.n_levels >= 2 and 0 < lu.n_tail <= 3
    return lu


@pytest.mark.parametrize("c", [0.1, 10.0])
def test_solve_matches_dense_solve(rng, small, c):
    values = _matrix(rng, small, c)
    b = rng.normal(size=small.n)
    x = _solver(small)(jnp.asarray(values), jnp.asarray(b))
    expected = np.linalg.solve(_dense(small, values), b)
    np.testing.assert_allclose(np.asarray(x), expected, rtol=1e-11, atol=1e-12)


def test_one_by_one():
    lu = SparseLU.analyse(np.zeros((1, 1), dtype=bool))
    np.testing.assert_allclose(np.asarray(_solver(lu)(jnp.array([4.0]), jnp.array([2.0]))), [0.5])


def test_fill_in_is_found():
    """A cycle: eliminating any vertex joins its two neighbours, so every ordering
    fills in; the factors must hold the fill and still solve exactly."""
    n = 6
    pattern = np.zeros((n, n), dtype=bool)
    for i in range(n):
        pattern[i, (i + 1) % n] = pattern[(i + 1) % n, i] = True
    lu = SparseLU.analyse(pattern, max_tail=0)
    assert lu.n_tail == 0 and lu.n_levels >= 3  # all pivots sparse, level by level
    assert lu.fill > pattern.sum() + n  # more nonzeros than M itself
    rng = np.random.default_rng(1)
    values = _matrix(rng, lu, c=1.0)
    x = _solver(lu)(jnp.asarray(values), jnp.ones(n))
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(_dense(lu, values), np.ones(n)))


def test_minimum_degree_keeps_an_arrow_sparse():
    """An arrow (one hub coupled to all): eliminating the hub first fills everything;
    minimum degree leaves it to the end, so L + U has no fill."""
    n = 30
    pattern = np.zeros((n, n), dtype=bool)
    pattern[0, 1:] = pattern[1:, 0] = True
    lu = SparseLU.analyse(pattern, max_tail=0)
    assert 0 in lu.order[-2:]
    assert lu.fill == pattern.sum() + n


def test_tiny_pivot_is_detected_never_a_wrong_answer():
    """[[1e-20, 1], [1, 1]] has no usable diagonal pivot without row exchanges: the
    factorisation fails its guard and the solve is NaN (dense LAPACK, which pivots,
    solves it)."""
    pattern = np.array([[False, True], [True, False]])
    lu = SparseLU.analyse(pattern, max_tail=0)
    values = np.where((lu.rows == 0) & (lu.cols == 0), 1e-20, 1.0)
    assert lu.order[0] == 0  # the tiny entry is the first pivot
    factors = jax.jit(lu.factorise)(jnp.asarray(values))
    assert not bool(factors.ok)
    assert np.all(np.isnan(np.asarray(jax.jit(lu.solve)(factors, jnp.ones(2)))))
    # the same matrix as a dense tail (partial pivoting) solves fine
    tail = SparseLU.analyse(pattern, max_tail=2)
    values = np.where((tail.rows == 0) & (tail.cols == 0), 1e-20, 1.0)
    np.testing.assert_allclose(
        np.asarray(_solver(tail)(jnp.asarray(values), jnp.array([1.0, 2.0]))),
        np.linalg.solve(_dense(tail, values), [1.0, 2.0]),
    )


def test_gradients_match_finite_differences(rng, small):
    """Forward mode through the factorisation and the solve (matrix values and
    right-hand side) and reverse mode through the solve (what the BDF solver's
    gradients pass through; its factors are held constant) against central
    differences."""
    lu, n = small, small.n
    values = jnp.asarray(_matrix(rng, lu))
    b = jnp.asarray(rng.normal(size=n))
    w = jnp.asarray(rng.normal(size=n))
    dv = jnp.asarray(rng.normal(size=values.shape))
    db = jnp.asarray(rng.normal(size=n))

    def loss(values, b):
        return jnp.dot(w, lu.solve(lu.factorise(values), b))

    @jax.jit
    def derivatives(values, b):
        factors = lu.factorise(values)
        g_b = jax.grad(lambda b: jnp.dot(w, lu.solve(factors, b)))(b)
        _, forward = jax.jvp(loss, (values, b), (dv, db))
        _, forward_b = jax.jvp(loss, (values, b), (jnp.zeros_like(dv), db))
        eps = 1e-6
        fd = (loss(values + eps * dv, b + eps * db) - loss(values - eps * dv, b - eps * db)) / (
            2 * eps
        )
        return jnp.dot(g_b, db), forward_b, forward, fd

    reverse_b, forward_b, forward, fd = derivatives(values, b)
    np.testing.assert_allclose(float(forward), float(fd), rtol=1e-6)
    np.testing.assert_allclose(float(reverse_b), float(forward_b), rtol=1e-10)
    assert abs(float(forward - forward_b)) > 1e-3  # the matrix part counts


def test_vmap_matches_one_by_one(rng, small):
    lu = small
    values = np.stack([_matrix(rng, lu, c) for c in (0.1, 1.0, 10.0)])
    b = rng.normal(size=(3, lu.n))
    batched = jax.jit(jax.vmap(lambda v, r: lu.solve(lu.factorise(v), r)))(values, b)
    for i in range(3):
        expected = np.linalg.solve(_dense(lu, values[i]), b[i])
        np.testing.assert_allclose(np.asarray(batched[i]), expected, rtol=1e-11)


def test_colouring_separates_columns_that_share_a_row(rng):
    pattern = _pattern(rng, 30, 0.1)
    colour = colour_columns(pattern)
    for row in pattern:
        used = colour[row]
        assert len(set(used.tolist())) == len(used)


def test_sparse_is_chosen_only_where_it_pays(rng):
    assert sparse_solver_for(None) is None
    small = _pattern(rng, SPARSE_MIN_STATES - 1, 0.02)
    assert sparse_solver_for(small) is None
    dense = np.ones((SPARSE_MIN_STATES, SPARSE_MIN_STATES), dtype=bool)
    assert sparse_solver_for(dense) is None
    n = 3 * SPARSE_MIN_STATES  # pathways of 5 species each
    modules = np.kron(np.eye(n // 5, dtype=bool), np.ones((5, 5), dtype=bool))
    analysis = sparse_solver_for(modules)
    assert analysis is not None
    assert analysis.fill + analysis.n_tail**2 <= MAX_FILL_DENSITY * n**2
    # the same pathways at SPARSE_MIN_STATES: the tail would take them all (dense)
    few = modules[:SPARSE_MIN_STATES, :SPARSE_MIN_STATES]
    assert sparse_solver_for(few) is None


# ------------------------------------------------------------------ the BDF with it
N_CHAIN = 24


def _cascade(t, y, k):
    """A stiff cascade with saturation: y_0 decays fast, each y_i feeds y_{i+1}
    through a Michaelis-Menten term, the last one feeds back into y_0."""
    flux = k[:-1] * y[:-1] / (1.0 + y[:-1])
    out = jnp.zeros_like(y).at[:-1].add(-flux).at[1:].add(flux)
    return out.at[0].add(-k[-1] * y[0] + 0.1 * y[-1])


def _cascade_pattern():
    pattern = np.eye(N_CHAIN, dtype=bool) | np.eye(N_CHAIN, k=-1, dtype=bool)
    pattern[0, -1] = True
    return pattern


def _solve_cascade(solver):
    k = jnp.asarray(np.geomspace(1e3, 0.1, N_CHAIN))
    return diffrax.diffeqsolve(
        diffrax.ODETerm(_cascade),
        solver,
        0.0,
        20.0,
        None,
        jnp.ones(N_CHAIN),
        k,
        saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, 20.0, 5), solver_state=True),
        stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10),
        max_steps=5000,
        throw=False,
    )


@pytest.fixture(scope="module")
def cascade_solutions():
    """Three BDF solves (dense LU; sparse with coloured derivatives; sparse with the
    Jacobian's values given): three compilations, about 100 s on loaded cores."""
    lu = SparseLU.analyse(_cascade_pattern(), max_tail=4)
    dense = _solve_cascade(BDF(rtol=1e-8, atol=1e-10))
    sparse = _solve_cascade(BDF(rtol=1e-8, atol=1e-10, sparsity=lu))

    def values(t, y, k):  # the exact Jacobian at the analysis' entries
        return jax.jacfwd(_cascade, 1)(t, y, k)[lu.rows, lu.cols]

    own = _solve_cascade(BDF(rtol=1e-8, atol=1e-10, sparsity=lu, jacobian_values=values))
    return dense, sparse, own


@pytest.mark.slow
def test_bdf_sparse_equals_dense(cascade_solutions):
    """The same solution (rtol 1e-6; the solves' rtol is 1e-8, and rounding in the
    Newton iterations may move a step) with about as many steps."""
    dense, sparse, own = cascade_solutions
    assert dense.result == diffrax.RESULTS.successful
    reference = bdf_statistics(dense)
    for other in (sparse, own):
        assert other.result == diffrax.RESULTS.successful
        np.testing.assert_allclose(np.asarray(other.ys), np.asarray(dense.ys), rtol=1e-6)
        stats = bdf_statistics(other)
        assert abs(stats["num_steps"] - reference["num_steps"]) <= 0.05 * reference["num_steps"]
        assert stats["num_factorisation_failures"] == 0


@pytest.mark.slow
def test_bdf_sparse_gradient_equals_dense():
    lu = SparseLU.analyse(_cascade_pattern(), max_tail=4)

    def final(solver, scale):
        k = jnp.asarray(np.geomspace(1e3, 0.1, N_CHAIN)) * scale
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(_cascade),
            solver,
            0.0,
            5.0,
            None,
            jnp.ones(N_CHAIN),
            k,
            stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10),
            max_steps=2000,
        )
        return jnp.sum(sol.ys[-1] ** 2)

    dense = jax.grad(lambda s: final(BDF(rtol=1e-8, atol=1e-10), s))(1.0)
    sparse = jax.grad(lambda s: final(BDF(rtol=1e-8, atol=1e-10, sparsity=lu), s))(1.0)
    np.testing.assert_allclose(float(sparse), float(dense), rtol=1e-6)
