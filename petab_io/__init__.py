"""PEtab/SBML interoperability: import PEtab v1 problems, compute their likelihood with
il6rcc's diffrax machinery, and export the RCC circuit as PEtab.

Import::

    problem = load_problem("path/to/problem.yaml")      # checks everything first
    llh, table = make_llh(problem)                       # jitted, differentiable
    value = llh(table.nominal_theta)                     # theta on PEtab scales

Formulas are never evaluated as Python: SBML math goes through libsbml's parser,
PEtab formula strings through the petab library's (``petab.v1.math``), and both
through an explicit whitelist of math node types.

Eight published problems ship with the package (:data:`BENCHMARK_PROBLEMS`,
:func:`problem_path`, reference values in :data:`REFERENCE_LLH`).
"""

from ._cli import export_main as export_main
from ._cli import llh_main as llh_main
from ._cli import synthetic_measurements as synthetic_measurements
from ._export import ExportMeasurement as ExportMeasurement
from ._export import build_sbml as build_sbml
from ._export import export_problem as export_problem
from ._export import model_expressions as model_expressions
from ._fit import LaplaceResult as LaplaceResult
from ._fit import MapResult as MapResult
from ._fit import PetabPosterior as PetabPosterior
from ._fit import Propagated as Propagated
from ._fit import fit_map as fit_map
from ._fit import laplace_approximation as laplace_approximation
from ._fit import negative_log_posterior as negative_log_posterior
from ._fit import propagate as propagate
from ._likelihood import DEFAULT_SOLVER as DEFAULT_SOLVER
from ._likelihood import FORWARD_MAX_PARAMETERS as FORWARD_MAX_PARAMETERS
from ._likelihood import gradient_solver as gradient_solver
from ._likelihood import log_likelihood as log_likelihood
from ._likelihood import make_llh as make_llh
from ._likelihood import make_log_prior as make_log_prior
from ._likelihood import simulation_table as simulation_table
from ._model import SbmlModel as SbmlModel
from ._paths import BENCHMARK_PROBLEMS as BENCHMARK_PROBLEMS
from ._paths import REFERENCE_LLH as REFERENCE_LLH
from ._paths import problem_path as problem_path
from ._problem import Observable as Observable
from ._problem import ParameterTable as ParameterTable
from ._problem import PetabProblem as PetabProblem
from ._problem import load_problem as load_problem
from ._sbml import SbmlSpec as SbmlSpec
from ._sbml import read_sbml as read_sbml
