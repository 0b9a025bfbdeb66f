"""ODE models of the IL-6/SOCS3/JAK-STAT circuit, and the machinery to simulate them."""

from ._loading import BUILTIN_MODELS as BUILTIN_MODELS
from ._loading import load_model as load_model
from ._model import CellLine as CellLine
from ._model import Condition as Condition
from ._model import InputSpec as InputSpec
from ._model import ObservableSpec as ObservableSpec
from ._model import ODEModel as ODEModel
from ._model import ParameterSpec as ParameterSpec
from ._model import condition_inputs as condition_inputs
from ._simulate import ConditionBatch as ConditionBatch
from ._simulate import Simulation as Simulation
from ._simulate import basal_state as basal_state
from ._simulate import basal_state_jit as basal_state_jit
from ._simulate import make_batch as make_batch
from ._simulate import simulate as simulate
from ._simulate import simulate_arrays as simulate_arrays
from ._solvers import ADJOINTS as ADJOINTS
from ._solvers import SOLVERS as SOLVERS
from ._solvers import SolverSettings as SolverSettings
from .circuit import VARIANTS as VARIANTS
from .circuit import RCCCircuit as RCCCircuit
