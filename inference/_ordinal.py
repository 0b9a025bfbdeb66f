"""The probability of an order of noisy levels: the likelihood of one rank row.

A rank ``T_1 > T_2 > ... > T_k`` (tiers of cell lines or conditions) is one ordinal
observation. Each member ``e`` is observed as ``z_e + eps_e`` with independent
standard normal noise (levels in units of the member noise SD); the row says every
member of a tier lies above every member of the next tier. So the ``k - 1`` adjacent
contrasts share noise (a member sits in two of them) and are correlated (-1/2 between
neighbouring singleton contrasts), and the likelihood is one orthant probability, not
a product of pairwise probits. (With a per-member SD of ``s / sqrt(2)`` a two-member
rank is exactly the sign probit ``Phi(delta / s)``.)

Computation (exact up to quadrature error): tiers in the middle are expanded into
*chains*, one per order of their members (the caller sums the chains' probabilities;
a chain may be stored reflected, levels negated and order reversed, so that its top is
one member). For a chain with a top set ``A``, middle singletons ``m_1 > ... > m_L``
and a bottom set ``B``, from the bottom up:

    H_B(x) = prod_b Phi(x - z_b)                      P(all of B below x)
    H_j(x) = int_{-inf}^x phi(u - z_j) H_{j+1}(u) du   P(m_j and the chain below it, below x)
    P      = int g_A(x) H_1(x) dx,   g_A = -d/dx prod_a (1 - Phi(x - z_a))

evaluated on a grid of ``grid_size`` points that covers every level +- 8.5 noise SDs
(the mass outside is below 1e-16). The running integrals use the trapezoidal rule with
its Euler-Maclaurin end correction (fourth order; the integrand's derivative is known
in closed form) and the exponential tail left of the grid; the last integral is a
plain trapezoid (spectrally accurate for an integrand that vanishes at both ends).
Against scipy's bivariate normal CDF the 3-tier probability agrees to about 1e-8
(1e-6 relative for orders far in the tail) with 256 points
(tests/test_inference_density.py).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

#: Half-width of the grid beyond the extreme levels, in noise SDs.
MARGIN = 8.5
# A Python float: a JAX constant here would start JAX (fixing its device count) at
# import, and in float32 when imported before float64 is switched on.
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_phi(x):
    return -0.5 * x**2 - _LOG_SQRT_2PI


def _log_add(a, b):
    """log(exp(a) + exp(b)) for finite a, b (cheaper than ``jnp.logaddexp``)."""
    return jnp.maximum(a, b) + jnp.log1p(jnp.exp(-jnp.abs(a - b)))


def _log_cdf(x):
    """log Phi(x): through erfc above -30 (relative error ~1e-15), the asymptotic
    series below. Cheaper to compile and run than ``jax.scipy.special.log_ndtr``."""
    upper = jnp.log(0.5 * jax.lax.erfc(-jnp.maximum(x, -30.0) / jnp.sqrt(2.0)))
    xl = jnp.minimum(x, -30.0)
    r = 1.0 / xl**2
    lower = _log_phi(xl) - jnp.log(-xl) + jnp.log1p(r * (-1.0 + r * (3.0 - 15.0 * r)))
    return jnp.where(x > -30.0, upper, lower)


#: Grid points per block of the running sums (each block is summed after shifting by
#: its own largest value, so no value underflows against a distant maximum).
BLOCK = 32


def _log_cumulative(logf, dlogf, h):
    """log of int_{-inf}^{x_i} f for every grid point i (last axis, a multiple of
    :data:`BLOCK` long), given log f and d log f / dx on the grid (spacing ``h``).

    The running sum is taken block by block in linear space, each block shifted by its
    own maximum, and the blocks are chained in log space: a cumulative log-sum-exp over
    the whole line costs XLA on CPU 20 s to compile and runs 3x slower, and one shift
    for the whole line underflows in the far tails of 5-tier ranks."""
    *front, g = logf.shape
    blocks = logf.reshape((*front, g // BLOCK, BLOCK))
    shift = jax.lax.stop_gradient(jnp.max(blocks, axis=-1, keepdims=True))
    local = jnp.cumsum(jnp.exp(blocks - shift), axis=-1)  # >= 1 from each block's maximum on
    positive = local > 0.0
    log_local = jnp.where(positive, jnp.log(jnp.where(positive, local, 1.0)), -jnp.inf) + shift
    # a sum is at least its last term: where the terms before the block's maximum
    # underflow (log f rising by > 700 within a block, far in a tail), that bound is
    # also the value (a steeply rising sum is its last term)
    log_local = jnp.maximum(log_local, blocks)
    log_h = jnp.log(h)
    # exponential tail left of the grid: f_0 / (d log f)_0 (f grows there), in units of h
    prefix = [logf[..., 0] - jnp.log(jnp.maximum(dlogf[..., 0], 1.0)) - log_h]
    totals = log_local[..., -1]
    for b in range(g // BLOCK - 1):
        prefix.append(_log_add(prefix[-1], totals[..., b]))
    log_sum = _log_add(jnp.stack(prefix, axis=-1)[..., None], log_local)
    log_sum = log_sum.reshape(logf.shape)  # log(tail / h + sum_{l <= i} f_l)
    # trapezoid: minus half of each end
    ends = jnp.log(0.5) + _log_add(logf[..., :1], logf)
    log_t = log_h[..., None] + log_sum + jnp.log1p(-jnp.minimum(jnp.exp(ends - log_sum), 0.99))
    # Euler-Maclaurin end correction: - (h^2 / 12) (f'(x_i) - f'(x_0)), relative to T
    slope = jnp.exp(logf - log_t) * dlogf - jnp.exp(logf[..., :1] - log_t) * dlogf[..., :1]
    return log_t + jnp.log1p(-jnp.clip((h**2 / 12.0)[..., None] * slope, -0.5, 0.5))


def log_order_probability(
    middle: jax.Array,
    middle_mask: jax.Array,
    top: jax.Array,
    top_chain: jax.Array,
    bottom: jax.Array,
    bottom_chain: jax.Array,
    grid_size: int = 256,
) -> jax.Array:
    """log P(every member lies in its tier) for a batch of chains, at K columns each
    (the candidate sampling times).

    Args:
        middle: [C, K, L] levels (in noise SDs) of the middle singletons, from the top
            down; ``middle_mask`` [C, L] is True for real members (padding ignored).
        top, bottom: [n_top, K] and [n_bottom, K] levels of the members of the top and
            bottom sets; ``top_chain``, ``bottom_chain`` the chain of each (every chain
            has at least one of each).
        grid_size: quadrature points (a multiple of :data:`BLOCK`).

    Returns:
        [C, K] log probabilities.
    """
    n_chains = middle.shape[0]

    def per_chain(values, chain):  # sum over the members of each chain: [C, K, ...]
        return jax.ops.segment_sum(values, chain, num_segments=n_chains)

    mid_mask = jnp.broadcast_to(middle_mask[:, None, :], middle.shape)
    n = (
        per_chain(jnp.ones(top.shape), top_chain)
        + per_chain(jnp.ones(bottom.shape), bottom_chain)
        + mid_mask.sum(-1)
    )
    total = per_chain(top, top_chain) + per_chain(bottom, bottom_chain)
    centre = (total + jnp.where(mid_mask, middle, 0.0).sum(-1)) / n  # [C, K]
    squares = per_chain((top - centre[top_chain]) ** 2, top_chain)
    squares += per_chain((bottom - centre[bottom_chain]) ** 2, bottom_chain)
    squares += jnp.where(mid_mask, (middle - centre[..., None]) ** 2, 0.0).sum(-1)
    half = MARGIN + jnp.sqrt(squares + 1e-12)
    h = 2.0 * half / (grid_size - 1)
    unit = jnp.linspace(-1.0, 1.0, grid_size).reshape((1, 1, grid_size))
    x = centre[..., None] + half[..., None] * unit  # [C, K, G]

    # bottom set: log H = sum_b log Phi(x - z_b), and d log H / dx (inverse Mills ratios)
    arg = x[bottom_chain] - bottom[..., None]  # [n_bottom, K, G]
    log_cdf = _log_cdf(arg)
    log_h = per_chain(log_cdf, bottom_chain)
    dlog_h = per_chain(jnp.exp(_log_phi(arg) - log_cdf), bottom_chain)

    for j in range(middle.shape[-1] - 1, -1, -1):
        zj = middle[..., j : j + 1]
        logf = _log_phi(x - zj) + log_h
        dlogf = -(x - zj) + dlog_h
        new_log_h = _log_cumulative(logf, dlogf, h)
        valid = middle_mask[:, j : j + 1, None]
        dlog_h = jnp.where(valid, jnp.exp(logf - new_log_h), dlog_h)
        log_h = jnp.where(valid, new_log_h, log_h)

    # top set: g = sum_a phi(x - z_a) prod_{c != a} (1 - Phi(x - z_c))
    arg = x[top_chain] - top[..., None]  # [n_top, K, G]
    if top.shape[0] == n_chains:  # one member each (the data put sets at the bottom)
        log_g = per_chain(_log_phi(arg), top_chain)
    else:
        log_surv = _log_cdf(-arg)
        hazard = _log_phi(arg) - log_surv
        peak = jax.lax.stop_gradient(jax.ops.segment_max(hazard, top_chain, n_chains))
        spread = per_chain(jnp.exp(hazard - peak[top_chain]), top_chain)
        log_g = peak + jnp.log(spread) + per_chain(log_surv, top_chain)
    return logsumexp(log_g + log_h, -1) + jnp.log(h)


__all__ = ["BLOCK", "MARGIN", "log_order_probability"]
