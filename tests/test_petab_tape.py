"""The tape's vector field (petab_io/_tape.py) and its derivatives against the same
equations written in jax.numpy: values, the JVP rule (a product with the Jacobian's
nonzeros), reverse mode through it, and the Jacobian read off the compressed sweep."""

import jax
import jax.numpy as jnp
import numpy as np

from il6rcc.petab_io._tape import build_tape, vector_field

N = 6
STATES = [f"x{i}" for i in range(N)]
PARAMS = ["k0", "k1", "k2"]


def _sym(name):
    return ("sym", name)


def _equations():
    """dx_i = k0 x_{i-1} / (1 + x_{i-1}) - k1 x_i x_{i+2} - exp(-k2 t) x_i (cyclic)."""
    out = []
    for i in range(N):
        prev, skip = STATES[(i - 1) % N], STATES[(i + 2) % N]
        feed = ("div", ("mul", _sym("k0"), _sym(prev)), ("add", ("num", 1.0), _sym(prev)))
        loss = ("mul", _sym("k1"), _sym(STATES[i]), _sym(skip))
        decay = ("mul", ("fn", "exp", ("neg", ("mul", _sym("k2"), ("time",)))), _sym(STATES[i]))
        out.append(("sub", ("sub", feed, loss), decay))
    return out


def _reference(t, y, p):
    prev, skip = jnp.roll(y, 1), jnp.roll(y, -2)
    return p[0] * prev / (1.0 + prev) - p[1] * y * skip - jnp.exp(-p[2] * t) * y


def test_tape_values_and_derivatives():
    tape = build_tape(_equations(), STATES, PARAMS, {})
    f = vector_field(tape)
    rng = np.random.default_rng(7)
    t = jnp.asarray(0.3)
    y = jnp.asarray(rng.uniform(0.2, 2.0, N))
    p = jnp.asarray(rng.uniform(0.5, 1.5, 3))
    w = jnp.asarray(rng.normal(size=N))

    @jax.jit
    def everything(t, y, p):
        value = f(t, y, p)
        jac_y, jac_p = jax.jacfwd(f, argnums=(1, 2))(t, y, p)
        grads = jax.grad(lambda t, y, p: jnp.dot(w, f(t, y, p)), argnums=(0, 1, 2))(t, y, p)
        compressed = tape.compressed_jacobian(t, y, p)[1]
        states_only = tape.compressed_jacobian(t, y, p, states_only=True)[1]
        return value, jac_y, jac_p, grads, compressed, states_only

    value, jac_y, jac_p, grads, compressed, states_only = everything(t, y, p)
    ref_jac_y, ref_jac_p = jax.jacfwd(_reference, argnums=(1, 2))(t, y, p)
    ref_grads = jax.grad(lambda t, y, p: jnp.dot(w, _reference(t, y, p)), argnums=(0, 1, 2))(
        t, y, p
    )
    np.testing.assert_allclose(np.asarray(value), np.asarray(_reference(t, y, p)), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(jac_y), np.asarray(ref_jac_y), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.asarray(jac_p), np.asarray(ref_jac_p), rtol=1e-13, atol=1e-15)
    for got, ref in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-13, atol=1e-15)
    # the state Jacobian's nonzeros, read off the compressed sweep by colour
    pattern = tape.pattern[:, :N]
    rows, cols = np.nonzero(pattern)
    values = np.asarray(compressed)[rows, tape.colour[cols]]
    np.testing.assert_allclose(values, np.asarray(ref_jac_y)[rows, cols], rtol=1e-13)
    # ... and off the sweep over the state columns alone (their own colouring)
    assert states_only.shape[1] == tape.n_state_colours <= tape.n_colours
    values = np.asarray(states_only)[rows, tape.state_colour[cols]]
    np.testing.assert_allclose(values, np.asarray(ref_jac_y)[rows, cols], rtol=1e-13)
    assert np.all(np.asarray(ref_jac_y)[~pattern] == 0.0)
