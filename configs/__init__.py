"""Typed job configs: YAML files composed with ``extends`` and validated at load."""

from ._load import SHIPPED as SHIPPED
from ._load import LoadedConfig as LoadedConfig
from ._load import config_hash as config_hash
from ._load import load_config as load_config
from ._load import model_from_config as model_from_config
from ._load import shipped_config as shipped_config
from ._load import solver_from_config as solver_from_config
from ._schema import RunConfig as RunConfig
from ._sweep import ParameterAxis as ParameterAxis
from ._sweep import ProfileOptions as ProfileOptions
from ._sweep import SbcAxis as SbcAxis
from ._sweep import SweepConfig as SweepConfig
from ._sweep import ValuesAxis as ValuesAxis
from ._sweep import load_sweep_config as load_sweep_config
