"""Priors of the estimated parameters, from the model's sources, tables and the config.

Every estimated parameter gets a prior on an unconstrained scale:

* ``log`` parameters: log-normal, log(theta) ~ Normal(log(median), sd * ln 10);
* ``logit`` parameters (fractions): logit(theta) ~ Normal(logit(median), sd * ln 10);
* ``lin`` parameters: Normal(median, sd) (``log10_sd`` is then an absolute SD).

The median defaults to the model default (the cited value when there is one) and the
width to the model's ``log10_sd``, which is wider where the source is weaker. Prior
tables (TSV: parameterId, median, log10_sd, source), then config overrides, replace
them in that order. :func:`prior_table` lists every prior with where it came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ConfigError
from ..models import ODEModel
from ._parameterisation import LN10, Parameterisation, make_parameterisation

PRIOR_TABLE_COLUMNS = ("parameterId", "median", "log10_sd", "source")


def read_prior_table(path: str | Path) -> dict[str, tuple[float, float, str]]:
    """A prior table: parameterId -> (median, log10_sd, source); every problem reported."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as err:
        raise ConfigError(f"{path}: cannot read prior table: {err}") from None
    missing = [c for c in PRIOR_TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(
            f"{path}: prior table lacks columns {missing}; expected {list(PRIOR_TABLE_COLUMNS)}"
        )
    out: dict[str, tuple[float, float, str]] = {}
    problems = []
    for i, row in df.iterrows():
        line = int(i) + 2  # header is line 1
        try:
            median, width = float(row["median"]), float(row["log10_sd"])
        except ValueError:
            problems.append(
                f"{path}:{line}: median {row['median']!r} and log10_sd {row['log10_sd']!r} "
                f"must be numbers"
            )
            continue
        if not (math.isfinite(median) and math.isfinite(width) and width > 0):
            problems.append(
                f"{path}:{line}: got median {median!r}, log10_sd {width!r}; expected finite "
                f"numbers with log10_sd > 0"
            )
            continue
        out[row["parameterId"]] = (median, width, row["source"] or f"prior table {path.name}")
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def build_priors(
    model: ODEModel,
    estimate: Sequence[str],
    hierarchical: Sequence[str] = (),
    tables: Sequence[Mapping[str, tuple[float, float, str]]] = (),
    overrides: Mapping[str, tuple[float | None, float | None, str]] | None = None,
    width_factor: float = 1.0,
) -> Parameterisation:
    """Priors of the ``estimate`` parameters (all of the model's when empty), as the
    :class:`Parameterisation` every later step uses (``hierarchical``: the
    cell-line-specific subset).

    Table and override entries for parameters not estimated are ignored (they may serve
    other configs); names the model lacks raise :class:`ConfigError`.
    """
    specs = {p.name: p for p in model.parameters}
    names = list(estimate) if estimate else [p.name for p in model.parameters if p.estimable]
    unknown = sorted({*names, *hierarchical} - set(specs))
    if unknown:
        raise ConfigError(f"unknown parameters {unknown} of model {model.name!r}")
    fixed = sorted(n for n in names if not specs[n].estimable)
    if fixed:
        raise ConfigError(
            f"parameters {fixed} of model {model.name!r} are structural constants (e.g. "
            f"mechanism switches: choose the variant instead) and cannot be estimated"
        )
    median = {n: specs[n].default for n in names}
    width = {n: specs[n].log10_sd for n in names}
    source = {n: f"model default: {specs[n].source}" for n in names}
    for table in tables:
        for n, (m, w, s) in table.items():
            if n not in specs:
                raise ConfigError(f"prior table names unknown parameter {n!r}")
            if n in median:
                median[n], width[n], source[n] = m, w, s
    for n, (m, w, s) in (overrides or {}).items():
        if n in median:
            if m is not None:
                median[n] = m
            if w is not None:
                width[n] = w
            source[n] = s or "config override"
    problems = []
    loc, sd, scale = [], [], []
    for n in names:
        sc = specs[n].scale
        m, w = median[n], width[n] * width_factor
        if sc == "log" and m <= 0 or sc == "logit" and not 0 < m < 1:
            problems.append(f"prior median of {n!r} ({sc} scale) is out of range: {m!r}")
            m = specs[n].default
        scale.append(sc)
        if sc == "log":
            loc.append(math.log(m))
            sd.append(w * LN10)
        elif sc == "logit":
            loc.append(math.log(m / (1.0 - m)))
            sd.append(w * LN10)
        else:
            loc.append(m)
            sd.append(w)
    if problems:
        raise ConfigError("; ".join(problems))
    return make_parameterisation(
        model,
        names,
        scale,
        loc,
        sd,
        [n in set(hierarchical) for n in names],
        median=[median[n] for n in names],
        log10_sd=[width[n] * width_factor for n in names],
        source=[source[n] for n in names],
    )


def prior_table(spec: Parameterisation, model: ODEModel):
    """Every prior as a table (for run outputs and reports)."""
    import pandas as pd

    units = {p.name: p.unit for p in model.parameters}
    return pd.DataFrame(
        {
            "parameter": spec.names,
            "unit": [units[n] for n in spec.names],
            "scale": spec.scale,
            "median": spec.median,
            "log10_sd": spec.log10_sd,
            "cell_line_specific": spec.hierarchical,
            "source": spec.source,
        }
    )


__all__ = ["PRIOR_TABLE_COLUMNS", "build_priors", "prior_table", "read_prior_table"]
