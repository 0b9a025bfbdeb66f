"""The IL-6 / SOCS3 / JAK-STAT circuit of renal cell carcinoma cells.

One vector field, with the competing mechanisms as switches (see :data:`VARIANTS`):

* IFN-a -> IFNAR/JAK1-TYK2 -> pSTAT1 (antiproliferative; induces IL-6, SOCS1, DR4);
* IL-6 mRNA -> secreted IL-6 (pg/mL) -> IL-6 receptor complex through membrane IL-6R
  (classic) and/or soluble IL-6R (trans-signalling) -> pSTAT3, AKT/mTOR, ERK;
  pSTAT3 drives IL-6 transcription (the autocrine loop);
* SOCS3 mRNA -> SOCS3 protein, inhibiting both the IFNAR and the IL-6 receptor branch;
  SOCS3 is induced by pSTAT1 and/or pSTAT3 depending on the variant;
* TKIs (sorafenib, sunitinib, pazopanib, each with its own potency) -> NF-kB -> IL-6
  (variant ``nfkb_il6``) or directly -> AKT (variant ``akt_direct``); AKT/mTOR -> HIF-2a
  -> VEGF; in vivo TKIs also block VEGFR on vessels;
* growth: the log of the cell number relative to untreated cells (MTT) and, in vivo,
  of the tumour volume relative to untreated tumours;
* tocilizumab occupies IL-6R (membrane and soluble) at equilibrium with its Kd: the
  binding is fast compared with signalling, so it is algebraic, not a stiff ODE.

Untreated cells sit at the basal steady state, computed for each cell line (and siRNA
or over-expression) by pre-equilibration. The state ``growth_ref`` records the basal
proliferative drive during pre-equilibration and is frozen once treatment starts
(input ``treatment_phase``), so that ``log_growth`` counts growth relative to
untreated cells and every state, growth included, is at rest in the basal state.

Time is in hours. Signalling species are fractions of their maximum (receptor
complexes, phosphorylated proteins) or levels scaled so that the transcription drive
equals the steady-state level (mRNAs, SOCS3, HIF-2a, DR4). Secreted IL-6 and VEGF are
in pg/mL. Parameter sources are in :data:`PARAMETERS`; "assumed" marks values chosen
without a measurement, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax.numpy as jnp
import numpy as np

from ..errors import ModelSpecError, choices
from ._model import CellLine, InputSpec, ObservableSpec, ODEModel, ParameterSpec

LN2 = math.log(2.0)
MIN = 60.0  # per-minute rates x 60 = per-hour rates

BACHMANN = "Bachmann 2011 (doi:10.1038/msb.2011.50), PEtab Bachmann_MSB2011 nominal"
RAIA = "Raia 2011 (doi:10.1158/0008-5472.CAN-10-2987), PEtab Raia_CancerResearch2011 nominal"
REVIEW = "Ishibashi 2018 review (PMC6305783)"

STATES = (
    "ifnar",  # active IFNAR/JAK complex, fraction
    "pstat1",  # phosphorylated STAT1, fraction
    "il6_mrna",  # IL-6 mRNA, scaled
    "il6",  # IL-6 secreted by the cells, in the medium (or interstitium), pg/mL
    "il6_exo",  # exogenous recombinant IL-6 added at treatment start, pg/mL
    "il6r",  # active IL-6/IL-6R/gp130 complex, fraction
    "pstat3",  # phosphorylated STAT3, fraction
    "socs3_mrna",  # SOCS3 mRNA, scaled
    "socs3",  # SOCS3 protein, scaled (steady state = mRNA level)
    "nfkb",  # active (phosphorylated) NF-kB, fraction
    "akt",  # active AKT/mTOR, fraction
    "hif2a",  # HIF-2a protein, scaled
    "vegf",  # secreted VEGF, pg/mL
    "dr4",  # death receptor 4 (TRAIL-R1), scaled
    "socs1_mrna",  # SOCS1 mRNA, scaled
    "cis_mrna",  # CIS mRNA, scaled
    "vessels",  # tumour vessel density (CD31), relative
    "log_growth",  # log(cell number or tumour volume / untreated), accumulator
    "growth_ref",  # proliferative drive of the basal state, frozen during treatment
)

TKIS = ("sorafenib", "sunitinib", "pazopanib")


def _p(name, default, unit, description, source="assumed", scale="log", log10_sd=1.0):
    return ParameterSpec(name, float(default), unit, description, source, scale, log10_sd)


PARAMETERS: tuple[ParameterSpec, ...] = (
    # ---------------------------------------------------------------- IFN branch
    _p(
        "ifn_ec50",
        100.0,
        "IU/mL",
        "IFN-a dose giving half-maximal IFNAR activation",
        "assumed: the RCC studies do not report IFN doses; in-vitro doses of 100-10000 "
        "IU/mL are usual. Antiproliferative EC50 of IFN-a2 is 0.1-1.5 nM, cell-type "
        "dependent (doi:10.1016/j.cyto.2011.07.019)",
        log10_sd=1.0,
    ),
    _p(
        "k_ifnar_act",
        6.0,
        "1/h",
        "activation rate of IFNAR/JAK at saturating IFN",
        "assumed from pSTAT1 peaking within 20-30 min of stimulation (Haspel 1996, "
        "doi:10.1002/j.1460-2075.1996.tb01016.x; IFN-g, order of magnitude only)",
    ),
    _p(
        "k_ifnar_off",
        2.0,
        "1/h",
        "inactivation (internalisation, desensitisation) of IFNAR",
        "assumed from cells becoming refractory to IFN-a within hours (doi:10.1128/MCB.00224-09)",
    ),
    _p(
        "ifnar_tonic",
        0.005,
        "1",
        "tonic IFNAR signalling without added IFN (relative to max)",
        "assumed: small basal pSTAT1 in untreated cells",
        log10_sd=0.7,
    ),
    _p(
        "k_stat1_p",
        6.0,
        "1/h",
        "STAT1 phosphorylation rate by fully active IFNAR/JAK",
        "assumed from pSTAT1 peaking within 20-30 min (Haspel 1996, "
        "doi:10.1002/j.1460-2075.1996.tb01016.x)",
    ),
    _p(
        "k_stat1_dp",
        3.0,
        "1/h",
        "pSTAT1 dephosphorylation rate",
        "pSTAT1 disappears within 60 min after receptor shut-off (staurosporine), "
        "Haspel 1996, doi:10.1002/j.1460-2075.1996.tb01016.x: k >= 3/h",
        log10_sd=0.5,
    ),
    _p(
        "socs3_k_ifnar",
        1.0,
        "1",
        "SOCS3 level halving IFNAR/JAK activation",
        "assumed; Bachmann's fitted SOCS3 inhibition constant is 10.4 relative to its "
        "equilibrium SOCS3 level (" + BACHMANN + ")",
    ),
    # ---------------------------------------------------------------- IL-6 module
    _p(
        "k_il6_mrna_deg",
        LN2 / 0.5,
        "1/h",
        "IL-6 mRNA degradation rate",
        "IL-6 mRNA half-life 30 min (doi:10.1128/MCB.01155-06): ln2/0.5 h",
        log10_sd=0.5,
    ),
    _p(
        "il6_tx_basal",
        0.5,
        "1",
        "basal IL-6 transcription drive (sets the basal mRNA scale)",
        "assumed: scale of the IL-6 mRNA",
        log10_sd=0.5,
    ),
    _p(
        "w_stat1_il6",
        10.0,
        "1",
        "IL-6 transcription per unit pSTAT1 (IFN -> IL-6)",
        "assumed; IFN-a induced IL-6 mRNA in all five RCC lines (" + REVIEW + ")",
    ),
    _p(
        "w_stat3_il6",
        1.0,
        "1",
        "IL-6 transcription per unit pSTAT3 (autocrine loop)",
        "assumed; STAT3 promotes IL-6 expression (" + REVIEW + ", refs 33-34)",
    ),
    _p(
        "w_nfkb_il6",
        10.0,
        "1",
        "IL-6 transcription per unit active NF-kB",
        "assumed; TKIs raise IL-6 secretion in 786-O (" + REVIEW + ")",
    ),
    _p(
        "k_il6_sec",
        2.0,
        "pg/mL/h",
        "IL-6 secretion per unit IL-6 mRNA",
        "assumed: gives basal IL-6 of tens of pg/mL; RCC culture values are not reported",
    ),
    _p(
        "k_il6_clear",
        0.1,
        "1/h",
        "loss of IL-6 from the medium (uptake, degradation)",
        "assumed: IL-6 is stable for hours in culture medium",
    ),
    _p(
        "il6_ec50",
        400.0,
        "pg/mL",
        "IL-6 concentration half-activating its receptor complex",
        "assumed: cellular IL-6 responses saturate far below the IL-6/sIL-6R Kd of about "
        "20 nM (Ward 1995, Biochemistry 34:2901) through gp130 avidity",
    ),
    _p(
        "k_il6r_act",
        3.0,
        "1/h",
        "activation rate of the IL-6 receptor complex",
        "assumed: pSTAT3 peaks within 30 min of IL-6 (order of magnitude)",
    ),
    _p(
        "k_il6r_off",
        1.0,
        "1/h",
        "inactivation (internalisation) of the IL-6 receptor complex",
        "assumed",
    ),
    _p(
        "mil6r",
        1.0,
        "1",
        "membrane IL-6R (gp80) signalling capacity",
        "assumed; gp80 was undetectable on the surface of 8 RCC lines (PubMed 15252833)",
    ),
    _p(
        "sil6r",
        0.5,
        "1",
        "soluble IL-6R (trans-signalling) capacity",
        "assumed; Reeh 2019 (doi:10.1186/s12964-019-0356-0): the response depends on the "
        "IL-6Ra:gp130 ratio",
    ),
    _p(
        "socs3_k_il6r",
        1.0,
        "1",
        "SOCS3 level halving IL-6 receptor signalling",
        "assumed; see socs3_k_ifnar (" + BACHMANN + ")",
    ),
    _p(
        "tcz_kd",
        2.54,
        "nM",
        "tocilizumab-IL-6R dissociation constant",
        "2.54 +/- 0.12 nM by Scatchard analysis, binds sIL-6R and mIL-6R "
        "(doi:10.1016/j.intimp.2005.05.010)",
        log10_sd=0.2,
    ),
    # ---------------------------------------------------------------- STAT3
    _p(
        "k_stat3_p",
        2.0,
        "1/h",
        "STAT3 phosphorylation rate by the active IL-6 receptor",
        "assumed; SOCS3 ends IL-6-induced STAT3 phosphorylation about 2 h after IL-6 "
        "(Wang 2013 PNAS, PMID 24082147)",
    ),
    _p(
        "k_stat3_dp",
        0.025 * MIN,
        "1/h",
        "pSTAT3 dephosphorylation rate",
        "by analogy with pSTAT5 dephosphorylation 0.025/min (t1/2 about 28 min) in " + RAIA,
        log10_sd=0.7,
    ),
    _p(
        "stat3_tonic",
        0.02,
        "1",
        "receptor-independent STAT3 activation (EGFR etc.)",
        "assumed; EGFR can re-phosphorylate STAT3 (Wang 2013 PNAS, PMID 24082147)",
    ),
    # ---------------------------------------------------------------- SOCS3
    _p(
        "k_socs3_mrna_deg",
        0.00831 * MIN,
        "1/h",
        "SOCS3 mRNA degradation rate",
        "SOCS3RNATurn 0.00831/min, t1/2 about 83 min (" + BACHMANN + ")",
        log10_sd=0.5,
    ),
    _p(
        "socs3_tx_basal",
        1.0,
        "1",
        "basal SOCS3 transcription drive (sets the scale)",
        "assumed: scale of SOCS3 mRNA",
        log10_sd=0.5,
    ),
    _p(
        "w_stat1_socs3",
        6.0,
        "1",
        "SOCS3 transcription per unit pSTAT1 (direct induction)",
        "assumed; SOCS3 mRNA rose after IFN-a in 786-O (Tomita 2011, "
        "doi:10.1111/j.1349-7006.2010.01751.x)",
    ),
    _p(
        "w_stat3_socs3",
        15.0,
        "1",
        "SOCS3 transcription per unit pSTAT3 (via the IL-6 loop)",
        "assumed; SOCS3 mRNA induction in Raia 2011 reached several hundred-fold (" + RAIA + ")",
    ),
    _p(
        "k_socs3_deg",
        0.0434 * MIN,
        "1/h",
        "SOCS3 protein degradation rate",
        "SOCS3_degradation 0.0434/min, t1/2 about 16 min (" + RAIA + ")",
        log10_sd=0.5,
    ),
    _p(
        "socs3_oe_level",
        10.0,
        "1",
        "SOCS3 mRNA from the pCI-neo SOCS3 vector (basal units)",
        "assumed: over-expression several-fold above the basal level",
    ),
    # ---------------------------------------------------------------- siRNA
    _p(
        "kd_socs3",
        0.7,
        "1",
        "knock-down efficiency of the SOCS3 siRNA",
        "assumed",
        scale="logit",
        log10_sd=0.5,
    ),
    _p(
        "kd_il6",
        0.7,
        "1",
        "knock-down efficiency of the IL-6 siRNA",
        "assumed",
        scale="logit",
        log10_sd=0.5,
    ),
    _p(
        "kd_il6r",
        0.7,
        "1",
        "knock-down efficiency of the IL-6R siRNA",
        "assumed",
        scale="logit",
        log10_sd=0.5,
    ),
    _p(
        "kd_ifnar",
        0.7,
        "1",
        "knock-down efficiency of the IFNAR siRNA",
        "assumed",
        scale="logit",
        log10_sd=0.5,
    ),
    # ---------------------------------------------------------------- TKIs
    *(
        _p(
            f"tki_ec50_{d}",
            ec50,
            "uM",
            f"{d} concentration for half-maximal stress signalling",
            "assumed; IL-6 secretion rose already at the lowest doses (0.5 uM sorafenib and "
            "sunitinib, 1 uM pazopanib; " + REVIEW + "); sunitinib acts at lower doses than "
            "pazopanib (Can J Urol 2011;18:5819)",
        )
        for d, ec50 in zip(TKIS, (1.0, 1.0, 5.0), strict=True)
    ),
    *(
        _p(
            f"tki_emax_{d}",
            emax,
            "1",
            f"maximal stress signalling by {d}",
            "assumed; pazopanib led to less NF-kB, STAT3 and mTOR phosphorylation than "
            "sunitinib and sorafenib (" + REVIEW + ")",
        )
        for d, emax in zip(TKIS, (1.0, 1.0, 0.5), strict=True)
    ),
    *(
        _p(
            f"tki_tox_ic50_{d}",
            ic50,
            "uM",
            f"{d} concentration for half-maximal direct growth inhibition",
            "assumed; no IC50 in 786-O was found (literature inventory B)",
        )
        for d, ic50 in zip(TKIS, (10.0, 5.0, 40.0), strict=True)
    ),
    *(
        _p(
            f"mtorc1_block_{d}",
            0.05,
            "1",
            f"fraction of mTORC1 output (4EBP1, S6RP) that "
            f"{d} blocks off-target (same potency as its stress signalling)",
            "assumed; pazopanib did not raise p4EBP1 and pS6RP (" + REVIEW + ")",
            scale="logit",
            log10_sd=0.7,
        )
        for d in TKIS
    ),
    *(
        _p(
            f"vegfr_ic50_{d}",
            ic50,
            "uM",
            f"{d} concentration for half-maximal VEGFR block on vessels (in vivo)",
            "assumed",
        )
        for d, ic50 in zip(TKIS, (0.5, 0.2, 1.0), strict=True)
    ),
    _p("k_tki_tox", 0.01, "1/h", "maximal TKI-induced death rate", "assumed"),
    # ---------------------------------------------------------------- NF-kB, AKT
    _p("k_nfkb_act", 4.0, "1/h", "NF-kB activation rate", "assumed"),
    _p("k_nfkb_off", 2.0, "1/h", "NF-kB inactivation rate", "assumed"),
    _p("nfkb_tonic", 0.05, "1", "basal NF-kB drive", "assumed"),
    _p("w_tki_nfkb", 2.0, "1", "NF-kB drive per unit TKI stress (variant nfkb_il6)", "assumed"),
    _p("w_akt_nfkb", 0.2, "1", "NF-kB drive per unit AKT (IKK activation by AKT)", "assumed"),
    _p("k_akt_act", 4.0, "1/h", "AKT/mTOR activation rate", "assumed"),
    _p("k_akt_off", 2.0, "1/h", "AKT/mTOR inactivation rate", "assumed"),
    _p("akt_tonic", 0.1, "1", "basal AKT drive (growth factors)", "assumed"),
    _p(
        "w_il6r_akt",
        1.5,
        "1",
        "AKT drive per unit active IL-6 receptor",
        "assumed; IL-6 activates PI3K/AKT/mTOR (" + REVIEW + ", refs 28-32)",
    ),
    _p("w_tki_akt", 1.0, "1", "AKT drive per unit TKI stress (variant akt_direct)", "assumed"),
    _p("w_il6r_erk", 2.0, "1", "ERK phosphorylation per unit active IL-6 receptor", "assumed"),
    # ---------------------------------------------------------------- HIF-2a, VEGF
    _p("k_hif", 0.5, "1/h", "HIF-2a turnover rate", "assumed"),
    _p("hif_basal", 1.0, "1", "AKT-independent HIF-2a level (VHL status)", "assumed"),
    _p(
        "w_akt_hif",
        2.0,
        "1",
        "HIF-2a synthesis per unit AKT/mTOR",
        "assumed; TKIs raised HIF-2a in 786-O together with AKT/mTOR (" + REVIEW + ")",
    ),
    _p("k_vegf_sec", 20.0, "pg/mL/h", "VEGF secretion per unit HIF-2a", "assumed"),
    _p(
        "w_stat3_vegf",
        2.0,
        "1",
        "VEGF transcription per unit pSTAT3",
        "assumed; STAT3 drives VEGF (" + REVIEW + ", refs 25-27)",
    ),
    _p("k_vegf_clear", 0.05, "1/h", "loss of VEGF from the medium", "assumed"),
    _p(
        "sulf2",
        1.0,
        "1",
        "SULF-2 level, damping VEGF activity on vessels",
        "assumed; SULF-2 negatively regulates VEGF signalling (" + REVIEW + ", ref 60)",
    ),
    # ---------------------------------------------------------------- DR4, SOCS1, CIS
    _p("k_dr4", 0.2, "1/h", "DR4 turnover rate", "assumed"),
    _p(
        "w_stat1_dr4",
        2.0,
        "1",
        "DR4 synthesis per unit pSTAT1",
        "assumed; IFN up-regulated DR4 in RCC cells (Yabe 2018, PMC6114968)",
    ),
    _p(
        "socs3_k_dr4",
        2.0,
        "1",
        "SOCS3 level doubling DR4 loss",
        "assumed; SOCS3 binds DR4 and suppresses it (Yabe 2018, PMC6114968)",
    ),
    _p(
        "k_mrna_other",
        0.00831 * MIN,
        "1/h",
        "SOCS1 and CIS mRNA degradation rate",
        "assumed equal to SOCS3 mRNA turnover (" + BACHMANN + "); Bachmann's CISRNATurn "
        "sits at its bound",
    ),
    _p("w_stat1_socs1", 6.0, "1", "SOCS1 transcription per unit pSTAT1", "assumed"),
    _p("w_stat1_cis", 3.0, "1", "CIS transcription per unit pSTAT1", "assumed"),
    _p("w_stat3_cis", 3.0, "1", "CIS transcription per unit pSTAT3", "assumed"),
    # ---------------------------------------------------------------- growth
    _p(
        "mu_vitro",
        LN2 / 45.0,
        "1/h",
        "in-vitro growth rate of untreated cells",
        "786-O doubling time 45 h (Williams 1978, doi:10.1007/BF02617972)",
        log10_sd=0.3,
    ),
    _p(
        "mu_vivo",
        LN2 / 120.0,
        "1/h",
        "growth rate of untreated xenografts",
        "assumed: 5-day volume doubling; NCI DTP growth curves were not retrieved",
    ),
    _p(
        "w_stat1_growth",
        2.0,
        "1",
        "growth-rate reduction per unit pSTAT1 (x mu)",
        "assumed; IFN-a is directly antiproliferative (" + REVIEW + ")",
    ),
    _p(
        "w_akt_growth",
        0.5,
        "1",
        "growth-rate gain per unit AKT/mTOR (x mu)",
        "assumed; AKT/mTOR enhances proliferation (" + REVIEW + ", refs 31-32)",
    ),
    _p("w_stat3_growth", 0.3, "1", "growth-rate gain per unit pSTAT3 (x mu)", "assumed"),
    _p(
        "w_vessel_growth",
        1.0,
        "1",
        "in-vivo growth-rate gain per log vessel density (x mu)",
        "assumed",
    ),
    _p("k_vessel", 0.02, "1/h", "vessel remodelling rate (in vivo)", "assumed"),
    _p("vegf_k_angio", 100.0, "pg/mL", "VEGF level half-saturating angiogenesis", "assumed"),
    _p("trail_ec50", 50.0, "ng/mL", "TRAIL dose for half-maximal DR4 engagement", "assumed"),
    _p("k_trail_kill", 0.05, "1/h", "TRAIL-induced death rate per unit DR4", "assumed"),
    # ---------------------------------------------------------------- observation helpers
    _p(
        "tumour_v0",
        100.0,
        "mm3",
        "tumour volume when treatment starts",
        "assumed: xenograft studies usually start treatment at about 100 mm3",
    ),
    _p(
        "suv_basal",
        10.0,
        "1",
        "FDG-PET SUVmax of an untreated-like tumour",
        "assumed; treated 786-O xenografts had SUVmax 9.6-11.9 at day 3 (Ishibashi 2017, "
        "PMC5589655, Fig. 7B)",
        log10_sd=0.5,
    ),
    _p(
        "w_suv", 1.0, "1", "log SUVmax change per unit change of the proliferative drive", "assumed"
    ),
    _p("necrosis_k", 0.5, "1", "vessel density at which half of the tumour is viable", "assumed"),
    _p("death_basal", 0.005, "1/h", "basal death rate (apoptotic index scale)", "assumed"),
    _p(
        "w_nfkb_il8",
        4.0,
        "1",
        "IL-8 expression per unit NF-kB (IL-8 is an NF-kB target)",
        "assumed",
    ),
    _p("w_survival_bcl2", 2.0, "1", "Bcl-2/Bax per unit pSTAT3 + NF-kB", "assumed"),
    # ---------------------------------------------------------------- mechanism switches
    *(
        ParameterSpec(
            name,
            1.0,
            "1",
            description,
            "structural switch set by the mechanism variant (0 or 1), never estimated",
            scale="lin",
            estimable=False,
        )
        for name, description in (
            ("switch_socs3_by_stat1", "SOCS3 transcription responds to pSTAT1"),
            ("switch_socs3_by_stat3", "SOCS3 transcription responds to pSTAT3 (IL-6 loop)"),
            ("switch_il6r_membrane", "IL-6 signals through membrane IL-6R"),
            ("switch_il6r_soluble", "IL-6 signals through soluble IL-6R"),
            ("switch_tki_nfkb", "TKI stress acts on NF-kB (1) or directly on AKT (0)"),
        )
    ),
)

INPUTS: tuple[InputSpec, ...] = (
    InputSpec("ifn_alpha", "IU/mL", "IFN-a"),
    InputSpec("sorafenib", "uM", "sorafenib (in vivo: effective exposure)"),
    InputSpec("sunitinib", "uM", "sunitinib (in vivo: effective exposure)"),
    InputSpec("pazopanib", "uM", "pazopanib (in vivo: effective exposure)"),
    InputSpec("tocilizumab", "nM", "anti-IL-6R antibody tocilizumab"),
    InputSpec("il6", "ng/mL", "exogenous recombinant IL-6, added at treatment start"),
    InputSpec("trail", "ng/mL", "TRAIL"),
    InputSpec("si_socs3", "indicator", "SOCS3 siRNA", pretreatment=True, indicator=True),
    InputSpec("si_il6", "indicator", "IL-6 siRNA", pretreatment=True, indicator=True),
    InputSpec("si_il6r", "indicator", "IL-6R siRNA", pretreatment=True, indicator=True),
    InputSpec("si_ifnar", "indicator", "IFNAR siRNA", pretreatment=True, indicator=True),
    InputSpec(
        "socs3_overexpression",
        "indicator",
        "pCI-neo SOCS3 expression vector",
        pretreatment=True,
        indicator=True,
    ),
    InputSpec(
        "xenograft",
        "indicator",
        "cells grown as a xenograft in nude mice",
        pretreatment=True,
        indicator=True,
    ),
    InputSpec(
        "treatment_phase",
        "indicator",
        "0 during pre-equilibration, 1 once treatment starts (set by the simulator, not by users)",
        phase=True,
        indicator=True,
    ),
)

OBSERVABLES: tuple[ObservableSpec, ...] = (
    ObservableSpec("pstat1", "a.u.", "phosphorylated STAT1 (western)"),
    ObservableSpec("pstat3", "a.u.", "phosphorylated STAT3 (western)"),
    ObservableSpec("il6_mrna", "a.u.", "IL-6 mRNA (qPCR)"),
    ObservableSpec("il6_secreted", "pg/mL", "IL-6 in the supernatant (ELISA, Luminex)", False),
    ObservableSpec("socs3_mrna", "a.u.", "SOCS3 mRNA (qPCR)"),
    ObservableSpec("socs3_protein", "a.u.", "SOCS3 protein (western, IHC)"),
    ObservableSpec("socs1_mrna", "a.u.", "SOCS1 mRNA (qPCR)"),
    ObservableSpec("cis_mrna", "a.u.", "CIS mRNA (qPCR)"),
    ObservableSpec("pnfkb", "a.u.", "phosphorylated NF-kB (western)"),
    ObservableSpec("pakt", "a.u.", "phosphorylated AKT (western)"),
    ObservableSpec("pmtor", "a.u.", "phosphorylated mTOR (western)"),
    ObservableSpec("pp70s6k", "a.u.", "phosphorylated p70S6K (western)"),
    ObservableSpec("ps6rp", "a.u.", "phosphorylated S6 ribosomal protein (western)"),
    ObservableSpec("p4ebp1", "a.u.", "phosphorylated 4EBP1 (western)"),
    ObservableSpec("perk", "a.u.", "phosphorylated ERK (western)"),
    ObservableSpec("hif2a", "a.u.", "HIF-2a protein (western)"),
    ObservableSpec("vegf_mrna", "a.u.", "VEGF mRNA (qPCR)"),
    ObservableSpec("vegf_secreted", "pg/mL", "VEGF in the supernatant (Luminex)", False),
    ObservableSpec("dr4", "a.u.", "DR4 protein (western)"),
    ObservableSpec("il8_mrna", "a.u.", "IL-8 mRNA (qPCR)"),
    ObservableSpec("bcl2_bax", "1", "Bcl-2/Bax expression ratio"),
    ObservableSpec("il6r_surface", "a.u.", "membrane IL-6R (gp80) on the cell surface"),
    ObservableSpec("sulf2_mrna", "a.u.", "SULF-2 expression"),
    ObservableSpec("viability", "1", "cell number relative to untreated cells (MTT)", False),
    ObservableSpec("death_rate", "1/h", "cell death rate (apoptotic index)"),
    ObservableSpec("tumour_volume", "mm3", "xenograft tumour volume", False),
    ObservableSpec("suv_max", "1", "FDG-PET SUVmax of the tumour", False),
    ObservableSpec("cd31", "a.u.", "CD31-positive vessel density"),
    ObservableSpec("viable_fraction", "1", "viable (non-necrotic) tumour fraction", False),
)

_RANKS = "assumed: direction from " + REVIEW + "; magnitude not reported"
CELL_LINES: tuple[CellLine, ...] = (
    CellLine(
        "RCC",
        "an unspecified RCC line (the population level of the hierarchy)",
        {},
        "model defaults",
        aliases=("RCC (unspecified)",),
    ),
    CellLine(
        "786-O",
        "clear-cell RCC, VHL-null, IFN-resistant, IL-6 high",
        {
            "il6_tx_basal": 3.0,
            "w_stat1_il6": 3.0,
            "socs3_tx_basal": 2.0,
            "hif_basal": 3.0,
            "sulf2": 0.5,
        },
        _RANKS + " (IL-6 and SOCS3 induction highest in 786-O, lowest in ACHN; 786-O "
        "SULF-2 lower than ACHN); basal SOCS3 higher in 786-O than ACHN (Yabe 2018, "
        "PMC6114968); VHL loss raises HIF-2a (assumed, not in the inventory)",
        aliases=("786O", "786-0"),
    ),
    CellLine(
        "ACHN",
        "papillary-like RCC, IFN-sensitive, IL-6 low",
        {"il6_tx_basal": 0.3, "w_stat1_il6": 0.3, "sulf2": 2.0},
        _RANKS,
    ),
    CellLine("A498", "clear-cell RCC (the review's 'A489')", {}, "", aliases=("A489", "A-498")),
    CellLine("Caki-1", "clear-cell RCC (metastatic)", {}, "", aliases=("Caki1",)),
    CellLine("Caki-2", "RCC", {}, "", aliases=("Caki2",)),
    CellLine("TUHR3TKB", "RCC (Oguro 2013 panel)", {}, ""),
    CellLine("TUHR4TKB", "RCC (Oguro 2013 panel)", {}, ""),
    CellLine("SN12K1", "RCC (Kamli 2018)", {}, ""),
    CellLine("769-P", "clear-cell RCC", {}, ""),
    *(
        CellLine(
            f"{parent}-SunR",
            f"sunitinib-resistant subline of {parent} (12 months at 10 uM; Kamli 2018)",
            factors,
            f"same defaults as {parent}; differences are left to the fit",
        )
        for parent, factors in (
            (
                "786-O",
                {
                    "il6_tx_basal": 3.0,
                    "w_stat1_il6": 3.0,
                    "socs3_tx_basal": 2.0,
                    "hif_basal": 3.0,
                    "sulf2": 0.5,
                },
            ),
            ("Caki-1", {}),
            ("Caki-2", {}),
            ("SN12K1", {}),
        )
    ),
)

SOCS3_INDUCTION = ("il6_loop", "stat1", "both", "neither")
IL6_RECEPTOR = ("both", "membrane", "soluble")
TKI_ACTION = ("nfkb_il6", "akt_direct")

#: Named mechanism variants: the hypotheses to compare.
VARIANTS: dict[str, dict[str, str]] = {
    "main": {},
    "socs3_il6_loop": {"socs3_induction": "il6_loop"},
    "socs3_stat1": {"socs3_induction": "stat1"},
    "socs3_both": {"socs3_induction": "both"},
    "socs3_neither": {"socs3_induction": "neither"},
    "il6r_membrane": {"il6_receptor": "membrane"},
    "il6r_soluble": {"il6_receptor": "soluble"},
    "tki_akt_direct": {"tki_action": "akt_direct"},
}


def _hill1(x, k):
    return x / (x + k)


#: Rate (1/h) at which the recorded basal proliferative drive follows the current drive
#: during pre-equilibration; it is frozen once treatment starts.
K_GROWTH_REF = 1.0


@dataclass(frozen=True, eq=False)
class RCCCircuit(ODEModel):
    """The circuit with one mechanism variant. Build by name with :meth:`variant`.

    The equations are written once, in :meth:`rates` and :meth:`observable_values`,
    over a math namespace (``jax.numpy`` for simulation, ``sympy`` for SBML export).
    """

    socs3_induction: Literal["il6_loop", "stat1", "both", "neither"] = "il6_loop"
    il6_receptor: Literal["both", "membrane", "soluble"] = "both"
    tki_action: Literal["nfkb_il6", "akt_direct"] = "nfkb_il6"

    name: ClassVar[str] = "rcc_circuit"
    states: ClassVar[tuple[str, ...]] = STATES
    parameters: ClassVar[tuple[ParameterSpec, ...]] = PARAMETERS
    inputs: ClassVar[tuple[InputSpec, ...]] = INPUTS
    observables: ClassVar[tuple[ObservableSpec, ...]] = OBSERVABLES
    cell_lines: ClassVar[tuple[CellLine, ...]] = CELL_LINES
    accumulator_states: ClassVar[tuple[str, ...]] = ("log_growth",)
    nonnegative_states: ClassVar[tuple[str, ...]] = STATES[:-2]  # not log_growth, growth_ref

    def __post_init__(self) -> None:
        problems = []
        for field_name, valid in (
            ("socs3_induction", SOCS3_INDUCTION),
            ("il6_receptor", IL6_RECEPTOR),
            ("tki_action", TKI_ACTION),
        ):
            if getattr(self, field_name) not in valid:
                problems.append(
                    f"{field_name} {getattr(self, field_name)!r} is unknown; valid: "
                    f"{choices(valid)}"
                )
        if problems:
            raise ModelSpecError("; ".join(problems))

    @classmethod
    def variant(cls, name: str = "main", **components: str) -> RCCCircuit:
        """The named variant (see :data:`VARIANTS`), optionally with components overridden."""
        if name not in VARIANTS:
            raise ModelSpecError(f"unknown variant {name!r}; valid: {choices(VARIANTS)}")
        return cls(**{**VARIANTS[name], **components})

    @property
    def variant_name(self) -> str:
        return f"socs3={self.socs3_induction},il6r={self.il6_receptor},tki={self.tki_action}"

    # ------------------------------------------------------------------ switches
    def switches(self) -> dict[str, float]:
        """Values of the mechanism switches for this variant. They are parameters (not
        Python constants in the equations), so all variants share one compiled program."""
        socs3 = {
            "il6_loop": (0.0, 1.0),
            "stat1": (1.0, 0.0),
            "both": (1.0, 1.0),
            "neither": (0.0, 0.0),
        }[self.socs3_induction]
        receptor = {"both": (1.0, 1.0), "membrane": (1.0, 0.0), "soluble": (0.0, 1.0)}[
            self.il6_receptor
        ]
        return {
            "switch_socs3_by_stat1": socs3[0],
            "switch_socs3_by_stat3": socs3[1],
            "switch_il6r_membrane": receptor[0],
            "switch_il6r_soluble": receptor[1],
            "switch_tki_nfkb": 1.0 if self.tki_action == "nfkb_il6" else 0.0,
        }

    def default_params(self, cell_line: str | None = None) -> np.ndarray:
        values = super().default_params(cell_line)
        for name, value in self.switches().items():
            values[self.index("parameters", name)] = value
        return values

    def __eq__(self, other) -> bool:
        # The variant lives in the parameters (see ``switches``): equations, and hence
        # compiled programs, are the same for every variant.
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__qualname__)

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def _tki(p, u):
        """TKI stress signal, direct growth inhibition, VEGFR and mTORC1 blocks."""
        stress = tox = 0.0
        vegfr_free = mtorc1_free = 1.0
        for d in TKIS:
            dose = u[d]
            occupancy = _hill1(dose, p[f"tki_ec50_{d}"])
            stress = stress + p[f"tki_emax_{d}"] * occupancy
            tox = tox + _hill1(dose, p[f"tki_tox_ic50_{d}"])
            vegfr_free = vegfr_free * (1.0 - _hill1(dose, p[f"vegfr_ic50_{d}"]))
            mtorc1_free = mtorc1_free * (1.0 - p[f"mtorc1_block_{d}"] * occupancy)
        return stress, tox, vegfr_free, mtorc1_free

    def _il6_receptors(self, p, u):
        """IL-6 receptor capacity left free by tocilizumab and the IL-6R siRNA."""
        mem, sol = p["switch_il6r_membrane"], p["switch_il6r_soluble"]
        free = (1.0 - _hill1(u["tocilizumab"], p["tcz_kd"])) * (1.0 - p["kd_il6r"] * u["si_il6r"])
        return free * (mem * p["mil6r"] + sol * p["sil6r"])

    @staticmethod
    def _growth_drive(s, p, u, fn):
        """Proliferative drive (x mu): AKT, STAT3 and vessels up, pSTAT1 down."""
        return (
            p["w_akt_growth"] * s["akt"]
            + p["w_stat3_growth"] * s["pstat3"]
            - p["w_stat1_growth"] * s["pstat1"]
            + u["xenograft"] * p["w_vessel_growth"] * fn.log(s["vessels"])
        )

    @staticmethod
    def _death(s, p, u, tox):
        trail = p["k_trail_kill"] * _hill1(u["trail"], p["trail_ec50"]) * s["dr4"]
        return p["k_tki_tox"] * tox + trail

    @staticmethod
    def _mu(p, u):
        return (1.0 - u["xenograft"]) * p["mu_vitro"] + u["xenograft"] * p["mu_vivo"]

    # ------------------------------------------------------------------ equations
    def rates(self, s, p, u, fn) -> dict:
        """d(state)/dt by state name. ``s``, ``p``, ``u``: states, parameters and inputs
        by name; ``fn``: math namespace with ``log`` (``jax.numpy`` or ``sympy``)."""
        m_s1, m_s3 = p["switch_socs3_by_stat1"], p["switch_socs3_by_stat3"]
        tki_nfkb = p["switch_tki_nfkb"]
        stress, tox, vegfr_free, _ = self._tki(p, u)
        r = {}
        ifn_signal = _hill1(u["ifn_alpha"], p["ifn_ec50"]) + p["ifnar_tonic"]
        ifnar_cap = 1.0 - p["kd_ifnar"] * u["si_ifnar"]
        r["ifnar"] = (
            p["k_ifnar_act"]
            * ifn_signal
            * ifnar_cap
            * (1.0 - s["ifnar"])
            / (1.0 + s["socs3"] / p["socs3_k_ifnar"])
            - p["k_ifnar_off"] * s["ifnar"]
        )
        r["pstat1"] = (
            p["k_stat1_p"] * s["ifnar"] * (1.0 - s["pstat1"]) - p["k_stat1_dp"] * s["pstat1"]
        )
        il6_drive = (
            p["il6_tx_basal"]
            + p["w_stat1_il6"] * s["pstat1"]
            + p["w_stat3_il6"] * s["pstat3"]
            + p["w_nfkb_il6"] * s["nfkb"]
        ) * (1.0 - p["kd_il6"] * u["si_il6"])
        r["il6_mrna"] = p["k_il6_mrna_deg"] * (il6_drive - s["il6_mrna"])
        r["il6"] = p["k_il6_sec"] * s["il6_mrna"] - p["k_il6_clear"] * s["il6"]
        r["il6_exo"] = -p["k_il6_clear"] * s["il6_exo"]
        occupancy = _hill1(s["il6"] + s["il6_exo"], p["il6_ec50"])
        r["il6r"] = (
            p["k_il6r_act"]
            * occupancy
            * self._il6_receptors(p, u)
            * (1.0 - s["il6r"])
            / (1.0 + s["socs3"] / p["socs3_k_il6r"])
            - p["k_il6r_off"] * s["il6r"]
        )
        r["pstat3"] = (
            p["k_stat3_p"] * (s["il6r"] + p["stat3_tonic"]) * (1.0 - s["pstat3"])
            - p["k_stat3_dp"] * s["pstat3"]
        )
        socs3_drive = (
            p["socs3_tx_basal"]
            + m_s1 * p["w_stat1_socs3"] * s["pstat1"]
            + m_s3 * p["w_stat3_socs3"] * s["pstat3"]
        ) * (1.0 - p["kd_socs3"] * u["si_socs3"]) + u["socs3_overexpression"] * p["socs3_oe_level"]
        r["socs3_mrna"] = p["k_socs3_mrna_deg"] * (socs3_drive - s["socs3_mrna"])
        r["socs3"] = p["k_socs3_deg"] * (s["socs3_mrna"] - s["socs3"])
        nfkb_drive = (
            p["nfkb_tonic"] + tki_nfkb * p["w_tki_nfkb"] * stress + p["w_akt_nfkb"] * s["akt"]
        )
        r["nfkb"] = p["k_nfkb_act"] * nfkb_drive * (1.0 - s["nfkb"]) - p["k_nfkb_off"] * s["nfkb"]
        akt_drive = (
            p["akt_tonic"]
            + p["w_il6r_akt"] * s["il6r"]
            + (1.0 - tki_nfkb) * p["w_tki_akt"] * stress
        )
        r["akt"] = p["k_akt_act"] * akt_drive * (1.0 - s["akt"]) - p["k_akt_off"] * s["akt"]
        r["hif2a"] = p["k_hif"] * (p["hif_basal"] + p["w_akt_hif"] * s["akt"] - s["hif2a"])
        r["vegf"] = (
            p["k_vegf_sec"] * (s["hif2a"] + p["w_stat3_vegf"] * s["pstat3"])
            - p["k_vegf_clear"] * s["vegf"]
        )
        r["dr4"] = p["k_dr4"] * (
            1.0 + p["w_stat1_dr4"] * s["pstat1"] - s["dr4"] * (1.0 + s["socs3"] / p["socs3_k_dr4"])
        )
        r["socs1_mrna"] = p["k_mrna_other"] * (
            1.0 + p["w_stat1_socs1"] * s["pstat1"] - s["socs1_mrna"]
        )
        r["cis_mrna"] = p["k_mrna_other"] * (
            1.0 + p["w_stat1_cis"] * s["pstat1"] + p["w_stat3_cis"] * s["pstat3"] - s["cis_mrna"]
        )
        angiogenesis = 2.0 * _hill1(s["vegf"] / (1.0 + p["sulf2"]), p["vegf_k_angio"]) * vegfr_free
        r["vessels"] = p["k_vessel"] * (angiogenesis - s["vessels"])
        drive = self._growth_drive(s, p, u, fn)
        r["log_growth"] = self._mu(p, u) * (drive - s["growth_ref"]) - self._death(s, p, u, tox)
        r["growth_ref"] = K_GROWTH_REF * (1.0 - u["treatment_phase"]) * (drive - s["growth_ref"])
        return r

    def observable_values(self, t, s, p, u, fn) -> dict:
        """Observables by name, over the math namespace ``fn`` (``log``, ``exp``, ``maximum``)."""
        _, tox, _, mtorc1_free = self._tki(p, u)
        drive_change = self._growth_drive(s, p, u, fn) - s["growth_ref"]
        death = (
            p["death_basal"]
            + self._death(s, p, u, tox)
            + self._mu(p, u) * fn.maximum(-drive_change, 0.0)
        )
        return {
            "pstat1": s["pstat1"],
            "pstat3": s["pstat3"],
            "il6_mrna": s["il6_mrna"],
            "il6_secreted": s["il6"] + s["il6_exo"],
            "socs3_mrna": s["socs3_mrna"],
            "socs3_protein": s["socs3"],
            "socs1_mrna": s["socs1_mrna"],
            "cis_mrna": s["cis_mrna"],
            "pnfkb": s["nfkb"],
            "pakt": s["akt"],
            "pmtor": s["akt"],
            "pp70s6k": s["akt"],
            "ps6rp": s["akt"] * mtorc1_free,
            "p4ebp1": s["akt"] * mtorc1_free,
            "perk": 0.1 + p["w_il6r_erk"] * s["il6r"],
            "hif2a": s["hif2a"],
            "vegf_mrna": s["hif2a"] + p["w_stat3_vegf"] * s["pstat3"],
            "vegf_secreted": s["vegf"],
            "dr4": s["dr4"],
            "il8_mrna": 1.0 + p["w_nfkb_il8"] * s["nfkb"],
            "bcl2_bax": 1.0 + p["w_survival_bcl2"] * (s["pstat3"] + s["nfkb"]),
            "il6r_surface": p["mil6r"] * (1.0 - p["kd_il6r"] * u["si_il6r"]),
            "sulf2_mrna": p["sulf2"] + 0.0 * s["akt"],
            "viability": fn.exp(s["log_growth"]),
            "death_rate": death,
            "tumour_volume": p["tumour_v0"] * fn.exp(p["mu_vivo"] * t + s["log_growth"]),
            "suv_max": p["suv_basal"] * fn.exp(p["w_suv"] * drive_change),
            "cd31": s["vessels"],
            "viable_fraction": _hill1(s["vessels"], p["necrosis_k"]) * (1.0 + p["necrosis_k"]),
        }

    def treatment_state(self, params, inputs) -> dict:
        """At treatment start: growth is counted from 0, exogenous IL-6 (ng/mL) is added."""
        u = self.named_inputs(inputs)
        return {"log_growth": 0.0 * u["il6"], "il6_exo": 1000.0 * u["il6"]}

    # ------------------------------------------------------------------ model API
    def vector_field(self, t, y, params, inputs):
        r = self.rates(self.named_states(y), self.unpack(params), self.named_inputs(inputs), jnp)
        return jnp.stack([r[name] for name in self.states])

    def observe(self, t, y, params, inputs):
        o = self.observable_values(
            t, self.named_states(y), self.unpack(params), self.named_inputs(inputs), jnp
        )
        return jnp.stack([jnp.asarray(o[name], dtype=y.dtype) for name in self.observable_names])

    def initial_guess(self, params, inputs):
        """A cheap approximation of the basal state (feedback ignored); Newton's method
        and a pre-equilibration integration take it from there."""
        p = self.unpack(params)
        u = self.named_inputs(inputs)
        g = {name: 1.0 for name in self.states}
        tonic = p["k_ifnar_act"] * p["ifnar_tonic"]
        g["ifnar"] = tonic / (tonic + p["k_ifnar_off"])
        g["pstat1"] = p["k_stat1_p"] * g["ifnar"] / (p["k_stat1_p"] * g["ifnar"] + p["k_stat1_dp"])
        g["il6_mrna"] = p["il6_tx_basal"] * (1.0 - p["kd_il6"] * u["si_il6"])
        g["il6"] = p["k_il6_sec"] * g["il6_mrna"] / p["k_il6_clear"]
        g["il6_exo"] = 0.0
        g["il6r"] = 0.1
        g["pstat3"] = p["stat3_tonic"]
        g["socs3_mrna"] = g["socs3"] = (
            p["socs3_tx_basal"] + u["socs3_overexpression"] * p["socs3_oe_level"]
        )
        g["nfkb"] = p["nfkb_tonic"] / (p["nfkb_tonic"] + 1.0)
        g["akt"] = p["akt_tonic"] / (p["akt_tonic"] + 1.0)
        g["hif2a"] = p["hif_basal"] + p["w_akt_hif"] * g["akt"]
        g["vegf"] = p["k_vegf_sec"] * g["hif2a"] / p["k_vegf_clear"]
        g["log_growth"] = 0.0
        g["growth_ref"] = self._growth_drive(g, p, u, jnp)
        ref = p["k_stat1_p"]
        return jnp.stack([jnp.asarray(g[name], dtype=ref.dtype) for name in self.states])


def load_variant(name: str = "main") -> RCCCircuit:
    """The circuit with the named mechanism variant."""
    return RCCCircuit.variant(name)


__all__ = [
    "CELL_LINES",
    "IL6_RECEPTOR",
    "INPUTS",
    "OBSERVABLES",
    "PARAMETERS",
    "RCCCircuit",
    "SOCS3_INDUCTION",
    "STATES",
    "TKIS",
    "TKI_ACTION",
    "VARIANTS",
    "load_variant",
]
