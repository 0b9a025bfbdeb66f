"""Bayesian inference: one posterior interface, and the methods written once against it.

* :class:`Posterior` (flat unconstrained coordinates, data as an argument) and its
  adapter for ODE models fitted to evidence tables, :class:`EvidencePosterior` (the
  PEtab adapter is :class:`il6rcc.petab_io.PetabPosterior`);
* :class:`Parameterisation`: transforms, priors and cell-line factors of the estimated
  parameters, in one place;
* MAP multi-start (:func:`map_multistart`, BFGS from optimistix), the Laplace
  approximation (:func:`laplace_approximation`), NUTS (:class:`ChainRunner`), SVI
  (:func:`run_svi`), profile likelihoods and posteriors (:func:`profile`), the
  importance check of approximations (:func:`importance_check`),
  diagnostics with gates (:func:`diagnose`) and the run's DataTree
  (:func:`build_datatree`).
"""

from ._diagnostics import Gates as Gates
from ._diagnostics import diagnose as diagnose
from ._diagnostics import summary_table as summary_table
from ._diagnostics import verdict as verdict
from ._evidence import EvidenceData as EvidenceData
from ._evidence import EvidencePosterior as EvidencePosterior
from ._evidence import EvidenceProblem as EvidenceProblem
from ._evidence import Sites as Sites
from ._evidence import inputs_with_doses as inputs_with_doses
from ._evidence import make_evidence_problem as make_evidence_problem
from ._evidence import parameter_rows as parameter_rows
from ._evidence import simulate_conditions as simulate_conditions
from ._evidence import split as split
from ._idata import build_datatree as build_datatree
from ._idata import nuts_sample_stats as nuts_sample_stats
from ._importance import ImportanceCheck as ImportanceCheck
from ._importance import importance_check as importance_check
from ._laplace import FLOOR as FLOOR
from ._laplace import HESSIAN_STEP as HESSIAN_STEP
from ._laplace import FlooredInverse as FlooredInverse
from ._laplace import Laplace as Laplace
from ._laplace import fd_hessian as fd_hessian
from ._laplace import floored_inverse as floored_inverse
from ._laplace import hessian_directions as hessian_directions
from ._laplace import laplace_approximation as laplace_approximation
from ._laplace import sample_gaussian as sample_gaussian
from ._likelihood import KIND as KIND
from ._likelihood import LikelihoodSettings as LikelihoodSettings
from ._likelihood import likelihood_arrays as likelihood_arrays
from ._likelihood import reproduction_probability as reproduction_probability
from ._likelihood import row_log_likelihood as row_log_likelihood
from ._likelihood import row_prediction as row_prediction
from ._likelihood import row_weights as row_weights
from ._likelihood import unit_deltas as unit_deltas
from ._map import BfgsStepper as BfgsStepper
from ._map import MapSettings as MapSettings
from ._map import Minimum as Minimum
from ._map import map_multistart as map_multistart
from ._map import minimise as minimise
from ._map import read_starts_table as read_starts_table
from ._map import starts_table as starts_table
from ._map import walled_value_and_grad as walled_value_and_grad
from ._nuts import ChainRunner as ChainRunner
from ._nuts import NutsSettings as NutsSettings
from ._nuts import arrays_to_state as arrays_to_state
from ._nuts import chain_starts as chain_starts
from ._nuts import run_chains as run_chains
from ._nuts import state_to_arrays as state_to_arrays
from ._parameterisation import Parameterisation as Parameterisation
from ._parameterisation import cell_line_factors as cell_line_factors
from ._parameterisation import make_parameterisation as make_parameterisation
from ._posterior import BIG as BIG
from ._posterior import CompiledPosterior as CompiledPosterior
from ._posterior import DrawLayout as DrawLayout
from ._posterior import Posterior as Posterior
from ._priors import build_priors as build_priors
from ._priors import prior_table as prior_table
from ._priors import read_prior_table as read_prior_table
from ._profile import PROFILE_THRESHOLD as PROFILE_THRESHOLD
from ._profile import Profile as Profile
from ._profile import ProfileSettings as ProfileSettings
from ._profile import ProfileSide as ProfileSide
from ._profile import check_profile_names as check_profile_names
from ._profile import prior_range as prior_range
from ._profile import profile as profile
from ._recovery import simulated_evidence as simulated_evidence
from ._recovery import standardised_quantities as standardised_quantities
from ._recovery import truth_point as truth_point
from ._svi import SviResult as SviResult
from ._svi import SviSettings as SviSettings
from ._svi import run_svi as run_svi
