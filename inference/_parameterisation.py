"""The typed parameterisation: how estimated parameters reach the model's parameter rows.

One object says, for every estimated parameter: where it sits in the model's parameter
vector (``index``), its prior on the unconstrained scale (``loc``, ``sd``), its
transform (``scale``: ``log``, ``logit`` or ``lin``), whether it is cell-line-specific
(``hierarchical``), and the factor its value carries in each of the model's cell lines
(``line_factor``). The model's log density, the priors, ``predict`` and
``next-experiment`` all go through it, so the transform and the cell-line rule exist
once:

* an estimated parameter that is **not** cell-line-specific and lives on the log scale
  keeps the model's cell-line factor (a fixed modelling assumption: the line differs
  from the population by that factor);
* a cell-line-specific parameter gets no factor: the hierarchy alone sets its value in
  each line, ``u_c = u + tau * z_c`` (a line without data draws a new ``z_c``);
* ``logit`` and ``lin`` parameters get no factor (a factor would leave their range).

It is an ``eqx.Module``: the arrays are leaves, so it travels inside the data argument
of compiled functions (programs depend on shapes, not on values), and the names are
static.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..models import ODEModel

LN10 = math.log(10.0)
#: Integer code of each transform (the ``scale`` of a parameter) inside compiled code.
SCALE_CODE = {"lin": 0, "log": 1, "logit": 2}


def to_natural(scale_code, unconstrained):
    """Unconstrained -> natural values, column by column (last axis = parameters)."""
    code = jnp.asarray(scale_code)
    out = jnp.where(code == SCALE_CODE["log"], jnp.exp(unconstrained), unconstrained)
    return jnp.where(code == SCALE_CODE["logit"], jax.nn.sigmoid(unconstrained), out)


def to_unconstrained(scale_code, natural):
    """Natural -> unconstrained values (numpy, host side; the inverse of :func:`to_natural`)."""
    code = np.asarray(scale_code)
    x = np.asarray(natural, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(code == SCALE_CODE["log"], np.log(x), x)
        return np.where(code == SCALE_CODE["logit"], np.log(x / (1.0 - x)), out)


def cell_line_factors(model: ODEModel, names, scales, hierarchical, lines) -> np.ndarray:
    """The factor each estimated parameter's value carries in each line: [n_lines, n].

    The rule of the module docstring: the model's cell-line factor for log-scale
    parameters that are not cell-line-specific, 1 otherwise."""
    defaults = np.array([model.parameters[model.index("parameters", n)].default for n in names])
    index = [model.index("parameters", n) for n in names]
    keep = np.array([s == "log" for s in scales]) & ~np.asarray(hierarchical, dtype=bool)
    out = np.ones((len(lines), len(names)))
    for i, line in enumerate(lines):
        factor = model.default_params(line)[index] / defaults
        out[i] = np.where(keep, factor, 1.0)
    return out


class Parameterisation(eqx.Module):
    """Estimated parameters: positions, priors, transforms and cell-line factors.

    Attributes:
        names: [n] estimated parameter names (static).
        scale: [n] ``log``, ``logit`` or ``lin`` (static).
        lines: the model's cell lines, in the order of ``line_factor``'s rows (static).
        hier_index: positions (in ``names``) of the cell-line-specific parameters (static).
        index: [n] positions in the model's parameter vector.
        loc, sd: [n] the Normal prior on the unconstrained scale.
        line_factor: [n_lines, n] factor of each value in each line (see the module
            docstring).
        median, log10_sd: [n] the prior as written in its source (for tables).
        source: [n] where each prior comes from (static).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    scale: tuple[str, ...] = eqx.field(static=True)
    lines: tuple[str, ...] = eqx.field(static=True)
    hier_index: tuple[int, ...] = eqx.field(static=True)
    source: tuple[str, ...] = eqx.field(static=True)
    index: np.ndarray
    loc: np.ndarray
    sd: np.ndarray
    line_factor: np.ndarray
    median: np.ndarray
    log10_sd: np.ndarray

    def __check_init__(self):
        n = len(self.names)
        for name in ("index", "loc", "sd", "median", "log10_sd"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"Parameterisation.{name}: expected shape ({n},)")
        if np.shape(self.line_factor) != (len(self.lines), n):
            raise ValueError(f"Parameterisation.line_factor: expected ({len(self.lines)}, {n})")
        if len(self.scale) != n or any(s not in SCALE_CODE for s in self.scale):
            raise ValueError(f"Parameterisation.scale: expected {n} of {sorted(SCALE_CODE)}")

    # ------------------------------------------------------------------ derived
    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def scale_code(self) -> np.ndarray:
        return np.array([SCALE_CODE[s] for s in self.scale], dtype=np.int32)

    @property
    def hierarchical(self) -> np.ndarray:
        """[n] True for cell-line-specific parameters."""
        out = np.zeros(self.n, dtype=bool)
        out[list(self.hier_index)] = True
        return out

    def line_position(self, line: str) -> int:
        try:
            return self.lines.index(line)
        except ValueError:
            raise ValueError(f"no cell line {line!r}; valid: {', '.join(self.lines)}") from None

    def factors(self, lines) -> np.ndarray:
        """[len(lines), n] the factors of the named lines (host side)."""
        return np.asarray(self.line_factor)[[self.line_position(c) for c in lines]]

    # ------------------------------------------------------------------ transforms
    def to_natural(self, unconstrained):
        """Unconstrained -> natural values (last axis = parameters; JAX)."""
        return to_natural(self.scale_code, unconstrained)

    def to_unconstrained(self, natural) -> np.ndarray:
        """Natural -> unconstrained values (host side)."""
        return to_unconstrained(self.scale_code, natural)

    def from_standardised(self, z):
        """Standardised coordinates (prior SDs from the prior median) -> unconstrained."""
        return self.loc + self.sd * z

    def line_unconstrained(self, u, tau, z_line):
        """Unconstrained values in lines: ``u`` [..., n] shared, plus ``tau`` [...,
        n_hier] times ``z_line`` [..., L, n_hier] on the cell-line-specific parameters.
        Returns [..., L, n]."""
        n_lines = z_line.shape[-2]
        rows = jnp.broadcast_to(u[..., None, :], (*u.shape[:-1], n_lines, self.n))
        if not self.hier_index:
            return rows
        hier = jnp.asarray(self.hier_index)
        return rows.at[..., hier].add(tau[..., None, :] * z_line)

    def parameter_rows(self, base_rows, natural_rows, line_factor):
        """Full parameter matrices: ``base_rows`` [..., L, n_params] (the model's
        defaults of each line) with the estimated values ``natural_rows`` [..., L, n]
        written in, times their ``line_factor`` [L, n] (rows of :attr:`line_factor`,
        see :meth:`factors`)."""
        base = jnp.asarray(base_rows)
        return base.at[..., jnp.asarray(self.index)].set(natural_rows * line_factor)


def make_parameterisation(
    model: ODEModel,
    names,
    scale,
    loc,
    sd,
    hierarchical,
    median=None,
    log10_sd=None,
    source=None,
) -> Parameterisation:
    """A :class:`Parameterisation` of ``model`` with the cell-line factors of all its
    lines computed by the one rule (:func:`cell_line_factors`)."""
    names = tuple(names)
    hierarchical = np.asarray(hierarchical, dtype=bool)
    lines = tuple(model.cell_line_names)
    n = len(names)
    return Parameterisation(
        names=names,
        scale=tuple(scale),
        lines=lines,
        hier_index=tuple(int(i) for i in np.flatnonzero(hierarchical)),
        source=tuple(source) if source is not None else ("",) * n,
        index=np.array([model.index("parameters", p) for p in names], dtype=np.int32),
        loc=np.asarray(loc, dtype=np.float64),
        sd=np.asarray(sd, dtype=np.float64),
        line_factor=cell_line_factors(model, names, scale, hierarchical, lines),
        median=np.asarray(median if median is not None else np.full(n, np.nan), dtype=float),
        log10_sd=np.asarray(log10_sd if log10_sd is not None else np.full(n, np.nan), dtype=float),
    )


__all__ = [
    "SCALE_CODE",
    "Parameterisation",
    "cell_line_factors",
    "make_parameterisation",
    "to_natural",
    "to_unconstrained",
]
