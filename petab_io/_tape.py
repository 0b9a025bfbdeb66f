"""Vectorised evaluation of many expression trees: the vector field of a large model
as a few hundred array operations instead of one scalar operation per node.

A model with 500 states has some ten thousand nodes in its rate laws; traced node by
node they become as many scalar XLA operations, and compiling them (several times
over, inside an implicit solver and its Jacobian) took minutes (Chen_MSB2009: 97 s
for the vector field alone, 196 s for its Jacobian, on two shared cores). A
:class:`Tape` instead merges common subexpressions, splits n-ary sums and products
into balanced binary trees, gives every node a *level* (one more than its deepest
child) and evaluates each level with one gather and one vectorised operation per
kind of node (all additions of a level at once, all ``exp`` at once, ...). The
number of operations grows with the depth of the expressions, not with their size.

Values live in one flat buffer: constants, then the states, the parameters and the
time, then each level's results. Booleans (relations, ``and``/``or``) are stored as
1.0/0.0.

Derivatives: :meth:`Tape.jacobian` propagates tangents level by level as rows of a
matrix (one row per node, one column per *colour*): columns of the Jacobian that
share no row (no rate law depends on both) share a colour (greedy colouring of the
structural sparsity pattern), so a 500-state model needs a few dozen tangent columns
instead of 500, and every gather moves whole contiguous rows. :func:`vector_field`
wraps the tape in a ``jax.custom_jvp`` whose rule multiplies the tangents by that
Jacobian, so ``jax.jacfwd`` (as the implicit solvers call it) costs one coloured
sweep plus a matrix product, and reverse mode transposes the same product. The BDF
solver reads the Jacobian's nonzeros off the compressed sweep instead
(:meth:`Tape.compressed_jacobian`, ``SbmlModel.jacobian_values``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import PetabError
from ..models import colour_columns
from ._math import Expr

_UNARY = {
    "neg": jnp.negative,
    "exp": jnp.exp,
    "ln": jnp.log,
    "log10": jnp.log10,
    "sqrt": jnp.sqrt,
    "abs": jnp.abs,
    "floor": jnp.floor,
    "ceil": jnp.ceil,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "arcsin": jnp.arcsin,
    "arccos": jnp.arccos,
    "arctan": jnp.arctan,
    "sinh": jnp.sinh,
    "cosh": jnp.cosh,
    "tanh": jnp.tanh,
    "arcsinh": jnp.arcsinh,
    "arccosh": jnp.arccosh,
    "arctanh": jnp.arctanh,
    "sign": jnp.sign,
    "not": lambda a: jnp.where(a != 0.0, 0.0, 1.0),
}


def _truth(x):
    return x != 0.0


_BINARY = {
    "add": jnp.add,
    "mul": jnp.multiply,
    "sub": jnp.subtract,
    "div": jnp.divide,
    "pow": jnp.power,
    "max": jnp.maximum,
    "min": jnp.minimum,
    "logb": lambda base, x: jnp.log(x) / jnp.log(base),
    "lt": lambda a, b: jnp.where(a < b, 1.0, 0.0),
    "le": lambda a, b: jnp.where(a <= b, 1.0, 0.0),
    "gt": lambda a, b: jnp.where(a > b, 1.0, 0.0),
    "ge": lambda a, b: jnp.where(a >= b, 1.0, 0.0),
    "eq": lambda a, b: jnp.where(a == b, 1.0, 0.0),
    "ne": lambda a, b: jnp.where(a != b, 1.0, 0.0),
    "and": lambda a, b: jnp.where(_truth(a) & _truth(b), 1.0, 0.0),
    "or": lambda a, b: jnp.where(_truth(a) | _truth(b), 1.0, 0.0),
    "xor": lambda a, b: jnp.where(_truth(a) ^ _truth(b), 1.0, 0.0),
}

_FOLD_UNARY = {
    "neg": lambda a: -a,
    "exp": math.exp,
    "ln": math.log,
    "log10": math.log10,
    "sqrt": math.sqrt,
    "abs": abs,
}
_FOLD_BINARY = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "sub": lambda a, b: a - b,
    "div": lambda a, b: a / b if b != 0 else math.nan,
}


@dataclass(frozen=True)
class _Group:
    """One vectorised operation of a level: ``kind`` (``unary``, ``binary``, ``powc``,
    ``select``), the operation's name, and the buffer positions of its operands."""

    kind: str
    op: str
    a: np.ndarray
    b: np.ndarray | None = None
    c: np.ndarray | None = None
    exponent: np.ndarray | None = None


class _Builder:
    def __init__(self, leaves: Mapping[str, tuple[str, int]], definitions: Mapping[str, Expr]):
        self.leaves = leaves
        self.definitions = definitions
        self.nodes: list[tuple] = []  # (kind, op, children, payload)
        self.memo: dict[tuple, int] = {}
        self.by_name: dict[str, int] = {}
        self.active: set[str] = set()

    def add(self, key: tuple) -> int:
        if key not in self.memo:
            self.memo[key] = len(self.nodes)
            self.nodes.append(key)
        return self.memo[key]

    def const(self, value: float) -> int:
        value = float(value)
        return self.add(("const", "nan" if value != value else value))

    def value_of(self, node: int) -> float | None:
        key = self.nodes[node]
        if key[0] != "const":
            return None
        return math.nan if key[1] == "nan" else key[1]

    def unary(self, op: str, a: int) -> int:
        va = self.value_of(a)
        if va is not None and op in _FOLD_UNARY:
            try:
                return self.const(_FOLD_UNARY[op](va))
            except (ValueError, OverflowError):
                pass
        return self.add(("unary", op, a))

    def binary(self, op: str, a: int, b: int) -> int:
        va, vb = self.value_of(a), self.value_of(b)
        if va is not None and vb is not None and op in _FOLD_BINARY:
            return self.const(_FOLD_BINARY[op](va, vb))
        if op == "mul" and (va == 1.0 or vb == 1.0):
            return b if va == 1.0 else a
        if op == "add" and (va == 0.0 or vb == 0.0):
            return b if va == 0.0 else a
        if op in ("add", "mul", "max", "min", "and", "or", "eq", "ne") and a > b:
            a, b = b, a  # commutative: one node for a+b and b+a
        return self.add(("binary", op, a, b))

    def reduce(self, op: str, items: list[int]) -> int:
        """Balanced binary tree over an n-ary operation."""
        while len(items) > 1:
            pairs = [self.binary(op, items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
            if len(items) % 2:
                pairs.append(items[-1])
            items = pairs
        return items[0]

    def symbol(self, name: str) -> int:
        if name in self.by_name:
            return self.by_name[name]
        if name in self.leaves:
            kind, index = self.leaves[name]
            node = self.add((kind, index))
        elif name in self.definitions:
            if name in self.active:
                raise PetabError(f"{name!r} is defined in terms of itself")
            self.active.add(name)
            node = self.expr(self.definitions[name])
            self.active.discard(name)
        else:
            raise PetabError(f"unknown identifier {name!r} in the model's equations")
        self.by_name[name] = node
        return node

    def expr(self, e: Expr) -> int:  # noqa: C901 - one branch per node type
        tag = e[0]
        if tag == "num":
            return self.const(e[1])
        if tag == "bool":
            return self.const(1.0 if e[1] else 0.0)
        if tag == "sym":
            return self.symbol(e[1])
        if tag == "time":
            return self.add(("time", 0))
        if tag in ("add", "mul", "and", "or", "xor"):
            return self.reduce(tag, [self.expr(x) for x in e[1:]])
        if tag in ("sub", "div"):
            return self.binary(tag, self.expr(e[1]), self.expr(e[2]))
        if tag == "neg":
            return self.unary("neg", self.expr(e[1]))
        if tag == "not":
            return self.unary("not", self.expr(e[1]))
        if tag == "pow":
            base = self.expr(e[1])
            if e[2][0] == "num":
                return self.add(("powc", float(e[2][1]), base))
            return self.binary("pow", base, self.expr(e[2]))
        if tag == "log":
            x = self.expr(e[2])
            if e[1] == ("num", 10.0):
                return self.unary("log10", x)
            return self.binary("logb", self.expr(e[1]), x)
        if tag == "fn":
            name, args = e[1], [self.expr(x) for x in e[2:]]
            if name in ("max", "min"):
                return self.reduce(name, args)
            if name not in _UNARY:
                raise PetabError(f"internal: function {name!r} has no vectorised form")
            return self.unary(name, args[0])
        if tag == "rel":
            return self.binary(e[1], self.expr(e[2]), self.expr(e[3]))
        if tag == "piecewise":
            pieces = list(e[1:])
            out = self.expr(pieces.pop()) if len(pieces) % 2 == 1 else self.const(math.nan)
            for i in range(len(pieces) - 2, -1, -2):
                out = self.add(("select", self.expr(pieces[i + 1]), self.expr(pieces[i]), out))
            return out
        raise PetabError(f"internal: unknown expression node {tag!r}")


@dataclass(frozen=True, eq=False)
class Tape:
    """A compiled evaluation plan (see the module docstring). Call it as
    ``tape(t, y, p)``: [n_outputs] values of the expressions it was built for.

    ``pattern`` [n_outputs, n_states + n_params + 1] is the structural sparsity of
    the Jacobian with respect to (y, p, t); ``colour`` [n_states + n_params + 1] the
    colour of each of its columns (``n_colours`` in all); ``state_colour``
    [n_states] a colouring of the state columns alone (``n_state_colours``), for
    sweeps that need df/dy only.
    """

    constants: np.ndarray
    n_states: int
    n_params: int
    levels: tuple[tuple[_Group, ...], ...]
    outputs: np.ndarray
    n_nodes: int
    pattern: np.ndarray
    colour: np.ndarray
    n_colours: int
    state_colour: np.ndarray
    n_state_colours: int

    def _leaves(self, t, y, p):
        dtype = y.dtype
        return jnp.concatenate(
            [
                jnp.asarray(self.constants, dtype=dtype),
                y,
                p.astype(dtype),
                jnp.reshape(jnp.asarray(t, dtype=dtype), (1,)),
            ]
        )

    def __call__(self, t, y, p):
        # One preallocated buffer, each level written into its slice in place
        # (concatenating a growing buffer copied it once per level).
        leaves = self._leaves(t, y, p)
        buf = jnp.zeros(self.n_nodes_total, dtype=y.dtype)
        buf = jax.lax.dynamic_update_slice(buf, leaves, (0,))
        offset = leaves.shape[0]
        for level in self.levels:
            values = jnp.concatenate([_apply(g, buf) for g in level])
            buf = jax.lax.dynamic_update_slice(buf, values, (offset,))
            offset += values.shape[0]
        return buf[self.outputs]

    def jacobian(self, t, y, p):
        """``(f [n_out], J [n_out, n_states + n_params + 1])``: the values and the
        Jacobian with respect to (y, p, t), by one coloured forward sweep."""
        value, compressed = self.compressed_jacobian(t, y, p)
        jac = jnp.where(self.pattern, compressed[:, self.colour], 0.0)
        return value, jac

    def compressed_jacobian(self, t, y, p, states_only: bool = False):
        """``(f [n_out], C [n_out, n_colours])``: the values and the compressed
        Jacobian (column ``c``: the sum of the Jacobian's columns of colour ``c``).
        With ``states_only``, of df/dy alone: ``C [n_out, n_state_colours]``, by
        ``state_colour``."""
        leaves = self._leaves(t, y, p)
        n_c = self.constants.shape[0]
        n_cols = self.n_states + self.n_params + 1
        if states_only:
            n_colours = self.n_state_colours
            seeds = jnp.asarray(np.eye(n_colours)[self.state_colour], dtype=y.dtype)
        else:
            n_colours = self.n_colours
            seeds = jnp.asarray(np.eye(n_colours)[self.colour], dtype=y.dtype)
        buf = jnp.zeros(self.n_nodes_total, dtype=y.dtype)
        buf = jax.lax.dynamic_update_slice(buf, leaves, (0,))
        tan = jnp.zeros((self.n_nodes_total, n_colours), dtype=y.dtype)
        tan = jax.lax.dynamic_update_slice(tan, seeds, (n_c, 0))
        offset = leaves.shape[0]
        for level in self.levels:
            values, rows = [], []
            for g in level:
                v, r = _apply_tangent(g, buf, tan)
                values.append(v)
                rows.append(r)
            values = jnp.concatenate(values)
            buf = jax.lax.dynamic_update_slice(buf, values, (offset,))
            tan = jax.lax.dynamic_update_slice(tan, jnp.concatenate(rows), (offset, 0))
            offset += values.shape[0]
        assert len(self.colour) == n_cols
        return buf[self.outputs], tan[self.outputs]

    @property
    def n_nodes_total(self) -> int:
        """Buffer size: constants, states, parameters, time and every level's nodes."""
        n = self.constants.shape[0] + self.n_states + self.n_params + 1
        return n + sum(g.a.shape[0] for level in self.levels for g in level)


def _apply(g: _Group, buf):
    a = buf[g.a]
    if g.kind == "unary":
        return _UNARY[g.op](a)
    if g.kind == "binary":
        return _BINARY[g.op](a, buf[g.b])
    if g.kind == "powc":
        return _powc(a, g.exponent)
    return jnp.where(a != 0.0, buf[g.b], buf[g.c])


def _apply_tangent(g: _Group, buf, tan):
    """Values of a group and their tangent rows [k, n_colours]: each operand's rows
    scaled by the operation's partial derivative (from ``jax.jvp`` of the same
    elementwise operation, so special cases match JAX's own rules)."""
    a = buf[g.a]
    ones = jnp.ones_like(a)
    if g.kind == "select":
        cond = (a != 0.0)[:, None]
        return jnp.where(a != 0.0, buf[g.b], buf[g.c]), jnp.where(cond, tan[g.b], tan[g.c])
    if g.kind == "unary":
        value, da = jax.jvp(_UNARY[g.op], (a,), (ones,))
        return value, da[:, None] * tan[g.a]
    if g.kind == "powc":
        value, da = jax.jvp(lambda x: _powc(x, g.exponent), (a,), (ones,))
        return value, da[:, None] * tan[g.a]
    b = buf[g.b]
    op = _BINARY[g.op]
    value, da = jax.jvp(lambda x: op(x, b), (a,), (ones,))
    _, db = jax.jvp(lambda x: op(a, x), (b,), (ones,))
    return value, da[:, None] * tan[g.a] + db[:, None] * tan[g.b]


def _powc(a, exponent: np.ndarray):
    """``a ** exponent`` with constant exponents: integer exponents by repeated
    multiplication where small (exact for negative bases, no log in the gradient)."""
    integer = np.all(exponent == np.round(exponent)) and np.all(np.abs(exponent) <= 16)
    if integer and np.all(exponent == exponent[0]):
        return jax.lax.integer_pow(a, int(exponent[0]))
    return jnp.power(a, jnp.asarray(exponent, dtype=a.dtype))


def build_tape(
    outputs: Sequence[Expr],
    states: Sequence[str],
    params: Sequence[str],
    definitions: Mapping[str, Expr],
) -> Tape:
    """A :class:`Tape` for ``outputs`` (expression trees over the ``states``,
    ``params``, ``time`` and the ``definitions``, which may refer to each other)."""
    leaves = {s: ("y", i) for i, s in enumerate(states)}
    leaves.update({p: ("p", j) for j, p in enumerate(params) if p not in leaves})
    builder = _Builder(leaves, definitions)
    roots = [builder.expr(e) for e in outputs]
    nodes = builder.nodes

    level = np.zeros(len(nodes), dtype=int)
    for i, key in enumerate(nodes):  # children always precede their parents
        kind = key[0]
        if kind == "unary":
            level[i] = level[key[2]] + 1
        elif kind == "binary":
            level[i] = max(level[key[2]], level[key[3]]) + 1
        elif kind == "powc":
            level[i] = level[key[2]] + 1
        elif kind == "select":
            level[i] = max(level[key[1]], level[key[2]], level[key[3]]) + 1

    consts = [i for i, key in enumerate(nodes) if key[0] == "const"]
    position = np.full(len(nodes), -1, dtype=np.int64)
    position[consts] = np.arange(len(consts))
    n_c = len(consts)
    for i, key in enumerate(nodes):
        if key[0] == "y":
            position[i] = n_c + key[1]
        elif key[0] == "p":
            position[i] = n_c + len(states) + key[1]
        elif key[0] == "time":
            position[i] = n_c + len(states) + len(params)
    offset = n_c + len(states) + len(params) + 1
    levels = []
    for lv in range(1, int(level.max(initial=0)) + 1):
        members = [i for i in np.flatnonzero(level == lv)]
        groups: dict[tuple, list[int]] = {}
        for i in members:
            key = nodes[i]
            group = (key[0], key[1] if key[0] in ("unary", "binary") else "")
            if key[0] == "powc" and float(key[1]).is_integer() and abs(key[1]) <= 16:
                group = ("powc", f"int{int(key[1])}")
            groups.setdefault(group, []).append(i)
        plan = []
        for (kind, op), items in groups.items():
            keys = [nodes[i] for i in items]
            if kind == "unary":
                g = _Group(kind, op, position[[k[2] for k in keys]])
            elif kind == "binary":
                g = _Group(kind, op, position[[k[2] for k in keys]], position[[k[3] for k in keys]])
            elif kind == "powc":
                g = _Group(
                    kind,
                    op,
                    position[[k[2] for k in keys]],
                    exponent=np.array([k[1] for k in keys], dtype=np.float64),
                )
            else:
                g = _Group(
                    kind,
                    "select",
                    position[[k[1] for k in keys]],
                    position[[k[2] for k in keys]],
                    position[[k[3] for k in keys]],
                )
            position[items] = offset + np.arange(len(items))
            offset += len(items)
            plan.append(g)
        levels.append(tuple(plan))
    constants = np.array(
        [math.nan if nodes[i][1] == "nan" else nodes[i][1] for i in consts], dtype=np.float64
    )
    pattern = _sparsity(nodes, roots, len(states), len(params))
    colour = colour_columns(pattern)
    state_colour = colour_columns(pattern[:, : len(states)])
    return Tape(
        constants=constants,
        n_states=len(states),
        n_params=len(params),
        levels=tuple(levels),
        outputs=position[roots],
        n_nodes=len(nodes),
        pattern=pattern,
        colour=colour,
        n_colours=int(colour.max(initial=-1)) + 1,
        state_colour=state_colour,
        n_state_colours=int(state_colour.max(initial=-1)) + 1,
    )


def _sparsity(nodes: list[tuple], roots: list[int], n_y: int, n_p: int) -> np.ndarray:
    """[n_roots, n_y + n_p + 1] which leaves (states, parameters, time) each root
    depends on."""
    deps: list[frozenset[int]] = []
    for key in nodes:
        kind = key[0]
        if kind == "y":
            deps.append(frozenset((key[1],)))
        elif kind == "p":
            deps.append(frozenset((n_y + key[1],)))
        elif kind == "time":
            deps.append(frozenset((n_y + n_p,)))
        elif kind == "const":
            deps.append(frozenset())
        elif kind in ("unary", "powc"):
            deps.append(deps[key[2]])
        elif kind == "binary":
            deps.append(deps[key[2]] | deps[key[3]])
        else:  # select: the condition has no derivative
            deps.append(deps[key[2]] | deps[key[3]])
    pattern = np.zeros((len(roots), n_y + n_p + 1), dtype=bool)
    for i, r in enumerate(roots):
        pattern[i, list(deps[r])] = True
    return pattern


def vector_field(tape: Tape, jacobian=None):
    """``f(t, y, p)`` evaluated by ``tape``, with a custom JVP that multiplies the
    tangents by the coloured Jacobian (see the module docstring), or by
    ``jacobian(t, y, p, f)`` [n_out, n_states + n_params + 1] where given (the model's
    own, e.g. through its reaction fluxes)."""
    n_y, n_p = tape.n_states, tape.n_params

    @jax.custom_jvp
    def f(t, y, p):
        return tape(t, y, p)

    @f.defjvp
    def f_jvp(primals, tangents):
        t, y, p = primals
        dt, dy, dp = tangents
        # A dense product: under jax.jacfwd (500 tangents) it is one matrix product,
        # where a product with the nonzeros (gather, scatter-add) took 7x longer.
        if jacobian is None:
            value, jac = tape.jacobian(t, y, p)
        else:
            value = tape(t, y, p)
            jac = jacobian(t, y, p, value)
        out = jac[:, :n_y] @ dy + jac[:, n_y : n_y + n_p] @ dp.astype(y.dtype)
        return value, out + jac[:, n_y + n_p] * jnp.asarray(dt, dtype=y.dtype)

    return f


__all__ = ["Tape", "build_tape", "vector_field"]
