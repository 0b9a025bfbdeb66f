"""The state Jacobian of an SBML model through its reaction network.

A species' derivative is ``sum_r N[i, r] v_r / V_i`` (``N`` the stoichiometry, ``v``
the reaction rates, ``V_i`` the size of the species' compartment; no division for
amounts), and a state driven by a rate rule has the rule's expression ``e_i`` as its
derivative. With the *fluxes* ``w = (v, e)``,

    df/dy = diag(1 / V) N' dw/dy,

where ``N'`` is ``N`` extended by an identity block for the rate-rule states.

Why: a coloured forward sweep needs one tangent column per colour, and columns of
df/dy may share a colour only if no row depends on both. A hub species (a kinase
that binds dozens of partners) makes every species it reacts with depend on every
other, so the columns of df/dy need as many colours as the hub has neighbours:
Chen_MSB2009's 500 states need 144. A rate depends on a few species only (at most
three in Chen's mass-action laws), and the columns of dw/dy need 7 colours. The
product with the constant ``N'`` is a fixed list of terms ``N'[i, r] dw_r/dy_j /
V_i``, each one gather from the compressed dw/dy, summed into the nonzeros of df/dy
by one scatter-add.

The compartment sizes are outputs of the same tape (they may be definitions); the
decomposition is used only where none depends on a state.

Two uses: :meth:`FluxJacobian.values` gives df/dy at the nonzeros the sparse LU
reads (a sweep over the state columns); :meth:`FluxJacobian.jacobian` the dense
Jacobian with respect to (y, p, t) (a sweep over all columns, the quotient rule for
sizes that are parameters), which the vector field's JVP rule multiplies tangents by
(forward sensitivities, ``jax.jacfwd``, and reverse mode through its transpose).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._sbml import SbmlSpec
from ._tape import Tape, build_tape


@dataclass(frozen=True, eq=False)
class FluxJacobian:
    """df/dy at the entries of a fixed pattern, through the fluxes (module docstring).

    Attributes:
        tape: evaluates ``(w, V)``: the ``n_fluxes`` fluxes, then the compartment
            sizes used.
        n_entries: length of the result (the entries of ``pattern | I``, row-major).
        flux: [n_terms] which output of ``tape`` each term differentiates.
        colour: [n_terms] the colour of the term's state column (``tape.state_colour``).
        coefficient: [n_terms] the stoichiometric coefficient (1 for rate rules).
        volume: [n_terms] the output of ``tape`` that divides the term, or
            ``tape``'s number of outputs for none (it reads a 1 appended there).
        entry: [n_terms] the position in the result the term is added to.
        full_row, full_col, full_flux, full_colour, full_coefficient: the same for
            the terms of ``N' dw/d(y, p, t)`` (row and column of df/d(y, p, t); the
            colour is ``tape.colour``'s), before the division by the sizes.
        state_volume: [n_states] the output of ``tape`` that divides each state's
            derivative, or ``tape``'s number of outputs for none.
    """

    tape: Tape
    n_fluxes: int
    n_entries: int
    flux: np.ndarray
    colour: np.ndarray
    coefficient: np.ndarray
    volume: np.ndarray
    entry: np.ndarray
    full_row: np.ndarray
    full_col: np.ndarray
    full_flux: np.ndarray
    full_colour: np.ndarray
    full_coefficient: np.ndarray
    state_volume: np.ndarray

    @property
    def n_colours(self) -> int:
        """Tangent columns of the sweep."""
        return self.tape.n_state_colours

    def values(self, t, y, p):
        """df/dy at the ``n_entries`` entries (0 where no term lands)."""
        outputs, compressed = self.tape.compressed_jacobian(t, y, p, states_only=True)
        divisor = jnp.concatenate([outputs, jnp.ones((1,), dtype=outputs.dtype)])[self.volume]
        terms = compressed[self.flux, self.colour] * self.coefficient / divisor
        return jax.ops.segment_sum(
            terms, self.entry, num_segments=self.n_entries, indices_are_sorted=True
        )

    def jacobian(self, t, y, p, f):
        """df/d(y, p, t) [n_states, n_states + n_params + 1], dense, at ``f`` =
        f(t, y, p): ``(N' dw - f dV) / V`` row by row (the quotient rule; ``dV`` is 0
        for states without a size)."""
        tape = self.tape
        n_cols = tape.pattern.shape[1]
        outputs, compressed = tape.compressed_jacobian(t, y, p)
        terms = self.full_coefficient * compressed[self.full_flux, self.full_colour]
        raw = jnp.zeros((self.state_volume.shape[0], n_cols), dtype=y.dtype)
        raw = raw.at[self.full_row, self.full_col].add(terms)
        sizes = np.arange(self.n_fluxes, tape.outputs.shape[0])
        if sizes.size == 0:
            return raw
        d_size = jnp.where(tape.pattern[sizes], compressed[sizes][:, tape.colour], 0.0)
        d_size = jnp.concatenate([d_size, jnp.zeros((1, n_cols), dtype=y.dtype)])
        size = jnp.concatenate([outputs[sizes], jnp.ones((1,), dtype=y.dtype)])
        which = self.state_volume - self.n_fluxes  # the appended row for none
        return (raw - f[:, None] * d_size[which]) / size[which][:, None]


def flux_jacobian(spec: SbmlSpec, pattern: np.ndarray) -> FluxJacobian | None:
    """The :class:`FluxJacobian` of ``spec`` at the entries of ``pattern | I``
    (row-major; ``pattern`` [n_states, n_states] the structural nonzeros of df/dy), or
    None where the model's derivatives are not of that form: a compartment size that
    depends on a state, or a term outside ``pattern``."""
    n = len(spec.state_ids)
    rate_rules = list(spec.rate_rule_states)
    volume_of = {sid: (None if hosu else comp) for sid, comp, hosu in spec.species_compartment}
    volumes = sorted({volume_of[spec.state_ids[i]] for i, _, _ in spec.stoichiometry} - {None})
    n_rates = len(spec.reaction_ids)
    outputs = [("sym", rid) for rid in spec.reaction_ids]
    outputs += [spec.derivatives[i] for i in rate_rules]
    outputs += [("sym", v) for v in volumes]
    tape = build_tape(outputs, spec.state_ids, spec.parameter_ids, dict(spec.definitions))
    depends = tape.pattern[:, :n]
    n_fluxes = n_rates + len(rate_rules)
    if depends[n_fluxes:].any():
        return None  # a compartment size changes with the state
    volume_index = {v: n_fluxes + k for k, v in enumerate(volumes)}
    none = len(outputs)

    # (row of df/dy, flux, coefficient, divisor) for every term of N'
    products = [
        (i, r, c, volume_index.get(volume_of[spec.state_ids[i]], none))
        for i, r, c in spec.stoichiometry
    ]
    products += [(i, n_rates + k, 1.0, none) for k, i in enumerate(rate_rules)]
    rows, cols = np.nonzero(pattern | np.eye(n, dtype=bool))
    position = np.full((n, n), -1, dtype=np.int64)
    position[rows, cols] = np.arange(rows.size)
    terms = []
    for i, r, c, v in products:
        for j in np.flatnonzero(depends[r]):
            terms.append((position[i, j], r, tape.state_colour[j], c, v))
    terms.sort(key=lambda term: term[0])
    full = [
        (i, j, r, tape.colour[j], c)
        for i, r, c, _ in products
        for j in np.flatnonzero(tape.pattern[r])
    ]
    full_table = np.array(full, dtype=np.float64).reshape(-1, 5)
    state_volume = np.full(n, none, dtype=np.int64)
    for i, _, _, v in products:
        state_volume[i] = v
    table = np.array(terms, dtype=np.float64).reshape(-1, 5)
    entry = table[:, 0].astype(np.int64)
    if (entry < 0).any() or not pattern[rows[entry], cols[entry]].all():
        return None  # a term outside the pattern: the derivatives are not N' w
    return FluxJacobian(
        tape=tape,
        n_fluxes=n_fluxes,
        n_entries=int(rows.size),
        flux=table[:, 1].astype(np.int64),
        colour=table[:, 2].astype(np.int64),
        coefficient=table[:, 3],
        volume=table[:, 4].astype(np.int64),
        entry=entry,
        full_row=full_table[:, 0].astype(np.int64),
        full_col=full_table[:, 1].astype(np.int64),
        full_flux=full_table[:, 2].astype(np.int64),
        full_colour=full_table[:, 3].astype(np.int64),
        full_coefficient=full_table[:, 4],
        state_volume=state_volume,
    )


__all__ = ["FluxJacobian", "flux_jacobian"]
