"""A variable-order BDF solver for diffrax that reuses its Jacobian and LU across steps.

Implicit Runge-Kutta solvers (diffrax's Kvaerno family) solve several nonlinear stage
equations per step and, through optimistix, linearise and factorise at every stage.
Stiff kinetic models in systems biology are instead solved by backward differentiation
formulas with a *modified* Newton iteration (CVODES, LSODE, MATLAB's ode15s, scipy's
``BDF``): one implicit equation per step, and one iteration matrix
``M = I - c J`` whose Jacobian ``J`` and LU factorisation are kept for many steps. This
module brings that scheme into diffrax's solver interface, so that it runs under
``diffeqsolve`` with a :class:`diffrax.PIDController`, dense output for
``SaveAt(ts=...)``, ``throw=False`` failure flags, ``vmap``, and reverse-mode
differentiation through :class:`diffrax.RecursiveCheckpointAdjoint`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import diffrax
import equinox as eqx
import jax
import jax.flatten_util as jfu
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree

from ._sparse_lu import SparseLU

# Shapes (``n``: number of state components, flattened).
_Matrix = Float[Array, "n n"]
_Values = Float[Array, " entries"]  # a matrix's values at a sparsity pattern's entries
_Permutation = Int[Array, " n"]
_History = Float[Array, "rows n"]
_Real = Float[Array, ""]
_Count = Int[Array, ""]
_Time = Float[ArrayLike, ""]
_Flag = Bool[ArrayLike, ""]

# ------------------------------------------------------------------ method tables
#: Highest order (BDF6 and above are not zero-stable).
MAX_ORDER = 5
#: kappa of the numerical differentiation formulas (Shampine & Reichelt 1997, table 1);
#: order 5 is plain BDF5. ``method="bdf"`` uses zeros.
_NDF_KAPPA = (0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0, 0.0)


def _tables(method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gamma, alpha, error_const) for orders 0..MAX_ORDER + 1 (Shampine & Reichelt
    1997, section 2.3): ``gamma_k = sum_{j<=k} 1/j``, ``alpha_k = (1 - kappa_k)
    gamma_k`` and the local error constant ``kappa_k gamma_k + 1/(k+1)``."""
    kappa = np.array(_NDF_KAPPA if method == "ndf" else (0.0,) * (MAX_ORDER + 2))
    gamma = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, MAX_ORDER + 2))])
    alpha = (1.0 - kappa) * gamma
    error_const = kappa * gamma + 1.0 / np.arange(1, MAX_ORDER + 3)
    return gamma, alpha, error_const


#: Rows of the history: differences up to order MAX_ORDER + 2 (the highest is needed to
#: estimate the error of order k + 1).
_ROWS = MAX_ORDER + 3


def _difference_matrix(ratio):
    """The matrix R of Shampine & Reichelt (1997), eq. (2.5), for all orders at once:
    ``R(ratio) @ R(1)`` maps the backward differences of the interpolating polynomial
    at spacing ``h`` to those at spacing ``ratio * h`` (the top-left (k+1)x(k+1) block
    belongs to order k). Written row by row (no cumulative product) so that XLA fuses
    it; works for a float and for a traced ``ratio``."""
    xp = np if isinstance(ratio, float | int) else jnp
    j = np.arange(1, _ROWS)
    rows = [xp.ones(_ROWS)]
    for i in range(1, _ROWS):
        factors = xp.concatenate([xp.zeros(1), (i - 1 - ratio * j) / i])
        rows.append(rows[-1] * factors)
    return xp.stack(rows)


#: R(1), upper triangular.
_U = _difference_matrix(1.0)


def _small_matmul(matrix: Array, rows: Array) -> Array:
    """``matrix @ rows`` for a matrix of a few rows, as a broadcast product and sum,
    which XLA fuses with its neighbours (a dot is a separate kernel call per step)."""
    return jnp.sum(matrix[:, :, None] * rows[None, :, :], axis=1)


def _pick(table, index: Array) -> Array:
    """``table[index]`` along the first axis, as a masked sum (no gather)."""
    table = jnp.asarray(table)
    mask = jnp.arange(table.shape[0]) == index
    return jnp.sum(jnp.where(mask.reshape(mask.shape + (1,) * (table.ndim - 1)), table, 0), axis=0)


def _rms(x: Array) -> Array:
    return jnp.sqrt(jnp.mean(x * x))


# ------------------------------------------------------- Newton and setup constants
# The modified Newton iteration and when its matrix is rebuilt follow CVODES
# (Hindmarsh et al. 2005, section 2.1; SUNDIALS' cvode.c / cvode_ls.c defaults).
#: iterations per attempt (CVODES ``maxcor``).
_MAX_ITERATIONS = 3
#: the iteration stops once the remaining Newton error is below this fraction of the
#: local error test (CVODES ``nlscoef``).
_NEWTON_COEFF = 0.1
#: the convergence-rate estimate decays at most by this factor per iteration (``crdown``).
_RATE_DECAY = 0.3
#: an increment more than this times the previous one counts as divergence (``rdiv``).
_DIVERGENCE = 2.0
#: refactorise M when c changed by more than this fraction since (``dgmax``).
_MAX_GAMMA_CHANGE = 0.3
#: refactorise M at least every this many steps (``msbp``).
_STEPS_PER_FACTORISATION = 20
#: re-evaluate J at least every this many steps (``msbj``).
_STEPS_PER_JACOBIAN = 51
#: a new step size or order is taken only if it grows the step by this factor
#: (CVODES ``THRESH``); smaller gains are not worth a refactorisation.
_GROWTH_THRESHOLD = 1.5
#: safety factor of step-size proposals (diffrax's ``PIDController`` default).
_SAFETY = 0.9
#: largest growth of the step size (diffrax's ``PIDController`` default ``factormax``).
_MAX_GROWTH = 10.0
#: the controller's exponent is 1 / ERROR_ORDER; see :meth:`BDF.error_order`.
_ERROR_ORDER = 2
#: the reported error norm that makes the PID controller keep the step size.
_KEEP = 0.5 * (1.0 + _SAFETY**_ERROR_ORDER)

# Status of a Newton attempt.
_ITERATE, _CONVERGED, _FAILED = 1, 2, 3


class _Linearisation(eqx.Module):
    """The Jacobian, the factorised iteration matrix ``M = I - c_factor J``, and their
    ages in accepted steps. Never differentiated (it only preconditions the Newton
    iteration, whose residual is exact). With a sparsity pattern, ``jac`` holds the
    values at the pattern's entries and ``factor`` the sparse factors
    (:class:`~il6rcc.models._sparse_lu.SparseFactors`)."""

    jac: _Matrix | _Values
    factor: PyTree[Array]  # LU factors (``lu``), the inverse (``inverse``) or sparse ones
    perm: _Permutation  # row permutation of the dense LU factors
    c_factor: _Real
    jac_age: _Count
    factor_age: _Count


class BDFStatistics(eqx.Module):
    """Work counters carried in the solver state (``SaveAt(solver_state=True)``).

    diffrax resets the solver state when a step is rejected, so these count the work of
    the accepted steps (including their failed Newton attempts); the work of rejected
    steps is not included.
    """

    num_rhs: _Count
    num_jacobians: _Count
    num_factorisations: _Count
    num_newton_iterations: _Count
    num_newton_failures: _Count
    num_factorisation_failures: _Count


class BDFState(eqx.Module):
    """Solver state between steps.

    Attributes:
        history: [MAX_ORDER + 3, n] backward differences of the solution at spacing
            ``h``: row 0 is the current solution, row j the j-th difference.
        order: the order of the next step.
        h: the spacing of ``history``.
        n_equal: accepted steps since the step size or order last changed.
        rate: the Newton convergence-rate estimate (carried over between steps).
        linearisation: Jacobian and factorised iteration matrix.
        stats: work counters.
    """

    history: _History
    order: _Count
    h: _Real
    n_equal: _Count
    rate: _Real
    linearisation: _Linearisation
    stats: BDFStatistics


class BDFInterpolation(diffrax.AbstractLocalInterpolation):
    """Dense output of one BDF step: the polynomial of degree ``order`` through the
    last ``order + 1`` solution points, from their backward differences."""

    t0: _Time
    t1: _Time
    history: PyTree[Array]  # each leaf [MAX_ORDER + 1, *leaf shape]
    order: _Count | int

    def evaluate(self, t0, t1=None, left: bool = True) -> PyTree[Array]:
        del left
        if t1 is not None:
            return jtu.tree_map(lambda a, b: b - a, self.evaluate(t0), self.evaluate(t1))
        h = self.t1 - self.t0
        # A zero-length step (a finished member of a vmapped batch keeps "stepping" at
        # its end time) is never evaluated for a result, but a NaN here would still
        # reach the reverse-mode gradient through the masked branch.
        h = jnp.where(h == 0, 1.0, h)
        j = jnp.arange(MAX_ORDER)
        x = (t0 - (self.t1 - j * h)) / ((j + 1) * h)
        p = jnp.where(j < self.order, jnp.cumprod(x), 0.0)
        return jtu.tree_map(
            lambda d: d[0] + jnp.tensordot(p.astype(d.dtype), d[1:], axes=1), self.history
        )


def _run_if(pred: _Flag, fn: Callable, operand):
    """``fn(operand)`` where ``pred`` holds, else ``operand``, skipped at run time.

    A while loop of at most one trip rather than ``lax.cond``: under ``vmap`` a cond
    evaluates both branches for every element, while a loop with a batched predicate
    runs ``fn`` only when some element needs it. Operands must carry no derivatives.
    """

    def body(carry):
        return jnp.asarray(False), fn(carry[1])

    return lax.while_loop(lambda carry: carry[0], body, (jnp.asarray(pred), operand))[1]


class BDF(diffrax.AbstractAdaptiveSolver):
    r"""Variable-order (1-5) backward differentiation formulas with a modified Newton
    iteration that reuses the Jacobian and its LU factorisation across steps.

    One nonlinear equation per step, solved with ``M = I - c J`` where ``c = h /
    alpha_k``. As in CVODES, ``J`` is re-evaluated only every 51 steps or when the
    iteration fails to converge with an older ``J``; ``M`` is refactorised when ``c``
    has changed by more than 30 % since, every 20 steps, or with a new ``J``; in between,
    the correction is scaled by ``2 / (1 + c / c_factor)`` to allow for the change of
    ``c``. The convergence rate is carried from step to step, so most steps converge in
    one iteration (one right-hand-side evaluation). A step whose iteration fails even
    with a fresh Jacobian is rejected with an infinite error (the controller shrinks
    it); non-finite values fail the step the same way, so a solve that cannot proceed
    ends in ``max_steps`` with a failed result code rather than an exception.

    Step size and order are chosen as in Shampine & Reichelt (1997) / scipy's ``BDF``:
    the history is kept as backward differences at the current spacing (rescaled when
    the step changes), the order is reconsidered after ``k + 1`` steps at order ``k``
    from the error estimates of orders ``k - 1``, ``k`` and ``k + 1``, and a change is
    made only if it grows the step by at least 1.5 (CVODES). diffrax's step-size
    controller still decides acceptance: the error this solver returns is the local
    error estimate rescaled so that a :class:`diffrax.PIDController` with the **same**
    ``rtol``/``atol``/``norm`` and default coefficients accepts exactly the steps whose
    estimate is within tolerance and proposes the step size chosen here.

    With ``sparsity`` (the symbolic analysis of the Jacobian's pattern, see
    :func:`sparse_solver_for`), the Jacobian is evaluated at its nonzeros only, by one
    directional derivative per colour of a column colouring, and ``M`` is factorised
    by the sparse direct solver of :mod:`il6rcc.models._sparse_lu` (static pivots on
    the diagonal, guarded: a factorisation that fails its guards counts in
    ``num_factorisation_failures`` and fails the Newton attempt, so the step is
    retried with a fresh Jacobian and then rejected, never accepted with a wrong
    solve).

    ``method="ndf"`` uses the numerical differentiation formulas of Shampine & Reichelt
    (1997) (MATLAB's ``ode15s``, scipy's default): smaller error constants at orders 1-4.
    Dense output interpolates the last ``k + 1`` solution points. Derivatives flow
    through the Newton iterations as computed (the matrix ``M`` only preconditions them
    and is held constant), so reverse mode needs no extra factorisation.

    Arguments:
        rtol, atol: the tolerances of the step-size controller (needed here to weigh
            the Newton increments and to choose step sizes and orders).
        method: ``"bdf"`` or ``"ndf"``.
        linear_solver: ``"lu"`` (triangular solves with the LU factors) or
            ``"inverse"`` (the inverse of ``M``, formed from its LU factorisation:
            one matrix-vector product per iteration, faster for small systems).
        max_order: highest order used (1-5).
        norm: the controller's norm.
        sparsity: the sparse solver's analysis of the Jacobian's pattern (states x
            states), or None for dense linear algebra.
        jacobian_values: with ``sparsity``, ``(t, y, args) -> df/dy`` at the entries
            ``(sparsity.rows, sparsity.cols)`` (0 where not in the pattern) for a flat
            array state, if the vector field can give them more cheaply than coloured
            directional derivatives (a model with its own sparse Jacobian); else None.

    ??? cite "References"

        ```bibtex
        @article{shampine1997matlab,
            title={The {MATLAB} {ODE} Suite},
            author={Shampine, Lawrence F. and Reichelt, Mark W.},
            journal={SIAM Journal on Scientific Computing},
            volume={18}, number={1}, pages={1--22}, year={1997},
            doi={10.1137/S1064827594276424}
        }
        @article{hindmarsh2005sundials,
            title={{SUNDIALS}: Suite of nonlinear and differential/algebraic equation
                   solvers},
            author={Hindmarsh, Alan C. and Brown, Peter N. and Grant, Keith E. and
                    Lee, Steven L. and Serban, Radu and Shumaker, Dan E. and
                    Woodward, Carol S.},
            journal={ACM Transactions on Mathematical Software},
            volume={31}, number={3}, pages={363--396}, year={2005},
            doi={10.1145/1089014.1089020}
        }
        @article{byrne1975polyalgorithm,
            title={A polyalgorithm for the numerical solution of ordinary
                   differential equations},
            author={Byrne, George D. and Hindmarsh, Alan C.},
            journal={ACM Transactions on Mathematical Software},
            volume={1}, number={1}, pages={71--96}, year={1975},
            doi={10.1145/355626.355636}
        }
        ```
    """

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., BDFInterpolation]] = BDFInterpolation

    rtol: float
    atol: float
    method: Literal["bdf", "ndf"] = "bdf"
    linear_solver: Literal["lu", "inverse"] = "lu"
    max_order: int = MAX_ORDER
    norm: Callable[[PyTree], Array] = optx.rms_norm
    sparsity: SparseLU | None = eqx.field(static=True, default=None)
    jacobian_values: Callable[[Array, Array, PyTree], Array] | None = eqx.field(
        static=True, default=None
    )

    def __check_init__(self):
        problems = []
        if self.sparsity is not None and self.linear_solver != "lu":
            problems.append(
                f"linear_solver must be 'lu' with a sparsity pattern, got {self.linear_solver!r}"
            )
        if self.method not in ("bdf", "ndf"):
            problems.append(f"method must be 'bdf' or 'ndf', got {self.method!r}")
        if self.linear_solver not in ("lu", "inverse"):
            problems.append(f"linear_solver must be 'lu' or 'inverse', got {self.linear_solver!r}")
        if not (isinstance(self.max_order, int) and 1 <= self.max_order <= MAX_ORDER):
            problems.append(
                f"max_order must be an integer in 1..{MAX_ORDER}, got {self.max_order!r}"
            )
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                problems.append(f"{name} must be a number > 0, got {value!r}")
        if problems:
            raise ValueError("BDF: " + "; ".join(problems))

    # ------------------------------------------------------------ diffrax API
    def order(self, terms) -> int:
        del terms
        return self.max_order

    def error_order(self, terms) -> int:
        """The exponent diffrax's controller uses (its factor is
        ``safety * error**(-1 / error_order)``). The returned error is rescaled to
        carry the step size chosen by this solver at any order (see :meth:`step`);
        2 also makes diffrax's initial step size the one for an order-1 start."""
        del terms
        return _ERROR_ORDER

    def init(self, terms, t0, t1, y0, args) -> BDFState:
        flat, unravel = jfu.ravel_pytree(y0)
        if not jnp.issubdtype(flat.dtype, jnp.floating):
            raise ValueError(f"BDF needs a floating-point state, got dtype {flat.dtype}")
        rhs = self._rhs(terms, args, unravel)
        n = flat.shape[0]
        if self.sparsity is not None and self.sparsity.n != n:
            raise ValueError(
                f"BDF: the sparsity pattern is for {self.sparsity.n} states, the state has {n}"
            )
        zero = jnp.zeros((), jnp.int32)
        one = jnp.ones((), flat.dtype)
        shape = (n, n) if self.sparsity is None else (len(self.sparsity.rows),)
        jac = jnp.zeros(shape, flat.dtype)
        factor, perm = jtu.tree_map(
            lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(self._factorise, jac, one)
        )
        lin = _Linearisation(
            jac=jac, factor=factor, perm=perm, c_factor=one, jac_age=zero, factor_age=zero
        )
        stats = BDFStatistics(zero, zero, zero, zero, zero, zero)
        h = jnp.asarray(t1 - t0, flat.dtype)
        return self._start(rhs, t0, h, flat, lin, stats, args)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state: BDFState, made_jump):
        gamma, alpha, error_const = (jnp.asarray(a) for a in _tables(self.method))
        flat0, unravel = jfu.ravel_pytree(y0)
        rhs = self._rhs(terms, args, unravel)
        dtype = flat0.dtype
        h = jnp.asarray(t1 - t0, dtype)
        # A zero-length step is a no-op (a finished member of a vmapped batch keeps
        # "stepping" at its end time until the last member is done). It is computed with
        # a stand-in step size and discarded: with h = 0 the step would divide by zero
        # (c = 0 refactorises with c_factor = 0, the next ratio is 0 / 0), and NaNs in a
        # discarded branch still reach a reverse-mode gradient as 0 * NaN.
        zero_step = h == 0
        h = jnp.where(zero_step, jnp.where(solver_state.h > 0, solver_state.h, 1.0), h)
        state = solver_state
        if made_jump is not False:
            state = lax.cond(
                made_jump,
                lambda s: self._start(
                    rhs, t0, h, flat0, lax.stop_gradient(s.linearisation), s.stats, args
                ),
                lambda s: s,
                state,
            )

        # 1. The history at the new spacing (exact for the interpolating polynomial).
        k = state.order
        rows = jnp.arange(_ROWS)
        history = jnp.where(rows[:, None] == 0, flat0[None, :], state.history)
        ratio = h / jnp.where(state.h > 0, state.h, h)
        change = _small_matmul(_difference_matrix(ratio), jnp.asarray(_U, dtype))
        block = (rows[:, None] <= k) & (rows[None, :] <= k)
        change = jnp.where(block, change, jnp.eye(_ROWS, dtype=dtype))
        history = _small_matmul(change.T, history)
        same_h = lax.stop_gradient(jnp.abs(ratio - 1.0) <= 1e-8)
        n_equal = jnp.where(same_h, state.n_equal, 0)

        # 2. Predictor and the implicit equation for the correction d:
        #    G(d) = c f(t1, y_pred + d) - psi - d = 0.
        low = rows <= k
        y_pred = jnp.sum(jnp.where(low[:, None], history, 0.0), axis=0)
        alpha_k = _pick(alpha, k)
        weights = jnp.where(low & (rows >= 1), gamma[jnp.minimum(rows, MAX_ORDER + 1)], 0.0)
        psi = jnp.sum(weights[:, None] * history, axis=0) / alpha_k
        c = h / alpha_k
        newton_scale = lax.stop_gradient(self.atol + self.rtol * jnp.abs(y_pred))
        newton_coeff = _pick(error_const, k) / _NEWTON_COEFF

        lin = lax.stop_gradient(state.linearisation)
        need_jac = lin.jac_age >= _STEPS_PER_JACOBIAN
        c_sg = lax.stop_gradient(c)
        need_factor = (
            need_jac
            | (jnp.abs(c_sg / lin.c_factor - 1.0) > _MAX_GAMMA_CHANGE)
            | (lin.factor_age >= _STEPS_PER_FACTORISATION)
        )
        t1_sg = lax.stop_gradient(jnp.asarray(t1, dtype))
        y_pred_sg = lax.stop_gradient(y_pred)
        args_sg = _no_grad(args)
        rhs_sg = self._rhs(_no_grad(terms), args_sg, unravel)

        def setup(lin: _Linearisation, want_jac) -> _Linearisation:
            jac = _run_if(
                want_jac, lambda _: self._jacobian(rhs_sg, t1_sg, y_pred_sg, args_sg), lin.jac
            )
            factor, perm = self._factorise(jac, c_sg)
            zero = jnp.zeros((), jnp.int32)
            return _Linearisation(
                jac, factor, perm, c_sg, jnp.where(want_jac, zero, lin.jac_age), zero
            )

        # 3. Modified Newton: with the current matrix (refactorised if due), then, if
        #    that fails and J was not fresh, once more with a new J at the predictor.
        problem = (t1, y_pred, psi, c, terms, args, y0)
        fixed = (newton_scale, newton_coeff)
        lin1 = _run_if(need_factor, lambda l: setup(l, need_jac), lin)
        rate1 = jnp.where(need_factor, 1.0, state.rate).astype(dtype)
        first = _attempt(problem, lin1, rate1, jnp.asarray(True), *fixed, solver=self)
        retry = (first.status == _FAILED) & ~need_jac
        lin = _run_if(retry, lambda l: setup(l, jnp.asarray(True)), lin1)
        second = _attempt(problem, lin, jnp.ones((), dtype), retry, *fixed, solver=self)
        final = jtu.tree_map(lambda b, a: jnp.where(retry, b, a), second, first)
        d, rate, converged = final.d, final.rate, final.status == _CONVERGED
        y_new = y_pred + d
        n_rhs = first.iterations + second.iterations
        n_jac = (need_jac & need_factor).astype(jnp.int32) + retry.astype(jnp.int32)
        n_factor = need_factor.astype(jnp.int32) + retry.astype(jnp.int32)
        n_factor_fail = need_factor.astype(jnp.int32) * self._failed(lin1.factor) + retry.astype(
            jnp.int32
        ) * self._failed(lin.factor)
        n_fail = (first.status == _FAILED).astype(jnp.int32) + (
            retry & (second.status == _FAILED)
        ).astype(jnp.int32)

        # 4. Local error, acceptance (by the controller) and the next step size/order.
        y1 = jnp.where(converged, y_new, flat0)
        weight = lax.stop_gradient(self.atol + self.rtol * jnp.maximum(jnp.abs(flat0), jnp.abs(y1)))
        error = lax.stop_gradient(_pick(error_const, k) * d)
        error_norm = jnp.where(converged, self._norm(error / weight), jnp.inf)
        accepted = error_norm < 1.0

        new_history = _update_history(history, d, k)
        consider = n_equal + 1 >= k + 1
        history_sg = lax.stop_gradient(new_history)
        error_low = jnp.where(
            k > 1,
            self._norm(_pick(error_const, k - 1) * _pick(history_sg, k) / weight),
            jnp.inf,
        )
        error_high = jnp.where(
            k < self.max_order,
            self._norm(_pick(error_const, k + 1) * _pick(history_sg, k + 2) / weight),
            jnp.inf,
        )
        errors = jnp.stack([error_low, error_norm, error_high])
        exponents = 1.0 / (k + jnp.arange(3)).astype(dtype)
        growth = jnp.where(errors > 0, errors, 1e-300) ** -exponents
        best = jnp.argmax(growth)
        eta = jnp.minimum(_SAFETY * growth[best], _MAX_GROWTH)
        take = consider & (eta >= _GROWTH_THRESHOLD)
        new_order = jnp.where(take, k + best - 1, k).astype(jnp.int32)

        # The error handed to the controller: its norm is `reported`, which makes a
        # PIDController (same tolerances, default coefficients) accept iff
        # error_norm < 1, shrink by safety * error_norm**(-1/(k+1)) when rejecting, and
        # grow by eta (or keep h) when accepting.
        reject_norm = error_norm ** (_ERROR_ORDER / (k + 1.0))
        accept_norm = jnp.where(take, (eta / _SAFETY) ** (-_ERROR_ORDER), _KEEP)
        reported = lax.stop_gradient(jnp.where(accepted, accept_norm, reject_norm))
        usable = converged & (error_norm > 0) & jnp.isfinite(error_norm)
        y_error = jnp.where(
            usable, error * (reported / jnp.where(usable, error_norm, 1.0)), reported * weight
        )

        lin = eqx.tree_at(
            lambda x: (x.jac_age, x.factor_age), lin, (lin.jac_age + 1, lin.factor_age + 1)
        )
        stats = state.stats
        new_state = BDFState(
            history=new_history,
            order=new_order,
            h=h,
            n_equal=jnp.where(take, 0, n_equal + 1),
            rate=rate,
            linearisation=lin,
            stats=BDFStatistics(
                num_rhs=stats.num_rhs + n_rhs,
                num_jacobians=stats.num_jacobians + n_jac,
                num_factorisations=stats.num_factorisations + n_factor,
                num_newton_iterations=stats.num_newton_iterations + n_rhs,
                num_newton_failures=stats.num_newton_failures + n_fail,
                num_factorisation_failures=stats.num_factorisation_failures + n_factor_fail,
            ),
        )
        dense_history = new_history[: MAX_ORDER + 1]
        # the zero-length step: y1 = y0, no error, the state and its statistics kept
        y1 = jnp.where(zero_step, flat0, y1)
        y_error = jnp.where(zero_step, 0.0, y_error)
        new_state = jtu.tree_map(
            lambda old, new: jnp.where(zero_step, old, new), solver_state, new_state
        )
        constant = jnp.zeros_like(dense_history).at[0].set(flat0)
        dense_history = jnp.where(zero_step, constant, dense_history)
        dense_info = dict(history=jax.vmap(unravel)(dense_history), order=k)
        return unravel(y1), unravel(y_error), dense_info, new_state, diffrax.RESULTS.successful

    # ------------------------------------------------------------ helpers
    def _norm(self, x: Array) -> Array:
        # optx.rms_norm guards its derivative with a custom_jvp that XLA keeps as a
        # separate call; the values here are never differentiated.
        return _rms(x) if self.norm is optx.rms_norm else self.norm(x)

    @staticmethod
    def _rhs(terms, args, unravel) -> Callable[[Array, Array], Array]:
        def rhs(t, y):
            return jfu.ravel_pytree(terms.vf(t, unravel(y), args))[0]

        return rhs

    def _start(self, rhs, t0, h, flat, lin, stats, args) -> BDFState:
        """A fresh order-1 history at spacing ``h`` (first step or after a jump), with
        a new Jacobian and factorisation."""
        _, alpha, _ = _tables(self.method)
        f0 = rhs(t0, flat)
        history = jnp.zeros((_ROWS, flat.shape[0]), flat.dtype)
        history = history.at[0].set(flat).at[1].set(h * f0)
        t_sg, y_sg, h_sg = (lax.stop_gradient(jnp.asarray(x)) for x in (t0, flat, h))
        jac = lax.stop_gradient(self._jacobian(rhs, t_sg, y_sg, _no_grad(args)))
        c = h_sg / alpha[1]
        factor, perm = self._factorise(jac, c)
        zero = jnp.zeros((), jnp.int32)
        lin = _Linearisation(jac, factor, perm, c.astype(flat.dtype), zero, zero)
        one = jnp.ones((), jnp.int32)
        stats = BDFStatistics(
            stats.num_rhs + one,
            stats.num_jacobians + one,
            stats.num_factorisations + one,
            stats.num_newton_iterations,
            stats.num_newton_failures,
            stats.num_factorisation_failures + self._failed(factor),
        )
        return BDFState(
            history=history,
            order=one,
            h=h,
            n_equal=zero,
            rate=jnp.ones((), flat.dtype),
            linearisation=lin,
            stats=stats,
        )

    def _jacobian(self, rhs, t: Array, y: Array, args: PyTree = None) -> Array:
        """df/dy by forward-mode differentiation (one batched evaluation); with a
        sparsity pattern its values at the pattern's entries, from one directional
        derivative per colour (compressed Jacobian, Curtis, Powell & Reid 1974)."""
        if self.sparsity is None:
            return jax.jacfwd(rhs, 1)(t, y)
        if self.jacobian_values is not None:
            return self.jacobian_values(t, y, args)
        sp = self.sparsity
        seeds = jnp.asarray(np.eye(sp.n_colours)[sp.colour], dtype=y.dtype)
        compressed = jax.vmap(
            lambda seed: jax.jvp(lambda z: rhs(t, z), (y,), (seed,))[1], in_axes=1, out_axes=1
        )(seeds)
        return jnp.where(sp.in_pattern, compressed[sp.rows, sp.colour[sp.cols]], 0.0)

    def _factorise(self, jac: Array, c: Array) -> tuple[PyTree[Array], Array]:
        """The factorisation of ``M = I - c J`` and its row permutation (dense LU)."""
        if self.sparsity is not None:
            sp = self.sparsity
            values = jnp.where(sp.rows == sp.cols, 1.0, 0.0).astype(jac.dtype) - c * jac
            return sp.factorise(values), jnp.zeros(1, jnp.int32)
        matrix = jnp.eye(jac.shape[0], dtype=jac.dtype) - c * jac
        lu, _, perm = lax.linalg.lu(matrix)
        if self.linear_solver == "lu":
            return lu, perm.astype(jnp.int32)
        eye = jnp.eye(matrix.shape[0], dtype=matrix.dtype)
        return _lu_solve(lu, perm, eye), jnp.zeros_like(perm, dtype=jnp.int32)

    def _failed(self, factor) -> Array:
        """1 where a sparse factorisation failed its guards, else 0."""
        if self.sparsity is None:
            return jnp.zeros((), jnp.int32)
        return (~factor.ok).astype(jnp.int32)

    def _solve(self, lin: _Linearisation, b: Array) -> Array:
        if self.sparsity is not None:
            return self.sparsity.solve(lin.factor, b)
        if self.linear_solver == "lu":
            return _lu_solve(lin.factor, lin.perm, b)
        return lin.factor @ b


class _Attempt(eqx.Module):
    """Result of one modified-Newton attempt."""

    d: Array  # the correction y - y_pred
    rate: Array  # convergence-rate estimate
    status: Array  # _CONVERGED or _FAILED (_FAILED also when not attempted)
    iterations: Array  # right-hand-side evaluations made


def _newton_iteration(problem, lin, newton_scale, newton_coeff, solver):
    """One modified-Newton iteration on G(d) = c f(t1, y_pred + d) - psi - d = 0 with
    the factorised matrix of ``lin`` (CVODES' test for convergence and divergence)."""
    t1, y_pred, psi, c, terms, args, template = problem
    rhs = solver._rhs(terms, args, jfu.ravel_pytree(template)[1])

    def iterate(carry):
        d, prev, rate, m, status = carry
        fy = rhs(t1, y_pred + d)
        # M was factorised for c_factor; scaling the correction by 2 / (1 + c / c_factor)
        # corrects for the change of c in both the stiff and the non-stiff limit.
        scale_change = lax.stop_gradient(2.0 / (1.0 + c / lin.c_factor))
        dy = scale_change * solver._solve(lin, c * fy - psi - d)
        size = lax.stop_gradient(solver._norm(dy / newton_scale))
        ratio = size / jnp.where(prev > 0, prev, 1.0)
        rate = jnp.where(m > 0, jnp.maximum(_RATE_DECAY * rate, ratio), rate)
        finite = lax.stop_gradient(jnp.all(jnp.isfinite(dy)))
        converged = finite & (size * jnp.minimum(1.0, rate) * newton_coeff <= 1.0)
        failed = (
            ~finite
            | ((m > 0) & (size > _DIVERGENCE * prev))
            | (~converged & (m + 1 >= _MAX_ITERATIONS))
        )
        status = jnp.where(converged, _CONVERGED, jnp.where(failed, _FAILED, status))
        return d + dy, size, rate, m + 1, status

    return iterate


def _attempt_start(problem, rate, active):
    y_pred = problem[1]
    zero = jnp.zeros((), jnp.int32)
    status = jnp.where(active, _ITERATE, _FAILED)
    return (jnp.zeros_like(y_pred), jnp.zeros((), y_pred.dtype), rate, zero, status)


def _attempt_result(carry) -> _Attempt:
    d, _, rate, m, status = carry
    return _Attempt(d=d, rate=rate, status=status, iterations=m)


@eqx.filter_custom_jvp
def _attempt(problem, lin, rate, active, newton_scale, newton_coeff, *, solver) -> _Attempt:
    """Up to ``_MAX_ITERATIONS`` Newton iterations from the predictor (none unless
    ``active``). Evaluated as a while loop that stops at convergence; its derivative is
    that of the same iterations unrolled (:func:`_attempt_unrolled`), so reverse mode
    differentiates exactly the iterations that were made."""
    iterate = _newton_iteration(problem, lin, newton_scale, newton_coeff, solver)
    carry = lax.while_loop(
        lambda carry: carry[4] == _ITERATE, iterate, _attempt_start(problem, rate, active)
    )
    return _attempt_result(carry)


def _attempt_unrolled(problem, lin, rate, active, newton_scale, newton_coeff, solver):
    iterate = _newton_iteration(problem, lin, newton_scale, newton_coeff, solver)

    def body(carry, _):
        return lax.cond(carry[4] == _ITERATE, iterate, lambda x: x, carry), None

    carry, _ = lax.scan(body, _attempt_start(problem, rate, active), None, length=_MAX_ITERATIONS)
    return _attempt_result(carry)


@_attempt.def_jvp
def _attempt_jvp(primals, tangents, *, solver):
    problem, *rest = primals

    def unrolled(problem):
        return _attempt_unrolled(problem, *rest, solver)

    return eqx.filter_jvp(unrolled, (problem,), (tangents[0],))


def _no_grad(tree):
    """``lax.stop_gradient`` on the array leaves of any pytree (terms hold callables)."""
    return jtu.tree_map(lambda x: lax.stop_gradient(x) if eqx.is_array(x) else x, tree)


def _lu_solve(lu: Array, perm: Array, b: Array) -> Array:
    """x with ``A x = b`` from ``P A = L U`` (``perm``: the rows of ``A`` in ``P A``)."""
    x = jax.scipy.linalg.solve_triangular(lu, b[perm], lower=True, unit_diagonal=True)
    return jax.scipy.linalg.solve_triangular(lu, x, lower=False)


def _update_history(history: Array, d: Array, k: Array) -> Array:
    """Backward differences after a step with correction ``d`` at order ``k``
    (Shampine & Reichelt 1997, section 2.3): rows k + 1 and k + 2 take ``d`` and its
    difference with the old row k + 1, then each row i <= k adds row i + 1 (from the
    top: row i becomes the sum of rows i..k+1); rows above k + 2 are left alone."""
    rows = jnp.arange(history.shape[0])
    previous = _pick(history, k + 1)
    history = jnp.where(
        rows[:, None] == k + 2,
        (d - previous)[None, :],
        jnp.where(rows[:, None] == k + 1, d[None, :], history),
    )
    i, j = rows[:, None], rows[None, :]
    summing = jnp.where(i <= k + 1, (j >= i) & (j <= k + 1), i == j)
    return _small_matmul(summing.astype(history.dtype), history)


def bdf_statistics(solution: diffrax.Solution) -> dict[str, int]:
    """The work counters of a solve made with ``SaveAt(solver_state=True)`` (summed
    over a batch), plus diffrax's step counts."""
    state = solution.solver_state
    if not isinstance(state, BDFState):
        raise ValueError(
            "bdf_statistics needs a solution of a BDF solve with SaveAt(solver_state=True); "
            f"got solver_state of type {type(state).__name__}"
        )
    out = {k: int(np.sum(v)) for k, v in vars(state.stats).items()}
    for key in ("num_steps", "num_accepted_steps", "num_rejected_steps"):
        out[key] = int(np.sum(solution.stats[key]))
    return out


__all__ = ["BDF", "BDFInterpolation", "BDFState", "BDFStatistics", "MAX_ORDER", "bdf_statistics"]
