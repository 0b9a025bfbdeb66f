"""Jobs behind the il6rcc subcommands: simulate, fit, report, compare, predict, design.

One run pipeline writes run folders (:func:`run_fit`, :func:`resume_fit`,
:func:`run_petab_fit`); one reader opens them (:func:`open_run`).
"""

from ._build import build_posterior as build_posterior
from ._build import evidence_problem as evidence_problem
from ._build import use_config_devices as use_config_devices
from ._run_folder import RunFolder as RunFolder
from ._run_folder import open_run as open_run
from ._run_folder import reproduction_rates as reproduction_rates
from .compare import run_compare as run_compare
from .fit import resume_fit as resume_fit
from .fit import run_fit as run_fit
from .fit import run_petab_fit as run_petab_fit
from .predict import line_parameter_rows as line_parameter_rows
from .predict import predict_table as predict_table
from .predict import run_predict as run_predict
from .report import write_report as write_report
