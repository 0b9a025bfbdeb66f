"""A tiny inference problem with a closed-form model, shared by the inference tests.

Model: x' = a (1 + u) - k x (``InducibleGene``), basal x = a / k, so after the inducer
u is added: x(t) = a (1 + u) / k + (a / k - a (1 + u) / k) exp(-k t).
Evidence rows: a fold-change value (u = 3 vs control at 4 h), a sign (u = 1 above
control at 1 h, unknown time among {1, 4} h for a second sign row), and a
not-significant row (u = 0.05 vs control at 1 h).
"""

import numpy as np

from il6rcc.data import EvidenceArrays
from il6rcc.models import Condition, load_model, make_batch

TIMES = np.array([1.0, 4.0])
CONDITIONS = [
    Condition("ctrl", "default"),
    Condition("u1", "default", {"inducer": 1.0}),
    Condition("u3", "default", {"inducer": 3.0}),
    Condition("u005", "default", {"inducer": 0.05}),
]


def closed_form(a, k, u, t):
    basal = a / k
    target = a * (1 + u) / k
    return target + (basal - target) * np.exp(-k * t)


def tiny_arrays(log_fold=0.9, log_sd=0.2, value_sd_known=True):
    model = load_model("inducible_gene")
    batch = make_batch(model, CONDITIONS)
    n_rows = 4
    # rows: 0 value (u3 vs ctrl at 4 h), 1 sign (u1 > ctrl at 1 h),
    #       2 sign at unknown time {1, 4} h, 3 not significant (u005 vs ctrl at 1 h)
    row_time_index = np.array([[1, 1], [0, 0], [0, 1], [0, 0]])
    row_time_logw = np.array(
        [[0.0, -np.inf], [0.0, -np.inf], [np.log(0.5), np.log(0.5)], [0.0, -np.inf]]
    )
    term_cond = np.array([2, 0, 1, 0, 1, 0, 3, 0])
    term_unit = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    term_weight = np.array([1.0, -1.0] * 4)
    term_time_index = row_time_index[term_unit]
    arrays = EvidenceArrays(
        batch=batch,
        times=TIMES,
        row_ids=("value", "sign", "sign_unknown_time", "ns"),
        row_kind=np.array([0, 1, 1, 4]),
        row_study=("tiny",) * n_rows,
        row_source=("synthetic",) * n_rows,
        row_readout=("x",) * n_rows,
        row_value=np.array([log_fold, np.nan, np.nan, np.nan]),
        row_log_sd=np.array([log_sd if value_sd_known else np.nan, np.nan, np.nan, np.nan]),
        row_noise_group=np.zeros(n_rows, dtype=np.int32),
        row_scale_group=-np.ones(n_rows, dtype=np.int32),
        row_time_index=row_time_index,
        row_time_logw=row_time_logw,
        unit_row=np.arange(4),
        unit_direction=np.array([0, 1, 1, 0]),
        term_unit=term_unit,
        term_cond=term_cond,
        term_obs=np.zeros(8, dtype=np.int32),
        term_weight=term_weight,
        term_time_index=term_time_index,
        noise_groups=("qpcr",),
        scale_groups=(),
        dose_slots=np.zeros((0, 2), dtype=np.int32),
        dose_nuisance=np.zeros(0, dtype=np.int32),
        nuisance_names=(),
        nuisance_log_median=np.zeros(0),
        nuisance_log_sd=np.zeros(0),
        nuisance_sources=(),
    )
    return model, arrays
