"""Column names and vocabularies of the il6rcc data tables (PEtab ``C.py`` style).

Every column of every table is a named constant here, documented with a ``#:`` comment;
code never spells a column name as a bare string. ``SCHEMA.md`` (package data, beside
the tables) describes the same tables for curators, with examples.

Tables (tab-separated, UTF-8, one header line, no comments, no quoting):

* evidence tables ``evidence_*.tsv``: one row per published observation;
* digitisation tables ``digitised*.tsv``: numbers read off figures, merged into the
  evidence as ``value`` rows;
* ``not_encoded.tsv``: statements that cannot become a likelihood row, with the reason;
* ``statements.tsv``: the published statements (review and inventory), for coverage;
* ``assays.tsv``: assays, their noise group, allowed observables and candidate times;
* ``nuisance_priors.tsv``: priors of the unknown doses.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- evidence
#: Unique id of the row across all tables (letters, digits, ``_ . -``).
ROW_ID = "row_id"
#: Study the observation belongs to (lower case, e.g. ``tomita2011``). Disagreeing
#: groups are separate studies and never pooled.
STUDY_ID = "study_id"
#: Comma-separated ids of the published statements (``statements.tsv``) the row
#: encodes; the first one is the row's primary statement (rows expanded from one
#: sentence share it).
STATEMENT_IDS = "statement_ids"
#: Where it is published: ``doi:10....``, ``PMC<digits>``, ``PMID:<digits>`` or
#: ``url:https://...``, then the section, figure or "abstract".
SOURCE = "source"
#: Kind of evidence: one of :data:`KINDS`.
KIND = "kind"
#: Model observable read out (``il6rcc.models`` observable id, e.g. ``socs3_mrna``).
OBSERVABLE_ID = "observable_id"
#: Assay (``assays.tsv``): sets the noise group and the candidate times.
ASSAY = "assay"
#: Cell line (model name or alias). ``rank`` rows over cell lines give tiers here:
#: ``786-O > Caki-1, TUHR3TKB > ACHN`` (``>`` between tiers, ``,`` within a tier).
CELL_LINE = "cell_line"
#: Cell line of the compared quantity when it differs from :data:`CELL_LINE` (e.g. a
#: resistant subline against its parent); empty otherwise.
CONTROL_CELL_LINE = "control_cell_line"
#: Perturbations shared by every condition of the row (``xenograft=on``,
#: ``ifn_alpha=unknown``), or ``none``.
BACKGROUND = "background"
#: The treatment on top of the background: ``none`` or ``name=dose; name=dose``.
#: ``rank`` rows over conditions give tiers here, as for :data:`CELL_LINE`.
CONDITION = "condition"
#: The compared condition on top of the background (``none`` = background alone);
#: empty = no within-line comparison (an absolute value, or levels across lines).
CONTROL = "control"
#: Dose as stated by the source when it is not a model input value (in-vivo
#: regimens); free text, never parsed.
STATED_DOSE = "stated_dose"
#: Hours after treatment start: a number, ``unknown`` (the assay's candidate grid) or
#: stated candidates ``1|2|24`` (equal weights).
TIME_H = "time_h"
#: Hours at which the control is read when it differs from :data:`TIME_H` (e.g. the
#: same tumours at an earlier day); empty otherwise.
CONTROL_TIME_H = "control_time_h"
#: ``up`` or ``down`` for ``sign`` and ``interaction`` rows, ``none`` otherwise.
DIRECTION = "direction"
#: Measured value (``value`` rows only), > 0.
VALUE = "value"
#: Unit of :data:`VALUE`: the observable's unit (or one convertible to it), ``fold``
#: or ``%`` for a ratio to the control, ``a.u.`` with a :data:`SCALE_GROUP`.
VALUE_UNIT = "value_unit"
#: Spread of the value, in :data:`VALUE_UNIT`; empty when not reported.
SPREAD = "spread"
#: Meaning of :data:`SPREAD`: one of :data:`SPREAD_TYPES`; empty when no spread.
SPREAD_TYPE = "spread_type"
#: Number of replicates (animals, wells) behind the value; empty when not reported.
N = "n"
#: Significance as stated: one of :data:`SIGNIFICANCE_LEVELS`.
SIGNIFICANCE = "significance"
#: p value as stated: ``0.04``, ``<0.01``; empty when none is given.
P_VALUE = "p_value"
#: Name of the unknown per-blot (per-plate) scale of an absolute value of a relative
#: observable (western densitometry); empty otherwise.
SCALE_GROUP = "scale_group"
#: Verbatim, short (at most :data:`MAX_QUOTE_CHARS` characters) quote from the source
#: supporting the row; ``...`` marks omissions. It is a quotation, not our wording.
QUOTE = "quote"
#: Curator's notes: interpretation, caveats, disagreements with other rows.
NOTES = "notes"

EVIDENCE_COLUMNS: tuple[str, ...] = (
    ROW_ID,
    STUDY_ID,
    STATEMENT_IDS,
    SOURCE,
    KIND,
    OBSERVABLE_ID,
    ASSAY,
    CELL_LINE,
    CONTROL_CELL_LINE,
    BACKGROUND,
    CONDITION,
    CONTROL,
    TIME_H,
    CONTROL_TIME_H,
    DIRECTION,
    VALUE,
    VALUE_UNIT,
    SPREAD,
    SPREAD_TYPE,
    N,
    SIGNIFICANCE,
    P_VALUE,
    SCALE_GROUP,
    STATED_DOSE,
    QUOTE,
    NOTES,
)
#: Evidence columns that must not be empty.
EVIDENCE_REQUIRED: tuple[str, ...] = (
    ROW_ID,
    STUDY_ID,
    SOURCE,
    KIND,
    OBSERVABLE_ID,
    ASSAY,
    CELL_LINE,
    BACKGROUND,
    CONDITION,
    TIME_H,
    DIRECTION,
    SIGNIFICANCE,
    QUOTE,
)

# ----------------------------------------------------------------------------- digitised
#: Figure the numbers were read from (e.g. ``Fig. 3``).
FIGURE = "figure"
#: Panel of the figure (e.g. ``B``); ``-`` when the figure has none.
PANEL = "panel"
#: ``linear`` or ``log`` (the value axis).
AXIS_SCALE = "axis_scale"
#: Two calibration points of the value axis, ``<pixel>=<value>; <pixel>=<value>``.
AXIS_CALIBRATION = "axis_calibration"
#: Pixel coordinate of the value on the value axis (optional: the value is then
#: computed from the calibration); empty when :data:`VALUE` is given directly.
VALUE_PX = "value_px"
#: Pixel coordinate of the end of the error bar (optional, as :data:`VALUE_PX`).
SPREAD_PX = "spread_px"
#: What the error bars mean: one of :data:`ERROR_BARS`.
ERROR_BARS = "error_bars"
#: Who digitised (a person, or a named script).
DIGITISED_BY = "digitised_by"
#: Tool and version used (e.g. ``WebPlotDigitizer 4.6``).
TOOL = "tool"
#: Date of digitisation, ``YYYY-MM-DD``.
DIGITISED_ON = "digitised_on"

DIGITISED_COLUMNS: tuple[str, ...] = (
    ROW_ID,
    STUDY_ID,
    STATEMENT_IDS,
    SOURCE,
    FIGURE,
    PANEL,
    OBSERVABLE_ID,
    ASSAY,
    CELL_LINE,
    BACKGROUND,
    CONDITION,
    CONTROL,
    TIME_H,
    CONTROL_TIME_H,
    VALUE,
    VALUE_UNIT,
    SPREAD,
    ERROR_BARS,
    N,
    SIGNIFICANCE,
    P_VALUE,
    SCALE_GROUP,
    STATED_DOSE,
    AXIS_SCALE,
    AXIS_CALIBRATION,
    VALUE_PX,
    SPREAD_PX,
    DIGITISED_BY,
    TOOL,
    DIGITISED_ON,
    NOTES,
)
DIGITISED_REQUIRED: tuple[str, ...] = (
    ROW_ID,
    STUDY_ID,
    SOURCE,
    FIGURE,
    PANEL,
    OBSERVABLE_ID,
    ASSAY,
    CELL_LINE,
    BACKGROUND,
    CONDITION,
    TIME_H,
    VALUE_UNIT,
    ERROR_BARS,
    SIGNIFICANCE,
    AXIS_SCALE,
    AXIS_CALIBRATION,
    DIGITISED_BY,
    TOOL,
    DIGITISED_ON,
)

# ----------------------------------------------------------------------------- not encoded
#: Statement id (``statements.tsv``).
STATEMENT_ID = "statement_id"
#: Why it cannot become a likelihood row: one of :data:`REASON_CODES`.
REASON_CODE = "reason_code"
#: The reason in words.
REASON = "reason"
#: What would make it encodable (a model change, a source to read), or ``-``.
WOULD_NEED = "would_need"

NOT_ENCODED_COLUMNS: tuple[str, ...] = (
    STATEMENT_ID,
    STUDY_ID,
    SOURCE,
    REASON_CODE,
    REASON,
    WOULD_NEED,
    QUOTE,
)
NOT_ENCODED_REQUIRED: tuple[str, ...] = NOT_ENCODED_COLUMNS

# ----------------------------------------------------------------------------- statements
#: Short summary in the curator's words (not a quote).
SUMMARY = "summary"

STATEMENT_COLUMNS: tuple[str, ...] = (STATEMENT_ID, STUDY_ID, SOURCE, SUMMARY)
STATEMENT_REQUIRED: tuple[str, ...] = STATEMENT_COLUMNS

# ----------------------------------------------------------------------------- assays
#: Assay id.
ASSAY_ID = "assay"
#: What the assay is.
DESCRIPTION = "description"
#: Noise group of value rows (one noise parameter per group in the likelihood).
NOISE_GROUP = "noise_group"
#: Comma-separated observables the assay may read, or ``*``.
OBSERVABLES = "observables"
#: Candidate sampling times (hours) when a row's time is ``unknown``, ``|``-separated.
CANDIDATE_TIMES_H = "candidate_times_h"
#: Prior weights of the candidate times, ``|``-separated, or ``uniform``.
TIME_WEIGHTS = "time_weights"
#: Why this grid (source or reason).
TIME_SOURCE = "time_source"
#: Reference horizon t_ref (hours) of an assay whose qualitative contrasts integrate a
#: rate over time (tumour volumes): their probit scale grows as sqrt(1 + (t / t_ref)^2);
#: ``-`` for none.
CONTRAST_HORIZON_H = "contrast_horizon_h"
#: Why that horizon (source or ``assumed: <reason>``); ``-`` when there is none.
CONTRAST_SOURCE = "contrast_source"

ASSAY_COLUMNS: tuple[str, ...] = (
    ASSAY_ID,
    DESCRIPTION,
    NOISE_GROUP,
    OBSERVABLES,
    CANDIDATE_TIMES_H,
    TIME_WEIGHTS,
    TIME_SOURCE,
    CONTRAST_HORIZON_H,
    CONTRAST_SOURCE,
)
ASSAY_REQUIRED: tuple[str, ...] = ASSAY_COLUMNS

# ----------------------------------------------------------------------------- nuisance
#: Model input whose dose is unknown (e.g. ``ifn_alpha``).
PERTURBATION = "perturbation"
#: Label of the unknown (``invivo``, ``low``, or ``-`` for the plain in-vitro unknown).
LABEL = "label"
#: Unit of the prior (the model input's unit).
UNIT = "unit"
#: Prior median, in :data:`UNIT`.
MEDIAN = "median"
#: Prior SD of log10(dose), in decades.
LOG10_SD = "log10_sd"
#: Source of the prior, or ``assumed: <reason>``.
PRIOR_SOURCE = "source"

NUISANCE_COLUMNS: tuple[str, ...] = (PERTURBATION, LABEL, UNIT, MEDIAN, LOG10_SD, PRIOR_SOURCE)
NUISANCE_REQUIRED: tuple[str, ...] = NUISANCE_COLUMNS

# ----------------------------------------------------------------------------- vocabularies
#: Row kinds (the order of ``il6rcc.data.ROW_KINDS``).
KINDS: tuple[str, ...] = ("value", "sign", "rank", "interaction", "not_significant")
#: Directions: the expected sign of the contrast, or ``none``.
DIRECTIONS: tuple[str, ...] = ("up", "down", "none")
#: Stated significance.
SIGNIFICANCE_LEVELS: tuple[str, ...] = ("significant", "not_significant", "not_stated")
#: Spread meanings: standard deviation, standard error of the mean, half-width of a
#: 95% confidence interval.
SPREAD_TYPES: tuple[str, ...] = ("SD", "SEM", "CI95")
#: Error-bar meanings of a digitised figure (``none``: no bars; ``unknown``: bars whose
#: meaning the figure does not say, which then carry no spread).
ERROR_BARS_CHOICES: tuple[str, ...] = (*SPREAD_TYPES, "none", "unknown")
#: Reason codes of ``not_encoded.tsv``.
REASON_CODES: tuple[str, ...] = (
    "no_outcome",
    "outcome_not_accessible",
    "binding_assay",
    "patient_data",
    "clinical_outcome",
    "other_system",
    "not_expressible",
    "not_a_contrast",
    "covered_by_rows",
)
#: Token for "no perturbation" in background / condition / control.
NONE = "none"
#: Token for an unknown dose or time.
UNKNOWN = "unknown"
#: Dose token of on/off perturbations (siRNA, vector, xenograft).
ON = "on"
#: Label that unknown doses in xenograft rows must carry.
INVIVO = "invivo"
#: Value units meaning "ratio to the control".
RATIO_UNITS: tuple[str, ...] = ("fold", "%")
#: Value unit of relative observables read on an unknown scale.
ARBITRARY_UNIT = "a.u."
#: Longest quote accepted (characters): quotes are provenance, not copied text.
MAX_QUOTE_CHARS = 300

__all__ = [name for name in dir() if name.isupper()]
