"""Batched L-BFGS on the host around one compiled, vmapped value-and-gradient.

Every start is optimised independently (own history, own backtracking line search),
but all starts are evaluated together in one compiled call of ``value_and_grad`` over
a fixed batch of points (mapped one after the other, so that a failed solve of one
point cannot touch the others). The same compiled function then serves the finite-difference
Hessian and the chain-initialisation checks, so the expensive gradient of the ODE
model is compiled once for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

BIG = 1e30


@dataclass
class BatchedObjective:
    """``potential(x, data)`` (flat vector -> scalar) evaluated on a fixed batch of
    points; ``data`` is passed to the compiled function as an argument."""

    potential: object
    data: object
    batch: int

    def __post_init__(self):
        def safe(x, data):
            value, grad = jax.value_and_grad(self.potential)(x, data)
            ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
            return jnp.where(ok, value, BIG), jnp.where(ok, grad, 0.0)

        # lax.map, not vmap: under vmap a start whose ODE solve fails turned the values
        # of the other starts in its batch into NaN (the solver's error handling acts on
        # the whole batch), and on CPU a batched while loop runs in lock-step anyway.
        self._fn = jax.jit(lambda xs, data: jax.lax.map(lambda x: safe(x, data), xs))

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values [k] and gradients [k, n] at k <= batch points (padded internally)."""
        points = np.asarray(points, dtype=np.float64)
        k = points.shape[0]
        values, grads = [], []
        for start in range(0, k, self.batch):
            chunk = points[start : start + self.batch]
            pad = self.batch - chunk.shape[0]
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            v, g = self._fn(jnp.asarray(chunk), self.data)
            values.append(np.asarray(v)[: self.batch - pad])
            grads.append(np.asarray(g)[: self.batch - pad])
        return np.concatenate(values), np.concatenate(grads)


def _direction(g, s_hist, y_hist):
    """Two-loop recursion: -H g from the (s, y) history of one start."""
    q = g.copy()
    alphas = []
    for s, y in reversed(list(zip(s_hist, y_hist, strict=True))):
        rho = 1.0 / float(y @ s)
        a = rho * float(s @ q)
        alphas.append((rho, a, s, y))
        q -= a * y
    if s_hist:
        s, y = s_hist[-1], y_hist[-1]
        q *= float(s @ y) / float(y @ y)
    for rho, a, s, y in reversed(alphas):
        b = rho * float(y @ q)
        q += (a - b) * s
    return -q


def minimise_batched(
    objective: BatchedObjective,
    starts: np.ndarray,
    max_steps: int = 200,
    gtol: float = 1e-5,
    ftol: float = 1e-10,
    memory: int = 10,
    progress=None,
    every: int = 10,
):
    """L-BFGS from every start. Returns (x [k, n], f [k], steps [k]); starts whose
    value never became finite keep f = inf. ``progress(message)`` gets a line every
    ``every`` iterations (best value, active starts, evaluation rate)."""
    import time

    t_start = time.perf_counter()
    x = np.array(starts, dtype=np.float64)
    k = x.shape[0]
    f, g = objective(x)
    n_evals = k
    s_hist = [[] for _ in range(k)]
    y_hist = [[] for _ in range(k)]
    step = np.ones(k)
    active = f < BIG
    steps = np.zeros(k, dtype=int)
    for it in range(max_steps):
        if not active.any():
            break
        if progress is not None and it and it % every == 0:
            rate = n_evals / max(time.perf_counter() - t_start, 1e-9)
            finite = f[f < BIG]
            best = f"{finite.min():.4g}" if finite.size else "none finite"
            progress(
                f"MAP  iteration {it:4d}/{max_steps} | best -log posterior {best} | "
                f"{int(active.sum())} of {k} starts still improving | {rate:.2f} points/s"
            )
        d = np.zeros_like(x)
        for i in np.flatnonzero(active):
            d[i] = _direction(g[i], s_hist[i], y_hist[i])
            if g[i] @ d[i] >= 0:  # not a descent direction: restart from steepest descent
                s_hist[i], y_hist[i] = [], []
                d[i] = -g[i]
            if not s_hist[i]:
                step[i] = min(1.0, 1.0 / max(np.linalg.norm(g[i]), 1e-12))
            else:
                step[i] = 1.0
        searching = active.copy()
        x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
        for _halving in range(30):
            if not searching.any():
                break
            trial = np.where(searching[:, None], x + step[:, None] * d, x)
            # evaluate only the starts still searching (each evaluation is an ODE solve
            # of every condition and its gradient; finished or failed starts cost nothing)
            idx = np.flatnonzero(searching)
            ft, gt = np.full(k, np.inf), np.zeros_like(x)
            ft[idx], gt[idx] = objective(trial[idx])
            n_evals += idx.size
            slope = np.einsum("ij,ij->i", g, d)
            ok = searching & (ft < BIG) & (ft <= f + 1e-4 * step * slope)
            x_new[ok], f_new[ok], g_new[ok] = trial[ok], ft[ok], gt[ok]
            searching &= ~ok
            step[searching] *= 0.5
        for i in np.flatnonzero(active):
            if searching[i]:  # line search failed: stop this start
                active[i] = False
                continue
            s, y = x_new[i] - x[i], g_new[i] - g[i]
            if s @ y > 1e-12:
                s_hist[i].append(s)
                y_hist[i].append(y)
                if len(s_hist[i]) > memory:
                    s_hist[i].pop(0)
                    y_hist[i].pop(0)
            converged = (np.max(np.abs(g_new[i])) < gtol) or (
                abs(f[i] - f_new[i]) <= ftol * max(1.0, abs(f[i]))
            )
            steps[i] += 1
            if converged:
                active[i] = False
        x, f, g = x_new, f_new, g_new
    return x, np.where(f < BIG, f, np.inf), steps


def fd_hessian_batched(objective: BatchedObjective, x: np.ndarray, h: float = 1e-4):
    """Hessian by central differences of gradients evaluated through ``objective``."""
    n = x.shape[0]
    points = np.concatenate([x + h * np.eye(n), x - h * np.eye(n)])
    _, grads = objective(points)
    out = (grads[:n] - grads[n:]) / (2 * h)
    out = 0.5 * (out + out.T)
    return np.where(np.isfinite(out), out, 0.0)


__all__ = ["BatchedObjective", "fd_hessian_batched", "minimise_batched"]
