"""The tiny job's model (x' = a (1 + u) - k x) counting how often its vector field is
traced: a config loads it with ``model: {name: tests/_counted_gene.py:CountedGene}``
(tests/test_exported.py)."""

from il6rcc.models import ODEModel
from il6rcc.models.examples import InducibleGene

#: times the vector field was traced in this process
TRACES = 0


class CountedGene(ODEModel):
    """:class:`~il6rcc.models.examples.InducibleGene` with a trace counter."""

    name = "counted_gene"
    states = InducibleGene.states
    parameters = InducibleGene.parameters
    inputs = InducibleGene.inputs
    observables = InducibleGene.observables

    def vector_field(self, t, y, params, inputs):
        global TRACES
        TRACES += 1
        return params[0] * (1.0 + inputs[0]) - params[1] * y

    def observe(self, t, y, params, inputs):
        return y
