"""The model interface is abstract and every concrete model is final (the equinox
pattern, issue 14 item 5)."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from il6rcc.models import InputSpec, ObservableSpec, ODEModel, ParameterSpec, load_model
from il6rcc.models.examples import InducibleGene


def test_a_concrete_model_cannot_be_subclassed():
    with pytest.raises(
        TypeError, match="InducibleGene, a concrete model: concrete models are final"
    ):

        @dataclass(frozen=True)
        class Tweaked(InducibleGene):
            name: ClassVar[str] = "tweaked"


def test_an_abstract_base_can_be_shared_and_declarations_left_out():
    class Base(ODEModel):  # leaves name and parameters abstract: may be subclassed
        states: ClassVar[tuple[str, ...]] = ("x",)
        observables: ClassVar[tuple[ObservableSpec, ...]] = (ObservableSpec("x", "a.u.", "x"),)

        def vector_field(self, t, y, params, inputs):
            return -params[0] * y

        def observe(self, t, y, params, inputs):
            return y

    @dataclass(frozen=True)
    class Decay(Base):
        name: ClassVar[str] = "decay"
        parameters: ClassVar[tuple[ParameterSpec, ...]] = (ParameterSpec("k", 0.5, "1/h", "k"),)

    model = Decay()
    assert model.inputs == () and model.cell_line_names == ("default",)
    with pytest.raises(TypeError, match="abstract"):
        Base()


def test_every_shipped_model_is_final_and_complete():
    from il6rcc.models import BUILTIN_MODELS

    for name in BUILTIN_MODELS:
        model = load_model(name)
        assert isinstance(model.inputs, tuple) and all(
            isinstance(u, InputSpec) for u in model.inputs
        )
        assert model.parameters and model.states and model.observables
