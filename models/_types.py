"""Shape vocabulary shared by the model code (jaxtyping aliases).

Dimension names: ``n_states``, ``n_params``, ``n_inputs``, ``n_observables``,
``n_conditions``, ``n_times``, ``n_basal`` (unique pre-equilibration groups),
``n_rows`` (parameter rows, e.g. one per cell line).
"""

from jaxtyping import Array, Bool, Float, Int

State = Float[Array, " n_states"]
Params = Float[Array, " n_params"]
Inputs = Float[Array, " n_inputs"]
ObservableValues = Float[Array, " n_observables"]
Times = Float[Array, " n_times"]
ParamRows = Float[Array, "n_rows n_params"]
ConditionInputs = Float[Array, "n_conditions n_inputs"]
IndexVector = Int[Array, " n"]
Trajectory = Float[Array, "n_conditions n_times n_states"]
ObservableTrajectory = Float[Array, "n_conditions n_times n_observables"]
SuccessFlags = Bool[Array, " n_conditions"]

__all__ = [
    "ConditionInputs",
    "IndexVector",
    "Inputs",
    "ObservableTrajectory",
    "ObservableValues",
    "ParamRows",
    "Params",
    "State",
    "SuccessFlags",
    "Times",
    "Trajectory",
]
