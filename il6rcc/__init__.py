"""il6rcc: Bayesian inference on the IL-6/SOCS3/JAK-STAT circuit of renal cell carcinoma.

Subpackages: :mod:`il6rcc.models` (ODE models, simulation), :mod:`il6rcc.data`
(evidence tables, lint, arrays), :mod:`il6rcc.inference` (priors, likelihood,
samplers, diagnostics), :mod:`il6rcc.configs` (typed job configs),
:mod:`il6rcc.petab_io` (PEtab/SBML interoperability).

Importing il6rcc has no side effects. Call :func:`il6rcc.runtime.setup` first in a
script or notebook (float64, non-fatal solver errors); the ``il6rcc`` command does.
"""

__version__ = "0.1.0"
