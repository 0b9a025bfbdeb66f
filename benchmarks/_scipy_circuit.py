"""The RCC circuit solved with scipy's ``solve_ivp`` (BDF, LSODA), for the benchmark.

The right-hand side is the model's own vector field, jitted with JAX, and the
Jacobian is ``jax.jacfwd`` of it, so the comparison with il6rcc is about the
integrator. The computation mirrors il6rcc's:

* basal state per (cell line, pre-treatment) group: integrate towards the steady
  state (terminal event max|f| < 1e-10 + 1e-8 max|y|, as diffrax's
  ``steady_state_event(rtol=1e-8, atol=1e-10)``), then Newton on the same residual
  (accumulator states pinned to the initial guess);
* treatment: ``model.perturb``, then integrate to the last time point, output at
  the time points (``t_eval``).

Gradient: forward sensitivities. The augmented system ``[y, S]``, ``S = dy/dp``
[n_states, n_params] for all parameters of the condition's cell line,
``S' = J S + df/dp``, is integrated with BDF (error control on ``y`` and ``S``, as
AMICI's default) and its exact Jacobian, a sparse matrix (``J``, the block
``d(J S + df/dp)/dy`` and ``kron(J, I)``), so that scipy factorises it with ``splu``.
The basal sensitivities come from the implicit function theorem at the steady state,
``S0 = -(dr/dy)^-1 dr/dp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

#: Steady-state event of the approach integration (as il6rcc's pre-equilibration).
SS_RTOL, SS_ATOL = 1e-8, 1e-10
#: Newton polish of the basal state (as il6rcc's pre-equilibration).
NEWTON_RTOL, NEWTON_ATOL, NEWTON_MAX_STEPS = 1e-11, 1e-13, 64


@dataclass
class ScipyStats:
    nfev: int = 0
    njev: int = 0
    nlu: int = 0
    steps_basal: int = 0  # scipy reports no step count; t_eval points excluded: len(sol.t)
    failures: int = 0


class ScipyCircuit:
    """Forward solves and forward-sensitivity gradients of a condition batch."""

    def __init__(self, model, batch, params, times, rtol: float, atol: float, t_eq: float):
        self.model = model
        self.batch = batch
        self.params = np.asarray(params, dtype=np.float64)
        self.times = np.asarray(times, dtype=np.float64)
        self.rtol, self.atol, self.t_eq = rtol, atol, t_eq
        n = model.n_states
        acc = np.array([s in model.accumulator_states for s in model.states])

        def f(y, p, u):
            return model.vector_field(0.0, y, p, u)

        def residual(y, p, u):
            anchor = model.initial_guess(p, u)
            return jnp.where(acc, y - anchor, f(y, p, u))

        def basal_sens(y, p, u):
            jr = jax.jacfwd(residual, argnums=0)(y, p, u)
            jp = jax.jacfwd(residual, argnums=1)(y, p, u)
            return -jnp.linalg.solve(jr, jp)

        def perturb_sens(y, s, p, u):
            y0 = model.perturb(y, p, u)
            dy = jax.jacfwd(model.perturb, argnums=0)(y, p, u)
            dp = jax.jacfwd(model.perturb, argnums=1)(y, p, u)
            return y0, dy @ s + dp

        def sens_rhs(y, s, p, u):
            fy, fp = jax.jacfwd(f, argnums=(0, 1))(y, p, u)
            return fy @ s + fp

        def aug_rhs(z, p, u):
            y, s = z[:n], z[n:].reshape(n, -1)
            return jnp.concatenate([f(y, p, u), sens_rhs(y, s, p, u).reshape(-1)])

        def aug_jac_blocks(z, p, u):
            """J = df/dy and the block d(J S + df/dp)/dy [n*n_p, n] of the augmented
            Jacobian [[J, 0], [that, kron(I, J)]] (exact, not the block diagonal)."""
            y, s = z[:n], z[n:].reshape(n, -1)
            lower = jax.jacfwd(sens_rhs, argnums=0)(y, s, p, u)  # [n, n_p, n]
            return jax.jacfwd(f)(y, p, u), lower.reshape(-1, n)

        def observe_all(ys, p, u):
            return jax.vmap(lambda t, y: model.observe(t, y, p, u))(self.times, ys)

        def loss(ys, p, u):
            return jnp.sum(jnp.log(observe_all(ys, p, u)))

        def loss_grad(ys, ss, p, u):
            gy, gp = jax.grad(loss, argnums=(0, 1))(ys, p, u)
            return gp + jnp.einsum("tn,tnp->p", gy, ss)

        self._f = jax.jit(f)
        self._jac = jax.jit(jax.jacfwd(f))
        self._res = jax.jit(lambda y, p, u: (residual(y, p, u), jax.jacfwd(residual)(y, p, u)))
        self._guess = jax.jit(model.initial_guess)
        self._basal_sens = jax.jit(basal_sens)
        self._perturb = jax.jit(model.perturb)
        self._perturb_sens = jax.jit(perturb_sens)
        self._aug = jax.jit(aug_rhs)
        self._aug_jac = jax.jit(aug_jac_blocks)
        self._observe = jax.jit(observe_all)
        self._loss_grad = jax.jit(loss_grad)
        self.n = n
        self.stats = ScipyStats()

    # ------------------------------------------------------------------ pieces
    def warm_up(self) -> None:
        """Compile the jitted JAX pieces (reported apart from run time)."""
        p, u = self.params[0], np.asarray(self.batch.inputs[0])
        y = np.asarray(self._guess(p, u))
        self._f(y, p, u)
        self._jac(y, p, u)
        self._res(y, p, u)
        s = np.asarray(self._basal_sens(y, p, u))
        self._perturb(y, p, u)
        self._perturb_sens(y, s, p, u)
        z = np.concatenate([y, s.ravel()])
        self._aug(z, p, u)
        self._aug_jac(z, p, u)
        ys = np.tile(y, (len(self.times), 1))
        self._observe(ys, p, u)
        self._loss_grad(ys, np.tile(s, (len(self.times), 1, 1)), p, u)

    def _rhs(self, p, u):
        f, jf = self._f, self._jac
        p, u = jnp.asarray(p), jnp.asarray(u)  # device arrays: no conversion per call

        def fun(t, y):
            return np.asarray(f(y, p, u))

        def jac(t, y):
            return np.asarray(jf(y, p, u))

        return fun, jac

    def basal(self, group: int, method: str, sensitivities: bool):
        p = self.params[self.batch.basal_param_index[group]]
        u = np.asarray(self.batch.basal_inputs[group], dtype=np.float64)
        guess = np.asarray(self._guess(p, u))
        fun, jac = self._rhs(p, u)

        def steady(t, y):
            return np.max(np.abs(fun(t, y))) - (SS_ATOL + SS_RTOL * np.max(np.abs(y)))

        steady.terminal = True
        steady.direction = -1
        sol = solve_ivp(
            fun,
            (0.0, self.t_eq),
            guess,
            method=method,
            jac=jac,
            rtol=self.rtol,
            atol=self.atol,
            events=steady,
        )
        self._count(sol)
        y = sol.y[:, -1] if sol.success else guess
        for _ in range(NEWTON_MAX_STEPS):
            r, jr = self._res(y, p, u)
            dy = np.linalg.solve(np.asarray(jr), np.asarray(r))
            y = y - dy
            if np.all(np.abs(dy) <= NEWTON_ATOL + NEWTON_RTOL * np.abs(y)):
                break
        ok = bool(np.max(np.abs(np.asarray(self._res(y, p, u)[0]))) < 1e-8)
        if not ok:
            self.stats.failures += 1
        s = np.asarray(self._basal_sens(y, p, u)) if sensitivities else None
        return y, s

    def _count(self, sol) -> None:
        self.stats.nfev += int(sol.nfev)
        self.stats.njev += int(sol.njev)
        self.stats.nlu += int(sol.nlu)
        if not sol.success:
            self.stats.failures += 1

    # ------------------------------------------------------------------ public
    def forward(self, method: str) -> np.ndarray:
        """Observables [n_conditions, n_times, n_observables]."""
        b = self.batch
        basal = [self.basal(g, method, False)[0] for g in range(len(b.basal_param_index))]
        out = np.empty((b.n_conditions, len(self.times), len(self.model.observables)))
        for c in range(b.n_conditions):
            p = self.params[b.param_index[c]]
            u = np.asarray(b.inputs[c], dtype=np.float64)
            y0 = np.asarray(self._perturb(basal[b.basal_index[c]], p, u))
            fun, jac = self._rhs(p, u)
            sol = solve_ivp(
                fun,
                (0.0, float(self.times[-1])),
                y0,
                method=method,
                jac=jac,
                t_eval=self.times,
                rtol=self.rtol,
                atol=self.atol,
            )
            self._count(sol)
            ys = sol.y.T if sol.success else np.full((len(self.times), self.n), np.nan)
            out[c] = np.asarray(self._observe(ys, p, u))
        return out

    def gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradient of sum(log observables) w.r.t. params [n_rows, n_params] by BDF
        forward sensitivities, and the observables."""
        b = self.batch
        basal = [self.basal(g, "BDF", True) for g in range(len(b.basal_param_index))]
        grad = np.zeros_like(self.params)
        n = self.n
        obs = np.empty((b.n_conditions, len(self.times), len(self.model.observables)))
        for c in range(b.n_conditions):
            row = b.param_index[c]
            p = self.params[row]
            u = np.asarray(b.inputs[c], dtype=np.float64)
            yb, sb = basal[b.basal_index[c]]
            y0, s0 = (np.asarray(a) for a in self._perturb_sens(yb, sb, p, u))
            n_p = s0.shape[1]
            eye = sp.identity(n_p, format="csc")
            pj, uj = jnp.asarray(p), jnp.asarray(u)

            def fun(t, z, p=pj, u=uj):
                return np.asarray(self._aug(z, p, u))

            def jac(t, z, p=pj, u=uj, eye=eye):
                j, lower = (np.asarray(a) for a in self._aug_jac(z, p, u))
                return sp.bmat([[j, None], [lower, sp.kron(j, eye)]], format="csc")

            sol = solve_ivp(
                fun,
                (0.0, float(self.times[-1])),
                np.concatenate([y0, s0.ravel()]),
                method="BDF",
                jac=jac,
                t_eval=self.times,
                rtol=self.rtol,
                atol=self.atol,
            )
            self._count(sol)
            if not sol.success:
                grad[row] = np.nan
                continue
            zs = sol.y.T
            ys, ss = zs[:, :n], zs[:, n:].reshape(len(self.times), n, n_p)
            grad[row] += np.asarray(self._loss_grad(ys, ss, p, u))
            obs[c] = np.asarray(self._observe(ys, p, u))
        return grad, obs
