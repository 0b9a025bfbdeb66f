"""Bayesian inference: priors, hierarchy, evidence likelihood, MAP, NUTS, SVI, diagnostics."""

from ._likelihood import KIND as KIND
from ._likelihood import LikelihoodSettings as LikelihoodSettings
from ._likelihood import reproduced_probability as reproduced_probability
from ._likelihood import row_log_likelihood as row_log_likelihood
from ._likelihood import unit_deltas as unit_deltas
from ._map import MapResult as MapResult
from ._map import laplace_inverse_mass as laplace_inverse_mass
from ._map import map_multistart as map_multistart
from ._model import Problem as Problem
from ._model import make_problem as make_problem
from ._model import model_fn as model_fn
from ._model import prior_fn as prior_fn
from ._model import problem_data as problem_data
from ._model import simulate_problem as simulate_problem
from ._nuts import ChainRunner as ChainRunner
from ._nuts import NutsSettings as NutsSettings
from ._nuts import run_chains as run_chains
from ._priors import PriorSpec as PriorSpec
from ._priors import build_priors as build_priors
from ._priors import prior_table as prior_table
from ._priors import read_prior_table as read_prior_table
from ._recovery import simulated_evidence as simulated_evidence
from ._recovery import standardised_quantities as standardised_quantities
from ._recovery import truth_point as truth_point
