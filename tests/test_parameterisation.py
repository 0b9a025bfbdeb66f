"""The typed parameterisation: one transform and one cell-line factor rule, used by
the fit and by predictions alike (issue 14, item 4).

The rule: an estimated log-scale parameter that is not cell-line-specific keeps the
model's cell-line factor; a cell-line-specific one is set by the hierarchy alone (no
factor); logit and lin parameters get no factor. ``predict`` once multiplied every
estimated parameter of a line without data by the line's factor, so 786-O-SunR's
``il6_tx_basal`` (cell-line-specific, factor 3 in the model's defaults) came out three
times the population value the hierarchy gives it.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from il6rcc.inference import EvidenceData, Sites, build_priors, parameter_rows
from il6rcc.jobs import line_parameter_rows
from il6rcc.models import load_model

ESTIMATE = ["il6_tx_basal", "hif_basal", "w_stat3_il6"]
HIER = ["il6_tx_basal"]
FITTED = ("786-O", "ACHN")


@pytest.fixture(scope="module")
def circuit():
    model = load_model("rcc_circuit", "main")
    return model, build_priors(model, ESTIMATE, HIER)


def _draws(param, rng, n=5):
    theta = np.exp(rng.normal(size=(n, len(ESTIMATE))))
    tau = np.abs(rng.normal(size=(n, 1)))
    theta_cell = np.exp(rng.normal(size=(n, len(FITTED), 1)))
    return {"theta": theta, "tau": tau, "theta_cell": theta_cell}


def _model_rows(model, param, draws, line, z_line):
    """The fit's own rows of ``line`` (as if it were fitted, with its z_cell = z_line)."""
    fields = dict.fromkeys(EvidenceData._fields)
    fields.update(
        parameterisation=param,
        base_rows=model.default_params(line)[None, :],
        row_factor=param.factors([line]),
    )
    data = EvidenceData(**fields)
    u = param.to_unconstrained(draws["theta"])
    rows = []
    for d in range(u.shape[0]):
        sites = Sites(
            z=jnp.asarray((u[d] - param.loc) / param.sd),
            log_tau=jnp.log(jnp.asarray(draws["tau"][d])),
            z_cell=jnp.asarray(z_line[d])[None, :],
            z_dose=jnp.zeros(0),
            log_sigma=jnp.zeros(0),
            blot_scale=jnp.zeros(0),
        )
        rows.append(np.asarray(parameter_rows(data, sites))[0])
    return np.array(rows)


def test_factor_rule(circuit):
    model, param = circuit
    factors = param.factors(["786-O-SunR"])[0]
    # il6_tx_basal: cell-line-specific, no factor; hif_basal: log scale, shared, the
    # model's factor 3 for the 786-O lineage; w_stat3_il6: no factor in that line
    np.testing.assert_array_equal(factors, [1.0, 3.0, 1.0])
    assert model.cell_line("786-O-SunR").factors["il6_tx_basal"] == 3.0


def test_a_line_without_data_is_predicted_as_the_model_builds_it(circuit, rng):
    model, param = circuit
    draws = _draws(param, rng)
    line = "786-O-SunR"  # not among the fitted lines
    for z_line in (np.zeros((5, 1)), rng.normal(size=(5, 1))):
        rows = line_parameter_rows(param, model, FITTED, draws, line, z_line)
        np.testing.assert_allclose(rows, _model_rows(model, param, draws, line, z_line), rtol=1e-12)
    # at z = 0 the line sits at the population level: il6_tx_basal is theta itself (the
    # old predict multiplied it by 786-O-SunR's factor 3)
    rows = line_parameter_rows(param, model, FITTED, draws, line, np.zeros((5, 1)))
    i = model.index("parameters", "il6_tx_basal")
    np.testing.assert_allclose(rows[:, i], draws["theta"][:, 0], rtol=1e-12)
    j = model.index("parameters", "hif_basal")
    np.testing.assert_allclose(rows[:, j], 3.0 * draws["theta"][:, 1], rtol=1e-12)
    # parameters not estimated keep the line's defaults (its factors included)
    k = model.index("parameters", "w_stat1_il6")
    np.testing.assert_allclose(rows[:, k], model.default_params(line)[k])


def test_a_fitted_line_takes_its_own_posterior_values(circuit, rng):
    model, param = circuit
    draws = _draws(param, rng)
    rows = line_parameter_rows(param, model, FITTED, draws, "ACHN")
    i = model.index("parameters", "il6_tx_basal")
    np.testing.assert_allclose(rows[:, i], draws["theta_cell"][:, 1, 0], rtol=1e-12)
    # il6_tx_basal is on the log scale: u_c = log theta_c = log theta + tau z_c
    z_cell = (np.log(draws["theta_cell"][:, 1]) - np.log(draws["theta"][:, :1])) / draws["tau"]
    np.testing.assert_allclose(rows, _model_rows(model, param, draws, "ACHN", z_cell), rtol=1e-10)


def test_transforms_round_trip(circuit):
    _, param = circuit
    theta = np.array([[0.3, 2.0, 5.0]])
    np.testing.assert_allclose(np.asarray(param.to_natural(param.to_unconstrained(theta))), theta)
