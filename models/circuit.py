"""The IL-6 / SOCS3 / JAK-STAT circuit of renal cell carcinoma cells.

One vector field, with the competing mechanisms as switches (see :data:`COMPONENTS`
and :data:`VARIANTS`):

* IFN-a -> IFNAR/JAK1-TYK2 -> pSTAT1 (antiproliferative; induces IL-6, SOCS1, USP18,
  CIS, DR4); IFNAR is desensitised by SOCS3 and/or SOCS1 and/or USP18
  (``ifn_desensitisation``);
* IL-6 mRNA -> secreted IL-6 (pg/mL) -> IL-6 receptor complex through membrane IL-6R
  (classic) and/or soluble IL-6R (trans-signalling, ``il6_receptor``) -> pSTAT3,
  AKT/mTOR, ERK (and NF-kB, ``nfkb_activation``); pSTAT3 drives IL-6 transcription
  (the autocrine loop);
* SOCS3 mRNA -> SOCS3 protein, inhibiting the IL-6 receptor (and IFNAR); SOCS3 is
  induced by pSTAT1 and/or pSTAT3 (``socs3_induction``);
* TKIs (sorafenib, sunitinib, pazopanib, each with its own potency) raise IL-6 through
  NF-kB (``tki_action: nfkb_il6``), by a route the sources do not name
  (``il6_production``, the review's account) or act on AKT directly (``akt_direct``);
  AKT/mTOR -> HIF-2a, HIF-2a and pSTAT3 -> VEGF; in vivo TKIs block VEGFR on vessels,
  and an adaptive angiogenic escape can build over days (``adaptation``);
* perturbations of the IL-6 axis that separate its routes: tocilizumab (IL-6R, membrane
  and soluble), a neutralising anti-IL-6 antibody (ligand), sgp130Fc (trans-signalling
  only) and Hyper-IL-6 (gp130 without IL-6R); antibody binding is fast compared with
  signalling, so it is algebraic (equilibrium occupancy), not a stiff ODE;
* growth: the log of the cell number relative to untreated cells of the same line and
  setting (MTT) and, in vivo, of the tumour volume relative to untreated tumours.

Untreated cells sit at the basal steady state, computed for each cell line (and siRNA
or over-expression) by pre-equilibration. Growth is counted against the untreated
cells of the line (:attr:`RCCCircuit.reference_inputs`): the state ``growth_ref`` holds
the proliferative drive of that reference state and is frozen once treatment starts,
so a knock-down or an over-expression alone changes growth, and every other state is
at rest before treatment.

Time is in hours. Signalling species are fractions of their maximum (receptor
complexes, phosphorylated proteins) or levels scaled so that the basal transcription
drive equals the steady-state level (mRNAs, SOCS3, USP18, HIF-2a, DR4). Secreted IL-6
and VEGF are in pg/mL. Every parameter, with its unit, source value and the conversion
to the model's unit, is a row of ``circuit_parameters.tsv`` (:data:`PARAMETER_TABLE`);
the mechanism switches are appended from :data:`SWITCHES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from ..errors import ModelSpecError, choices
from ._model import CellLine, InputSpec, ObservableSpec, ODEModel, ParameterSpec
from ._parameter_table import ParameterRow, read_parameter_table

REVIEW = "Ishibashi 2018 review (PMC6305783)"

#: The parameter table of the circuit (package data, read and validated at import).
PARAMETER_TABLE_PATH = Path(__file__).with_name("circuit_parameters.tsv")

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
    "socs1_mrna",  # SOCS1 mRNA, scaled (SOCS1 protein taken to follow it)
    "cis_mrna",  # CIS mRNA, scaled
    "usp18",  # USP18 protein, scaled
    "vessels",  # tumour vessel density (CD31), relative
    "escape",  # adaptive angiogenic escape from VEGFR block, fraction (in vivo)
    "log_growth",  # log(cell number or tumour volume / untreated), accumulator
    "growth_ref",  # proliferative drive of the untreated reference, frozen during treatment
)

TKIS = ("sorafenib", "sunitinib", "pazopanib")

#: Mechanism components and their choices; a variant picks one choice per component.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "socs3_induction": ("il6_loop", "stat1", "both", "neither"),
    "il6_receptor": ("both", "membrane", "soluble"),
    "tki_action": ("nfkb_il6", "akt_direct", "il6_production"),
    "nfkb_activation": ("akt", "akt_il6r"),
    "ifn_desensitisation": ("socs3", "socs1", "usp18", "socs3_socs1_usp18"),
    "adaptation": ("none", "angiogenic_escape"),
}
SOCS3_INDUCTION = COMPONENTS["socs3_induction"]
IL6_RECEPTOR = COMPONENTS["il6_receptor"]
TKI_ACTION = COMPONENTS["tki_action"]
NFKB_ACTIVATION = COMPONENTS["nfkb_activation"]
IFN_DESENSITISATION = COMPONENTS["ifn_desensitisation"]
ADAPTATION = COMPONENTS["adaptation"]

#: Structural switches (0 or 1) by component and choice. They are parameters of the
#: vector field, not Python constants in it, so every variant runs the same program.
SWITCH_VALUES: dict[str, dict[str, dict[str, float]]] = {
    "socs3_induction": {
        choice: {"switch_socs3_by_stat1": s1, "switch_socs3_by_stat3": s3}
        for choice, (s1, s3) in {
            "il6_loop": (0.0, 1.0),
            "stat1": (1.0, 0.0),
            "both": (1.0, 1.0),
            "neither": (0.0, 0.0),
        }.items()
    },
    "il6_receptor": {
        choice: {"switch_il6r_membrane": m, "switch_il6r_soluble": s}
        for choice, (m, s) in {
            "both": (1.0, 1.0),
            "membrane": (1.0, 0.0),
            "soluble": (0.0, 1.0),
        }.items()
    },
    "tki_action": {
        choice: {"switch_tki_nfkb": n, "switch_tki_akt": a, "switch_tki_il6": i}
        for choice, (n, a, i) in {
            "nfkb_il6": (1.0, 0.0, 0.0),
            "akt_direct": (0.0, 1.0, 0.0),
            "il6_production": (0.0, 0.0, 1.0),
        }.items()
    },
    "nfkb_activation": {
        "akt": {"switch_il6r_nfkb": 0.0},
        "akt_il6r": {"switch_il6r_nfkb": 1.0},
    },
    "ifn_desensitisation": {
        choice: {"switch_ifnar_socs3": s3, "switch_ifnar_socs1": s1, "switch_ifnar_usp18": u}
        for choice, (s3, s1, u) in {
            "socs3": (1.0, 0.0, 0.0),
            "socs1": (0.0, 1.0, 0.0),
            "usp18": (0.0, 0.0, 1.0),
            "socs3_socs1_usp18": (1.0, 1.0, 1.0),
        }.items()
    },
    "adaptation": {
        "none": {"switch_escape": 0.0},
        "angiogenic_escape": {"switch_escape": 1.0},
    },
}

#: What each switch turns on (the edge), for the parameter listing and SBML export.
SWITCHES: dict[str, str] = {
    "switch_socs3_by_stat1": "SOCS3 transcription responds to pSTAT1",
    "switch_socs3_by_stat3": "SOCS3 transcription responds to pSTAT3 (IL-6 loop)",
    "switch_il6r_membrane": "IL-6 signals through membrane IL-6R",
    "switch_il6r_soluble": "IL-6 signals through soluble IL-6R",
    "switch_tki_nfkb": "TKI stress activates NF-kB (-> IL-6)",
    "switch_tki_akt": "TKI stress activates AKT directly",
    "switch_tki_il6": "TKI stress raises IL-6 transcription by an unnamed route",
    "switch_il6r_nfkb": "the active IL-6 receptor activates NF-kB",
    "switch_ifnar_socs3": "SOCS3 inhibits IFNAR/JAK",
    "switch_ifnar_socs1": "SOCS1 inhibits IFNAR/JAK",
    "switch_ifnar_usp18": "USP18 inhibits IFNAR/JAK",
    "switch_escape": "an adaptive angiogenic escape builds under VEGFR block",
}


def _load_parameters() -> tuple[tuple[ParameterRow, ...], tuple[ParameterSpec, ...]]:
    rows = read_parameter_table(PARAMETER_TABLE_PATH)
    switches = tuple(
        ParameterSpec(
            name,
            1.0,
            "1",
            description,
            "structural switch set by the mechanism variant (0 or 1), never estimated",
            scale="lin",
            estimable=False,
        )
        for name, description in SWITCHES.items()
    )
    return rows, tuple(r.spec for r in rows) + switches


#: Rows of the parameter table with their provenance (source value, conversion).
PARAMETER_TABLE: tuple[ParameterRow, ...]
PARAMETERS: tuple[ParameterSpec, ...]
PARAMETER_TABLE, PARAMETERS = _load_parameters()

INPUTS: tuple[InputSpec, ...] = (
    InputSpec("ifn_alpha", "IU/mL", "IFN-a"),
    InputSpec("sorafenib", "uM", "sorafenib (in vivo: effective exposure)"),
    InputSpec("sunitinib", "uM", "sunitinib (in vivo: effective exposure)"),
    InputSpec("pazopanib", "uM", "pazopanib (in vivo: effective exposure)"),
    InputSpec("tocilizumab", "nM", "anti-IL-6R antibody tocilizumab"),
    InputSpec(
        "anti_il6", "nM", "neutralising anti-IL-6 antibody (sequesters the ligand, e.g. siltuximab)"
    ),
    InputSpec("sgp130fc", "nM", "sgp130Fc (blocks IL-6/sIL-6R trans-signalling only)"),
    InputSpec("hyper_il6", "ng/mL", "Hyper-IL-6 (IL-6 fused to sIL-6R: gp130 without IL-6R)"),
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

_REVIEW_ACCOUNT = {
    "tki_action": "il6_production",
    "nfkb_activation": "akt_il6r",
    "adaptation": "angiogenic_escape",
}

#: Named mechanism variants: the hypotheses to compare (components not named keep
#: the defaults of :class:`RCCCircuit`).
VARIANTS: dict[str, dict[str, str]] = {
    "main": {},
    "socs3_il6_loop": {"socs3_induction": "il6_loop"},
    "socs3_stat1": {"socs3_induction": "stat1"},
    "socs3_both": {"socs3_induction": "both"},
    "socs3_neither": {"socs3_induction": "neither"},
    "il6r_membrane": {"il6_receptor": "membrane"},
    "il6r_soluble": {"il6_receptor": "soluble"},
    "tki_akt_direct": {"tki_action": "akt_direct"},
    "review": dict(_REVIEW_ACCOUNT),
    "review_socs3_stat1": {**_REVIEW_ACCOUNT, "socs3_induction": "stat1"},
    "review_socs3_both": {**_REVIEW_ACCOUNT, "socs3_induction": "both"},
    "ifn_socs1": {"ifn_desensitisation": "socs1"},
    "ifn_usp18": {"ifn_desensitisation": "usp18"},
    "ifn_socs3_socs1_usp18": {"ifn_desensitisation": "socs3_socs1_usp18"},
}

#: What each named variant claims, with the sources of its edges (README, reports).
VARIANT_NOTES: dict[str, str] = {
    "main": "IFN -> IL-6 -> IL-6R (membrane and soluble) -> STAT3 -> SOCS3 -| IFNAR; TKIs "
    "-> NF-kB -> IL-6 (route assumed); IL-6R reaches NF-kB only through AKT",
    "socs3_il6_loop": "the same as main (SOCS3 induced through the IL-6 loop only)",
    "socs3_stat1": "SOCS3 induced by pSTAT1 directly, not through the IL-6 loop",
    "socs3_both": "SOCS3 induced by pSTAT1 and through the IL-6 loop",
    "socs3_neither": "SOCS3 not induced by signalling (basal SOCS3 only)",
    "il6r_membrane": "classic signalling through membrane IL-6R only",
    "il6r_soluble": "trans-signalling through soluble IL-6R only (gp80 undetectable at the "
    "surface of RCC lines, PMID 15252833)",
    "tki_akt_direct": "TKIs activate AKT directly, IL-6 independently",
    "review": "the review's account (" + REVIEW + "): TKIs raise IL-6 production by a route "
    "the data do not name; IL-6R -> STAT3, AKT/mTOR and NF-kB -> HIF-2a/VEGF, so "
    "tocilizumab abolishes the TKI effects on them; an IL-6/STAT3-driven angiogenic escape "
    "builds over days (the day-21 CD31 rebound read as TKI resistance)",
    "review_socs3_stat1": "the review's TKI route with SOCS3 induced by pSTAT1 only",
    "review_socs3_both": "the review's TKI route with SOCS3 induced by pSTAT1 and pSTAT3",
    "ifn_socs1": "IFN desensitisation by SOCS1 instead of SOCS3 (SOCS1 and SOCS3 inhibit IFN "
    "JAK-STAT signalling, " + REVIEW + ", ref 45)",
    "ifn_usp18": "IFN desensitisation by USP18 instead of SOCS3 (USP18 blocks JAK1 at IFNAR2, "
    "doi:10.1038/sj.emboj.7601149; long-lasting refractoriness, doi:10.1128/MCB.00224-09)",
    "ifn_socs3_socs1_usp18": "IFN desensitised jointly by SOCS3, SOCS1 and USP18",
}


def _hill1(x, k):
    return x / (x + k)


#: Rate (1/h) at which the recorded proliferative drive follows the current drive
#: during pre-equilibration; it is frozen once treatment starts.
K_GROWTH_REF = 1.0


@dataclass(frozen=True)
class RCCCircuit(ODEModel):
    """The circuit with one mechanism variant. Build by name with :meth:`variant`.

    The equations are written once, in :meth:`rates` and :meth:`observable_values`,
    over a math namespace (``jax.numpy`` for simulation, ``sympy`` for SBML export).
    Variants are distinct values (they compare and hash by their components), but the
    equations read the variant only through the switch parameters, so every variant
    runs the one compiled program of :attr:`program`.
    """

    socs3_induction: str = "il6_loop"
    il6_receptor: str = "both"
    tki_action: str = "nfkb_il6"
    nfkb_activation: str = "akt"
    ifn_desensitisation: str = "socs3"
    adaptation: str = "none"

    name: ClassVar[str] = "rcc_circuit"
    states: ClassVar[tuple[str, ...]] = STATES
    parameters: ClassVar[tuple[ParameterSpec, ...]] = PARAMETERS
    inputs: ClassVar[tuple[InputSpec, ...]] = INPUTS
    observables: ClassVar[tuple[ObservableSpec, ...]] = OBSERVABLES
    cell_lines: ClassVar[tuple[CellLine, ...]] = CELL_LINES
    accumulator_states: ClassVar[tuple[str, ...]] = ("log_growth",)
    nonnegative_states: ClassVar[tuple[str, ...]] = STATES[:-2]  # not log_growth, growth_ref
    #: Growth is counted against untreated cells of the same line in the same setting.
    reference_inputs: ClassVar[tuple[str, ...] | None] = ("xenograft",)

    def __post_init__(self) -> None:
        problems = [
            f"{component} {getattr(self, component)!r} is unknown; valid: {choices(valid)}"
            for component, valid in COMPONENTS.items()
            if getattr(self, component) not in valid
        ]
        if problems:
            raise ModelSpecError("; ".join(problems))

    @classmethod
    def variant(cls, name: str = "main", **components: str) -> RCCCircuit:
        """The named variant (see :data:`VARIANTS`), optionally with components overridden."""
        if name not in VARIANTS:
            raise ModelSpecError(f"unknown variant {name!r}; valid: {choices(VARIANTS)}")
        unknown = sorted(set(components) - set(COMPONENTS))
        if unknown:
            raise ModelSpecError(
                f"unknown variant components {unknown}; valid: {choices(COMPONENTS)}"
            )
        return cls(**{**VARIANTS[name], **components})

    @property
    def components(self) -> dict[str, str]:
        """The variant's choice for every component."""
        return {c: getattr(self, c) for c in COMPONENTS}

    @property
    def variant_name(self) -> str:
        return ",".join(f"{c}={v}" for c, v in self.components.items())

    @property
    def program(self) -> RCCCircuit:
        """The instance whose equations are compiled: one for every variant (the variant
        is in the switch parameters, see :meth:`switches`)."""
        return _PROGRAM

    # ------------------------------------------------------------------ switches
    def switches(self) -> dict[str, float]:
        """Values of the mechanism switches for this variant."""
        out: dict[str, float] = {}
        for component, choice in self.components.items():
            out.update(SWITCH_VALUES[component][choice])
        return out

    def default_params(self, cell_line: str | None = None) -> np.ndarray:
        values = super().default_params(cell_line)
        for name, value in self.switches().items():
            values[self.index("parameters", name)] = value
        return values

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

    @staticmethod
    def _gp130_drive(s, p, u):
        """Drive of the active IL-6 receptor complex (before SOCS3 inhibition): IL-6 left
        free by a neutralising antibody, on membrane IL-6R (classic) and soluble IL-6R
        (trans, blocked by sgp130Fc) left free by tocilizumab and the IL-6R siRNA; plus
        Hyper-IL-6, which needs no IL-6R (blocked by sgp130Fc, not by tocilizumab)."""
        ligand = (s["il6"] + s["il6_exo"]) * (1.0 - _hill1(u["anti_il6"], p["anti_il6_kd"]))
        occupancy = _hill1(ligand, p["il6_ec50"])
        free = (1.0 - _hill1(u["tocilizumab"], p["tcz_kd"])) * (1.0 - p["kd_il6r"] * u["si_il6r"])
        trans_free = 1.0 - _hill1(u["sgp130fc"], p["sgp130_ic50"])
        classic = p["switch_il6r_membrane"] * p["mil6r"]
        trans = p["switch_il6r_soluble"] * p["sil6r"] * trans_free
        hyper = _hill1(u["hyper_il6"], p["hyper_il6_ec50"]) * trans_free
        return occupancy * free * (classic + trans) + hyper

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
        stress, tox, vegfr_free, _ = self._tki(p, u)
        r = {}
        ifn_signal = _hill1(u["ifn_alpha"], p["ifn_ec50"]) + p["ifnar_tonic"]
        ifnar_cap = 1.0 - p["kd_ifnar"] * u["si_ifnar"]
        desensitisation = (
            1.0
            + p["switch_ifnar_socs3"] * s["socs3"] / p["socs3_k_ifnar"]
            + p["switch_ifnar_socs1"] * s["socs1_mrna"] / p["socs1_k_ifnar"]
            + p["switch_ifnar_usp18"] * s["usp18"] / p["usp18_k_ifnar"]
        )
        r["ifnar"] = (
            p["k_ifnar_act"] * ifn_signal * ifnar_cap * (1.0 - s["ifnar"]) / desensitisation
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
            + p["switch_tki_il6"] * p["w_tki_il6"] * stress
        ) * (1.0 - p["kd_il6"] * u["si_il6"])
        r["il6_mrna"] = p["k_il6_mrna_deg"] * (il6_drive - s["il6_mrna"])
        r["il6"] = p["k_il6_sec"] * s["il6_mrna"] - p["k_il6_clear"] * s["il6"]
        r["il6_exo"] = -p["k_il6_clear"] * s["il6_exo"]
        r["il6r"] = (
            p["k_il6r_act"]
            * self._gp130_drive(s, p, u)
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
            + p["switch_socs3_by_stat1"] * p["w_stat1_socs3"] * s["pstat1"]
            + p["switch_socs3_by_stat3"] * p["w_stat3_socs3"] * s["pstat3"]
        ) * (1.0 - p["kd_socs3"] * u["si_socs3"]) + u["socs3_overexpression"] * p["socs3_oe_level"]
        r["socs3_mrna"] = p["k_socs3_mrna_deg"] * (socs3_drive - s["socs3_mrna"])
        r["socs3"] = p["k_socs3_deg"] * (s["socs3_mrna"] - s["socs3"])
        nfkb_drive = (
            p["nfkb_tonic"]
            + p["switch_tki_nfkb"] * p["w_tki_nfkb"] * stress
            + p["w_akt_nfkb"] * s["akt"]
            + p["switch_il6r_nfkb"] * p["w_il6r_nfkb"] * s["il6r"]
        )
        r["nfkb"] = p["k_nfkb_act"] * nfkb_drive * (1.0 - s["nfkb"]) - p["k_nfkb_off"] * s["nfkb"]
        akt_drive = (
            p["akt_tonic"]
            + p["w_il6r_akt"] * s["il6r"]
            + p["switch_tki_akt"] * p["w_tki_akt"] * stress
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
        r["usp18"] = p["k_usp18"] * (1.0 + p["w_stat1_usp18"] * s["pstat1"] - s["usp18"])
        # VEGFR block is bypassed by the adaptive escape (alternative angiogenic signals)
        blocked = 1.0 - vegfr_free
        vegfr_effective = vegfr_free + s["escape"] * blocked
        angiogenesis = (
            2.0 * _hill1(s["vegf"] / (1.0 + p["sulf2"]), p["vegf_k_angio"]) * vegfr_effective
        )
        r["vessels"] = p["k_vessel"] * (angiogenesis - s["vessels"])
        escape_drive = p["switch_escape"] * p["w_escape"] * s["pstat3"] * blocked
        r["escape"] = p["k_escape"] * (escape_drive * (1.0 - s["escape"]) - s["escape"])
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

    def anchor(self, y, y_ref, params, inputs):
        """The basal state with the growth reference of the untreated cells (``y_ref``,
        the basal state under :attr:`reference_inputs` only)."""
        i = self.index("states", "growth_ref")
        return y.at[i].set(y_ref[i])

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
        g["escape"] = 0.0
        g["log_growth"] = 0.0
        g["growth_ref"] = self._growth_drive(g, p, u, jnp)
        ref = p["k_stat1_p"]
        return jnp.stack([jnp.asarray(g[name], dtype=ref.dtype) for name in self.states])


#: The instance every variant compiles to (see :attr:`RCCCircuit.program`).
_PROGRAM = RCCCircuit()


def load_variant(name: str = "main") -> RCCCircuit:
    """The circuit with the named mechanism variant."""
    return RCCCircuit.variant(name)


__all__ = [
    "ADAPTATION",
    "CELL_LINES",
    "COMPONENTS",
    "IFN_DESENSITISATION",
    "IL6_RECEPTOR",
    "INPUTS",
    "NFKB_ACTIVATION",
    "OBSERVABLES",
    "PARAMETERS",
    "PARAMETER_TABLE",
    "PARAMETER_TABLE_PATH",
    "RCCCircuit",
    "SOCS3_INDUCTION",
    "STATES",
    "SWITCHES",
    "SWITCH_VALUES",
    "TKIS",
    "TKI_ACTION",
    "VARIANTS",
    "VARIANT_NOTES",
    "load_variant",
]
