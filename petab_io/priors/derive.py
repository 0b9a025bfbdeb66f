"""Transfer priors for the RCC circuit from MAP fits of Bachmann_MSB2011 and
Raia_CancerResearch2011 (issue 7, part 4). The reasoning is in ``DERIVATION.md``.

Run from the repository root::

    python petab_io/priors/derive.py             # rewrites the tables beside this file
    python petab_io/priors/derive.py --out DIR   # writes them to DIR instead

Writes

* ``transfer_priors.tsv``: ``parameterId`` (circuit name), ``median`` (circuit unit),
  ``log10_sd``, ``source``, ``n_identifiable``, ``notes``: the prior table;
* ``posterior.tsv``: nominal value, MAP, Laplace standard deviation and
  identifiability of every estimated parameter of both problems;
* ``fits.tsv``: one row per optimiser start (log-likelihood, log-posterior, steps,
  wall time), plus compilation and Laplace times.

Deterministic for the fixed seeds below (wall times aside): the starts are the nominal
values plus seeded random starts, the optimiser and the finite differences are
deterministic.

How a fitted quantity becomes a prior (all on log10 scales):

1. ``q(theta)``, the circuit quantity as a function of the source parameters (linear
   values, time in minutes converted to hours), at the MAP; its Laplace standard
   deviation ``s = sqrt(a^T Sigma a)`` with ``a = d log10 q / d theta`` (delta method,
   :func:`il6rcc.petab_io.propagate`). A quantity whose sources are not all identifiable
   is not transferred (the circuit keeps its default prior).
2. Several sources for one parameter: the median is the mean of their log10 values and
   the variance the mean of their variances plus the variance between them (ddof 1).
3. Widening for the change of context: ``log10_sd = sqrt(s^2 + sum(w_r^2))`` over the
   reasons ``r`` of :data:`WIDENING` that apply (0.5 decade each).
4. Where the circuit's default prior rests on a measurement independent of Bachmann and
   Raia (only ``k_stat1_dp``), the transferred prior is multiplied with it (precision-
   weighted mean of the log10 medians); elsewhere it replaces the default (the
   defaults are assumptions or Bachmann/Raia nominal values themselves).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
TABLE = "transfer_priors.tsv"
COLUMNS = ("parameterId", "median", "log10_sd", "source", "n_identifiable", "notes")

BACHMANN = "Bachmann_MSB2011"
RAIA = "Raia_CancerResearch2011"

#: Fit settings (``solver_max_steps``: ODE step budget per simulation while fitting; a
#: simulation that needs more counts as failed, so that starts in very stiff corners of
#: the bounds cannot stall the fit). Bachmann (113 parameters, about 5 s per gradient on
#: 2 CPU cores; at most 705 ODE steps per condition at the nominal values): the nominal
#: values are the published best fit, so one start from them and one start jittered by
#: 0.05 decade around them check that the optimiser does not improve much; its Hessian
#: uses forward differences in batches of 8 gradients. Raia (39 parameters, 0.1 s per
#: gradient; at most 110 ODE steps per condition): the nominal values plus uniform
#: random starts within the bounds.
FITS: dict[str, dict] = {
    BACHMANN: {
        "n_starts": 2,
        "seed": 2011,
        "max_steps": 50,
        "jitter": 0.05,
        "solver_max_steps": 5000,
        "laplace": "hessian",
        "laplace_options": {"scheme": "forward", "batch": 8},
    },
    RAIA: {
        "n_starts": 6,
        "seed": 2011,
        "max_steps": 500,
        "solver_max_steps": 2000,
        "laplace": "hessian",
    },
}

#: Widening (decades, added in quadrature) for each reason a source differs from the
#: RCC circuit. A judgement, not a fit: half a decade (a factor of about 3 at one
#: standard deviation) per reason.
WIDENING: dict[str, float] = {
    # other cell type and cytokine/receptor (BaF3/CFU-E with Epo, lymphoma lines with
    # IL-13) than RCC cells with IL-6/IFN-a: applies to every transfer
    "context": 0.5,
    # the source measures another molecule: STAT5 for STAT3/STAT1, the EpoR/JAK2
    # complex for IFNAR/JAK1 (SOCS3 binds gp130 and EpoR directly; IFNAR is not a
    # canonical SOCS3 target)
    "analogy": 0.5,
    # the circuit's unit is the basal level, which Bachmann's model lacks (zero without
    # Epo): its qPCR fold-change offset (fold 1 = basal mRNA) stands in for it
    "scale": 0.5,
}

MINUTES_PER_HOUR = 60.0
LN2 = math.log(2.0)
#: Raia's kinetic laws of STAT5 and JAK2 dephosphorylation carry a literal factor 91
#: (``cyt * 91 * pSTAT5 * pSTAT5_dephosphorylation``): the effective rate is 91 x k.
RAIA_DEPHOSPHORYLATION_FACTOR = 91.0
SOCS3_FOLD = ("scale_SOCS3RNA_foldA", "scale_SOCS3RNA_foldB", "scale_SOCS3RNA_foldC")
CIS_FOLD = ("scale_CISRNA_foldA", "scale_CISRNA_foldB", "scale_CISRNA_foldC")


# ------------------------------------------------------------------ conversions
def per_hour(rate_per_minute):
    """A first-order rate in 1/min as 1/h."""
    return MINUTES_PER_HOUR * rate_per_minute


def half_life(rate):
    """Half-life ``ln 2 / k`` (in the time unit of ``1 / rate``)."""
    return LN2 / rate


def geometric_mean(values: Sequence):
    """Geometric mean (works on floats and JAX scalars)."""
    product = 1.0
    for v in values:
        product = product * v
    return product ** (1.0 / len(values))


def nuclear_share(k_import, k_export):
    """Share of phosphorylated STAT5 molecules in the nucleus at quasi-steady state of
    Bachmann's cycle pSTAT5 -(import)-> npSTAT5 -(export, dephosphorylation)-> STAT5:
    ``k_import * C = k_export * N`` (amounts) gives ``N / (N + C)``."""
    return k_import / (k_import + k_export)


def stat_cycle_rate(k_import, k_export):
    """Effective first-order deactivation rate of phosphorylated STAT5 (cytoplasmic and
    nuclear together) in Bachmann's cycle: the export flux ``k_export * N`` per
    phosphorylated molecule, ``k_import k_export / (k_import + k_export)``; its inverse
    is the mean time a molecule stays phosphorylated, ``1/k_import + 1/k_export``."""
    return k_import * k_export / (k_import + k_export)


def fold_per_unit_pstat(fold_scale, k_import, k_export):
    """Transcription drive per unit phosphorylated-STAT fraction, in units of the basal
    mRNA (the circuit's ``w_*``).

    Bachmann: at steady state the cytoplasmic mRNA is ``RNA / RNAEqc = f_np`` (the
    fraction of all STAT5 molecules that are nuclear and phosphorylated; the volume
    ratio nuc/cyt cancels against the amounts) and the qPCR fold change is
    ``1 + fold_scale * RNA / RNAEqc``. With ``f_np = nuclear_share * f_p``:
    ``fold - 1 = fold_scale * nuclear_share * f_p``, while the circuit has
    ``m / basal = 1 + w * pstat``."""
    return fold_scale * nuclear_share(k_import, k_export)


def inhibition_constant(fold_scale, inhibition):
    """SOCS3 level halving receptor signalling, in units of the basal SOCS3 level.

    Bachmann inhibits by ``1 / (1 + SOCS3 * SOCS3Inh / SOCS3Eqc)`` with steady state
    ``SOCS3 = SOCS3Eqc * RNA / RNAEqc``: half inhibition at ``SOCS3Eqc / SOCS3Inh``.
    The basal mRNA (qPCR fold 1) is ``RNA / RNAEqc = 1 / fold_scale``, so (protein
    following mRNA, as in the circuit) the basal protein is ``SOCS3Eqc / fold_scale``
    and the constant is ``fold_scale / SOCS3Inh`` basal units."""
    return fold_scale / inhibition


def widen(log10_sd: float, reasons: Sequence[str]) -> float:
    """``sqrt(log10_sd^2 + sum(WIDENING[r]^2))``."""
    return math.sqrt(log10_sd**2 + sum(WIDENING[r] ** 2 for r in reasons))


def pool(log10_values: Sequence[float], log10_sds: Sequence[float]) -> tuple[float, float]:
    """Several estimates of one quantity: mean of the log10 values; variance = mean of
    their variances + variance between them (ddof 1; none for a single estimate)."""
    values = np.asarray(log10_values, dtype=float)
    sds = np.asarray(log10_sds, dtype=float)
    between = float(np.var(values, ddof=1)) if values.size > 1 else 0.0
    return float(values.mean()), math.sqrt(float(np.mean(sds**2)) + between)


def combine(
    log10_median_a: float, sd_a: float, log10_median_b: float, sd_b: float
) -> tuple[float, float]:
    """Product of two log-normal priors: precision-weighted mean and combined SD."""
    wa, wb = 1.0 / sd_a**2, 1.0 / sd_b**2
    return (wa * log10_median_a + wb * log10_median_b) / (wa + wb), 1.0 / math.sqrt(wa + wb)


# ------------------------------------------------------------------ the transfers
@dataclass(frozen=True)
class Source:
    """One fitted quantity: ``quantity`` maps the problem's linear parameter values (by
    id) to the circuit parameter's value in the circuit's unit; ``formula`` says how."""

    problem: str
    quantity: Callable[[dict], object]
    formula: str


@dataclass(frozen=True)
class Transfer:
    """A circuit parameter, its sources, the widening reasons and whether the result is
    combined with the circuit's default prior."""

    parameter: str
    sources: tuple[Source, ...]
    reasons: tuple[str, ...]
    note: str
    combine_with_default: bool = False


def _socs3_fold(v):
    return geometric_mean([v[p] for p in SOCS3_FOLD])


def _cis_fold(v):
    return geometric_mean([v[p] for p in CIS_FOLD])


SOCS3_FOLD_TEXT = "geomean(scale_SOCS3RNA_foldA,B,C)"
CIS_FOLD_TEXT = "geomean(scale_CISRNA_foldA,B,C)"
_W_SOCS3 = Source(
    BACHMANN,
    lambda v: fold_per_unit_pstat(_socs3_fold(v), v["STAT5Imp"], v["STAT5Exp"]),
    f"{SOCS3_FOLD_TEXT} * STAT5Imp / (STAT5Imp + STAT5Exp)",
)
_W_CIS = Source(
    BACHMANN,
    lambda v: fold_per_unit_pstat(_cis_fold(v), v["STAT5Imp"], v["STAT5Exp"]),
    f"{CIS_FOLD_TEXT} * STAT5Imp / (STAT5Imp + STAT5Exp)",
)
_K_SOCS3 = Source(
    BACHMANN,
    lambda v: inhibition_constant(_socs3_fold(v), v["SOCS3Inh"]),
    f"{SOCS3_FOLD_TEXT} / SOCS3Inh",
)
_STAT_DP = (
    Source(
        BACHMANN,
        lambda v: per_hour(stat_cycle_rate(v["STAT5Imp"], v["STAT5Exp"])),
        "60 * STAT5Imp * STAT5Exp / (STAT5Imp + STAT5Exp)",
    ),
    Source(
        RAIA,
        lambda v: per_hour(RAIA_DEPHOSPHORYLATION_FACTOR * v["pSTAT5_dephosphorylation"]),
        "60 * 91 * pSTAT5_dephosphorylation",
    ),
)

TRANSFERS: tuple[Transfer, ...] = (
    Transfer(
        "k_socs3_mrna_deg",
        (Source(BACHMANN, lambda v: per_hour(v["SOCS3RNATurn"]), "60 * SOCS3RNATurn"),),
        ("context",),
        "SOCS3 mRNA turnover after Bachmann's 5-step transcription delay (SOCS3RNADelay); "
        "Raia's model has no SOCS3 mRNA degradation",
    ),
    Transfer(
        "k_socs3_deg",
        (Source(RAIA, lambda v: per_hour(v["SOCS3_degradation"]), "60 * SOCS3_degradation"),),
        ("context",),
        "Bachmann's SOCS3Turn sits at its upper bound (not identifiable; only says "
        "that SOCS3 protein follows its mRNA quickly)",
    ),
    Transfer(
        "socs3_k_il6r",
        (_K_SOCS3,),
        ("context", "scale"),
        "half-inhibition SOCS3 level in basal units; SOCS3 binds gp130 as it binds EpoR",
    ),
    Transfer(
        "socs3_k_ifnar",
        (_K_SOCS3,),
        ("context", "scale", "analogy"),
        "as socs3_k_il6r; IFNAR/JAK1 inhibition by SOCS3 is by analogy with EpoR/JAK2",
    ),
    Transfer(
        "w_stat3_socs3",
        (_W_SOCS3,),
        ("context", "scale", "analogy"),
        "SOCS3 fold induction per unit phosphorylated STAT (STAT5 for STAT3)",
    ),
    Transfer(
        "w_stat1_socs3",
        (_W_SOCS3,),
        ("context", "scale", "analogy"),
        "SOCS3 fold induction per unit phosphorylated STAT (STAT5 for STAT1)",
    ),
    Transfer(
        "w_stat3_cis",
        (_W_CIS,),
        ("context", "scale", "analogy"),
        "CIS fold induction per unit phosphorylated STAT (STAT5 for STAT3)",
    ),
    Transfer(
        "w_stat1_cis",
        (_W_CIS,),
        ("context", "scale", "analogy"),
        "CIS fold induction per unit phosphorylated STAT (STAT5 for STAT1)",
    ),
    Transfer(
        "k_stat3_dp",
        _STAT_DP,
        ("context", "analogy"),
        "pSTAT5 deactivation (Bachmann: nuclear cycle; Raia: dephosphorylation) for pSTAT3",
    ),
    Transfer(
        "k_stat1_dp",
        _STAT_DP,
        ("context", "analogy"),
        "pSTAT5 deactivation for pSTAT1, combined with the circuit's default prior "
        "(direct pSTAT1 evidence, Haspel 1996)",
        combine_with_default=True,
    ),
)

#: Circuit parameters considered and not transferred, with the reason (DERIVATION.md).
NOT_TRANSFERRED: dict[str, str] = {
    "k_mrna_other": "Bachmann's CISRNATurn sits at its upper bound (not identifiable); "
    "the circuit keeps its default (SOCS3 mRNA turnover by analogy)",
}


# ------------------------------------------------------------------ derivation
def _fit(name: str, verbose: bool):
    import dataclasses

    from il6rcc.petab_io import DEFAULT_SOLVER, fit_map, load_problem, problem_path

    settings = dict(FITS[name])
    solver = dataclasses.replace(DEFAULT_SOLVER, max_steps=settings.pop("solver_max_steps"))
    problem = load_problem(problem_path(name))
    return fit_map(problem, solver=solver, verbose=verbose, **settings)


def _fmt(x: float, digits: int) -> str:
    return f"{float(f'{x:.{digits}g}'):.{digits}g}"


def transfer_rows(fits: dict, defaults: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """The prior table from fitted problems (``fits``: name -> :class:`MapResult`) and
    the circuit's default priors (``defaults``: name -> (median, log10_sd))."""
    import jax.numpy as jnp

    from il6rcc.petab_io import propagate

    rows = []
    for t in TRANSFERS:
        parts = []
        for s in t.sources:
            parts.append(propagate(fits[s.problem], lambda v, s=s: jnp.log10(s.quantity(v))))
        n_ident = sum(p.n_identifiable for p in parts)
        n_sources = sum(len(p.sources) for p in parts)
        if n_ident < n_sources or not all(math.isfinite(p.sd) for p in parts):
            missing = sorted({m for p in parts for m in p.not_identifiable})
            raise RuntimeError(
                f"{t.parameter}: source parameter(s) {missing} not identifiable; move the "
                f"parameter to NOT_TRANSFERRED"
            )
        log10_median, sd = pool([p.value for p in parts], [p.sd for p in parts])
        log10_sd = widen(sd, t.reasons)
        how = "; ".join(
            f"{s.problem}: {s.formula} = {10**p.value:.4g} (Laplace log10 SD {p.sd:.3f})"
            for s, p in zip(t.sources, parts, strict=True)
        )
        if len(parts) > 1:
            how += f"; pooled log10 mean {log10_median:.3f}, SD {sd:.3f}"
        how += f"; widened by {'+'.join(t.reasons)} to {log10_sd:.3f}"
        if t.combine_with_default:
            d_median, d_sd = defaults[t.parameter]
            log10_median, log10_sd = combine(log10_median, log10_sd, math.log10(d_median), d_sd)
            how += f"; times the circuit default {d_median:g} (log10 SD {d_sd:g})"
        rows.append(
            {
                "parameterId": t.parameter,
                "median": _fmt(10**log10_median, 4),
                "log10_sd": f"{log10_sd:.3f}",
                "source": how,
                "n_identifiable": f"{n_ident}/{n_sources}",
                "notes": t.note,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def derive(out_dir: Path = HERE, *, verbose: bool = True) -> pd.DataFrame:
    """Fit both problems, write the three tables to ``out_dir``, return the prior table."""
    from il6rcc.models.circuit import PARAMETERS

    defaults = {p.name: (p.default, p.log10_sd) for p in PARAMETERS}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fits, runs, posterior = {}, [], []
    for name in FITS:
        t0 = time.perf_counter()
        fit = _fit(name, verbose)
        total = time.perf_counter() - t0
        fits[name] = fit
        starts = fit.starts_table()
        nominal = {
            "problem": name,
            "start": -1,
            "kind": "nominal (no optimisation)",
            "start_log_posterior": fit.nominal_log_posterior,
            "log_likelihood": fit.nominal_log_likelihood,
            "log_posterior": fit.nominal_log_posterior,
            "n_steps": 0,
            "converged": False,
            "seconds": 0.0,
        }
        blank = {"start_log_posterior": np.nan, "log_likelihood": np.nan, "log_posterior": np.nan}
        extra = [
            {**nominal, **blank, "kind": "compile optimiser", "seconds": fit.compile_seconds},
            {**nominal, **blank, "kind": f"laplace ({fit.laplace.method})",
             "seconds": fit.laplace.seconds},
            {**nominal, **blank, "kind": "total (load, fit, laplace)", "seconds": total},
        ]  # fmt: skip
        runs.append(pd.concat([pd.DataFrame([nominal]), starts, pd.DataFrame(extra)]))
        table = fit.parameters_table()
        table.insert(0, "problem", name)
        posterior.append(table)
    priors = transfer_rows(fits, defaults)
    priors.to_csv(out_dir / TABLE, sep="\t", index=False)
    pd.concat(posterior).to_csv(
        out_dir / "posterior.tsv", sep="\t", index=False, float_format="%.6g"
    )
    pd.concat(runs).to_csv(out_dir / "fits.tsv", sep="\t", index=False, float_format="%.6f")
    if verbose:
        for name, fit in fits.items():
            lap = fit.laplace
            print(
                f"{name}: nominal log-likelihood {fit.nominal_log_likelihood:.6f}, MAP "
                f"{fit.best_log_likelihood:.6f} (start {fit.best}), max |gradient| "
                f"{lap.max_abs_gradient:.2g}; at bounds: "
                f"{[p for p, b in zip(fit.parameter_ids, lap.at_bound, strict=True) if b]}; "
                f"{lap.n_non_identifiable_directions} non-identifiable direction(s): "
                f"{lap.non_identifiable_directions()}"
            )
        print(priors[["parameterId", "median", "log10_sd", "n_identifiable"]].to_string())
    return priors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from il6rcc import runtime

    runtime.setup()
    derive(args.out, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
