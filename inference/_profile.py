"""Profile likelihoods (and profile posteriors) of single coordinates of a
:class:`~il6rcc.inference.Posterior`.

The profile of coordinate ``j`` at value ``v`` is the minimum of the objective (the
negative log-likelihood, or the negative log posterior density of the unconstrained
coordinates) over all other coordinates with ``x[j] = v``: :func:`map_multistart` with
``fixed={j: v}``, warm-started from the neighbouring profile point. From the optimum the
profile walks outward on each side, either along given values (a grid) or with an
adaptive step: the step is chosen so that the objective changes by about a quarter of
the threshold per point (a proposed step that changes it by more than half is halved
and tried again), and each side ends when the profile rises
:data:`PROFILE_THRESHOLD` (chi2(1, 0.95) / 2 = 1.92) above the minimum (the edge of the 95 %
likelihood-ratio interval), at the edge of the prior's range, or after ``max_points``.

A side that ends without crossing the threshold inside the prior's range is *open*: the
coordinate is practically non-identifiable on that side (Raue et al. 2009,
doi:10.1093/bioinformatics/btp358). A failed optimisation at one point is recorded (its
status ``failed``) and the walk goes on with a shorter step; it is never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import jax
import numpy as np

from ..errors import Il6rccError
from ._map import MapSettings, map_multistart
from ._posterior import BIG, Posterior

#: chi2(1 degree of freedom, 0.95) / 2: the rise of a profile's negative log-likelihood
#: above its minimum at the edges of the 95 % likelihood-ratio confidence interval.
PROFILE_THRESHOLD = 1.920729410347062
OBJECTIVES = ("likelihood", "posterior")


@dataclass(frozen=True)
class ProfileSettings:
    """How a profile walks.

    ``max_points``: points per side at most; ``grid``: number of equally spaced values
    across the prior's range (None: the adaptive step); ``range_quantile``: the prior's
    range is its central ``1 - 2 q`` interval of each coordinate (from
    ``prior_draws`` draws of the prior, fixed seed); ``map``: the optimiser at every
    point (one start: the warm start)."""

    max_points: int = 30
    grid: int | None = None
    range_quantile: float = 0.005
    prior_draws: int = 4000
    map: MapSettings = field(default_factory=lambda: MapSettings(n_starts=1))


@dataclass(frozen=True)
class ProfileSide:
    """How one side of a profile ended: ``end`` is ``crossed`` (the profile rose above
    the threshold), ``prior range`` (it reached the range's edge below the threshold),
    ``max points``, ``failed`` (no step could be optimised) or ``lower optimum found``
    (a point below the start's value lowered the reference, so the last point falls
    short of the threshold); ``crossing``: the coordinate's value where the profile
    crosses the threshold (interpolated on the square root of the rise; NaN when
    open)."""

    end: str
    crossing: float

    @property
    def open(self) -> bool:
        return self.end != "crossed"


@dataclass(frozen=True)
class Profile:
    """The profile of one coordinate under one objective.

    Points are sorted by ``values`` (the coordinate's unconstrained value); ``xs``
    [k, n] the optimised points, ``objective`` [k] their objective (inf where failed),
    ``neg_log_likelihood`` and ``neg_log_posterior`` [k] both objectives there,
    ``converged`` / ``steps`` / ``status`` per point (``optimum``, ``converged``,
    ``stopped``: step budget spent, ``failed``). ``minimum``: the lowest objective of the
    optimum and every point (the reference of the threshold)."""

    name: str
    index: int
    kind: str
    values: np.ndarray
    xs: np.ndarray
    objective: np.ndarray
    neg_log_likelihood: np.ndarray
    neg_log_posterior: np.ndarray
    converged: np.ndarray
    steps: np.ndarray
    status: tuple[str, ...]
    minimum: float
    lower: ProfileSide
    upper: ProfileSide
    prior_range: tuple[float, float]

    @property
    def identifiable(self) -> bool:
        return not (self.lower.open or self.upper.open)


def prior_range(posterior: Posterior, settings: ProfileSettings, data) -> np.ndarray:
    """[n, 2] the central ``1 - 2 q`` interval of every coordinate under the prior."""
    draws = posterior.prior_sample(jax.random.PRNGKey(0), settings.prior_draws, data)
    q = settings.range_quantile
    return np.quantile(np.asarray(draws), [q, 1.0 - q], axis=0).T


def _values(posterior: Posterior, xs: np.ndarray, data) -> tuple[np.ndarray, np.ndarray]:
    """-log likelihood and -log posterior of points (inf where a solve fails)."""
    compiled = posterior.compiled
    nll, nlp = [], []
    for x in xs:
        a = compiled.likelihood_value_and_grad(x, data)[0]
        b = compiled.value_and_grad(x, data)[0]
        nll.append(a if a < BIG else np.inf)
        nlp.append(b if b < BIG else np.inf)
    return np.array(nll), np.array(nlp)


def _curvature(posterior: Posterior, kind: str, x: np.ndarray, j: int, data) -> float:
    """The objective's second derivative along coordinate ``j`` at ``x`` (central
    difference of the gradient): an upper bound of the profile's curvature."""
    fn = (
        posterior.compiled.value_and_grad
        if kind == "posterior"
        else posterior.compiled.likelihood_value_and_grad
    )
    h = 1e-4 * max(1.0, abs(float(x[j])))
    up, down = np.array(x, dtype=np.float64), np.array(x, dtype=np.float64)
    up[j] += h
    down[j] -= h
    return float((fn(up, data)[1][j] - fn(down, data)[1][j]) / (2 * h))


def _optimise(posterior, kind, settings, data, start, j, value):
    """(point, objective, converged, steps, status) at ``x[j] = value``."""
    start = np.array(start, dtype=np.float64)
    start[j] = value
    try:
        res = map_multistart(
            posterior,
            jax.random.PRNGKey(0),
            settings.map,
            data,
            starts=start[None],
            fixed={j: float(value)},
            objective=kind,
        )
    except Il6rccError:
        return start, np.inf, False, 0, "failed"
    ok = bool(res.converged[0])
    return res.x, float(res.value), ok, int(res.steps[0]), "converged" if ok else "stopped"


def _walk(posterior, kind, settings, data, j, first, f_ref, direction, bounds, say):
    """One side of the profile (``direction`` -1 or +1 from its first point, the
    optimum, to the edge of ``bounds``): its points and how it ended. ``f_ref``: the
    objective's minimum (the threshold's reference)."""
    x0, f0 = np.asarray(first[1]), float(first[2])
    edge = bounds[0] if direction < 0 else bounds[1]
    span = abs(edge - float(x0[j]))
    min_step = 1e-6 * max(1.0, span)
    values = None
    if settings.grid is not None:
        grid = np.linspace(bounds[0], bounds[1], settings.grid)
        values = sorted((v for v in grid if (v - x0[j]) * direction > 0), reverse=direction < 0)
    else:
        curvature = _curvature(posterior, kind, x0, j, data)
        step = np.sqrt(2 * (PROFILE_THRESHOLD / 4) / curvature) if curvature > 0 else span / 10
        step = float(np.clip(step, span / 1000, span / 5))
    points = []
    x_prev, f_prev, v_prev = np.asarray(x0), f0, float(x0[j])
    while len(points) < settings.max_points:
        if values is not None:
            if len(points) >= len(values):
                return points, "prior range"
            v = float(values[len(points)])
        else:
            if abs(edge - v_prev) <= min_step:
                return points, "prior range"
            v = v_prev + direction * step
            if (v - edge) * direction > 0:
                v = edge
        x, f, ok, steps, status = _optimise(posterior, kind, settings, data, x_prev, j, v)
        too_far = status == "failed" or abs(f - f_prev) > PROFILE_THRESHOLD / 2
        if values is None and too_far and step / 2 >= min_step:
            step /= 2  # too long a step, or a failed optimisation: shorter, again
            continue
        points.append((v, x, f, ok, steps, status))
        say(f"{posterior.coordinate_names[j]} ({kind}) at {v:+.4g}: {f - f_ref:+.4g} ({status})")
        if status == "failed":
            if values is None:
                return points, "failed"
            continue
        if f - f_ref >= PROFILE_THRESHOLD:
            return points, "crossed"
        if values is None and abs(f - f_prev) < PROFILE_THRESHOLD / 8:
            step *= 2
        x_prev, f_prev, v_prev = x, f, v
    return points, "max points"


def profile(
    posterior: Posterior,
    name: str,
    kind: str,
    start: np.ndarray,
    settings: ProfileSettings | None = None,
    data=None,
    ranges: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> Profile:
    """The profile of coordinate ``name`` under ``kind`` (``likelihood`` or
    ``posterior``), walking out from the optimum found from ``start`` [n] (e.g. the
    run's MAP). ``ranges``: [n, 2] the prior's range (default :func:`prior_range`)."""
    settings = settings or ProfileSettings()
    data = posterior.data if data is None else data
    names = posterior.coordinate_names
    check_profile_names(posterior, [name])
    if kind not in OBJECTIVES:
        raise Il6rccError(f"profile: objective {kind!r}; valid: {', '.join(OBJECTIVES)}")
    j = names.index(name)
    ranges = prior_range(posterior, settings, data) if ranges is None else ranges
    lo, hi = (float(v) for v in ranges[j])
    say = progress or (lambda line: None)
    start = np.asarray(start, dtype=np.float64)
    try:
        best = map_multistart(
            posterior,
            jax.random.PRNGKey(0),
            replace(settings.map, n_starts=1),
            data,
            starts=start[None],
            objective=kind,
        )
    except Il6rccError:  # recorded, not fatal: the other profiles go on
        say(f"{name} ({kind}): the optimum's optimisation failed")
        nll, nlp = _values(posterior, start[None], data)
        failed = ProfileSide("failed", np.nan)
        return Profile(
            name, j, kind, start[j : j + 1], start[None], np.array([np.inf]), nll, nlp,
            np.array([False]), np.array([0]), ("failed",), np.inf, failed, failed, (lo, hi),
        )  # fmt: skip
    x0, f0 = np.asarray(best.x), float(best.value)
    first = (float(x0[j]), x0, f0, bool(best.converged[0]), int(best.steps[0]), "optimum")
    if not lo <= x0[j] <= hi:  # the optimum lies beyond the prior's range: start at its edge
        first = (float(np.clip(x0[j], lo, hi)),) + _optimise(
            posterior, kind, settings, data, x0, j, float(np.clip(x0[j], lo, hi))
        )
    if not first[3] and first[5] == "optimum":
        first = first[:5] + ("stopped",)
    sides = {}
    rows = [first]
    for direction, label in ((-1, "lower"), (1, "upper")):
        points, end = _walk(posterior, kind, settings, data, j, first, f0, direction, (lo, hi), say)
        rows += points
        sides[label] = (points, end)
    rows.sort(key=lambda r: r[0])
    values = np.array([r[0] for r in rows])
    xs = np.array([r[1] for r in rows])
    objective = np.array([r[2] for r in rows])
    minimum = float(min(f0, np.min(objective[np.isfinite(objective)], initial=np.inf)))
    nll, nlp = _values(posterior, xs, data)

    def side(label):
        points, end = sides[label]
        crossing = np.nan
        if end == "crossed":
            v1, f1 = points[-1][0], points[-1][2]
            before = [first] + [q for q in points[:-1] if np.isfinite(q[2])]
            v0, g0 = before[-1][0], before[-1][2]  # the last point that did not fail
            # interpolated on the square root of the rise: exact for a quadratic profile
            r0, r1 = np.sqrt(max(g0 - minimum, 0.0)), np.sqrt(max(f1 - minimum, 0.0))
            t = (np.sqrt(PROFILE_THRESHOLD) - r0) / (r1 - r0) if r1 != r0 else 1.0
            crossing = float(v0 + np.clip(t, 0.0, 1.0) * (v1 - v0))
            if f1 - minimum < PROFILE_THRESHOLD:  # a lower minimum turned up later: not crossed
                end, crossing = "lower optimum found", np.nan
        return ProfileSide(end, crossing)

    return Profile(
        name=name,
        index=j,
        kind=kind,
        values=values,
        xs=xs,
        objective=objective,
        neg_log_likelihood=nll,
        neg_log_posterior=nlp,
        converged=np.array([r[3] for r in rows]),
        steps=np.array([r[4] for r in rows]),
        status=tuple(r[5] for r in rows),
        minimum=minimum,
        lower=side("lower"),
        upper=side("upper"),
        prior_range=(lo, hi),
    )


def check_profile_names(posterior: Posterior, names: Sequence[str], where: str = "profile") -> None:
    """One error naming every unknown parameter and the valid names."""
    valid = posterior.coordinate_names
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise Il6rccError(
            f"{where}: unknown parameter(s) {', '.join(map(repr, unknown))}; valid: "
            f"{', '.join(valid)}"
        )
    if not names:
        raise Il6rccError(f"{where}: no parameter given; valid: {', '.join(valid)}")


__all__ = [
    "OBJECTIVES",
    "PROFILE_THRESHOLD",
    "Profile",
    "ProfileSettings",
    "ProfileSide",
    "check_profile_names",
    "prior_range",
    "profile",
]
