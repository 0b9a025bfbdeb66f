"""A sparse direct solver for matrices of one fixed sparsity pattern, in JAX.

Implicit solvers factorise the iteration matrix ``M = I - c J`` of a model again and
again, always with the same structure: that of the model's Jacobian ``J``. Large
kinetic models are sparse (Chen_MSB2009: 500 states, 1.8 % of the Jacobian nonzero),
and a dense LU of them costs ``n^3 / 3`` operations where a sparse one costs a few
hundred times less. This module does the symbolic work once, in numpy, when a solver
is built, and leaves a short, static sequence of vectorised JAX operations for the
numeric factorisation and the solves, so that they run inside ``jit``, ``vmap``,
``lax.while_loop`` and both modes of differentiation.

Symbolic analysis (:meth:`SparseLU.analyse`):

1. A fill-reducing ordering: minimum degree on the graph of ``P + P^T`` (``P`` the
   pattern with its diagonal; the elimination graph, as in George & Liu 1989).
2. Symbolic factorisation of the symmetrised pattern: the filled pattern of ``L + U``
   and the elimination tree (a pivot's parent is the first off-diagonal row of its
   column of ``L``).
3. A level schedule: a pivot's level is one more than its children's highest, so the
   pivots of one level are independent (neither updates the other's row or column)
   and are eliminated together. The pivots of the top levels (the last ``tail`` ones,
   few per level: the dense core where the hubs of a network meet) form a dense block
   that is factorised with partial pivoting by LAPACK in one call.

Numeric factorisation (:meth:`SparseLU.factorise`): per level, a gather-divide-scatter
that scales the level's columns of ``L`` and a gather-multiply-scatter-add of all their
Schur-complement updates; then the dense LU of the remaining block (the Schur
complement on the tail). Pivots of the sparse part are taken **on the diagonal**
without search (static pivoting, standard for ``I - c J`` with a step size the
solver controls). It is guarded: a pivot below ``sqrt(eps)`` times the largest entry
of its row of ``M``, a non-finite value, or a probe solve (``M x = M 1``) whose
solution is off by more than :data:`PROBE_TOL` marks the factorisation as failed
(``SparseFactors.ok`` false); :meth:`SparseLU.solve` then returns NaN, never a
silently wrong answer, and the BDF solver rejects the step (a smaller step brings
``M`` closer to ``I``).

Solves: forward substitution level by level (rows of one level depend only on lower
levels), the dense tail, and backward substitution; each level is a gather, a
multiply and a segment sum over static index arrays. A solve is linear in its
right-hand side and differentiable in the matrix values.

References: George & Liu (1989), SIAM Review 31(1):1-19, doi:10.1137/1031001 (minimum
degree); Liu (1990), SIAM J. Matrix Anal. Appl. 11(1):134-172, doi:10.1137/0611010
(elimination trees); Li & Demmel (2003), ACM TOMS 29(2):110-140,
doi:10.1145/779359.779361 (static pivoting with a guard).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

# Shapes: ``entries`` values of a matrix at its pattern, ``slots`` the factor buffer.
_Entries = Float[Array, " entries"]
_Vector = Float[Array, " n"]
_Buffer = Float[Array, " slots"]
_Block = Float[Array, "t t"]
_Perm = Int[Array, " t"]
_Flag = Bool[Array, ""]

#: A probe solve ``M x = M 1`` must recover ``x = 1`` to this (max-norm) accuracy, or
#: the factorisation counts as failed.
PROBE_TOL = 1e-6
#: A pivot of the sparse part must exceed this times the largest entry of its row.
PIVOT_TOL = float(np.sqrt(np.finfo(np.float64).eps))
#: Sparse factorisation is used for patterns of at least this many states whose
#: filled factors hold at most MAX_FILL_DENSITY of the n^2 entries (see
#: :func:`sparse_solver_for`; measured in benchmarks/RESULTS.md, "Chen_MSB2009").
SPARSE_MIN_STATES = 100
MAX_FILL_DENSITY = 0.25
#: The dense tail takes the top levels of the elimination tree while it holds at most
#: this many pivots.
MAX_TAIL = 128


# ------------------------------------------------------------------ static indexing
# The index arrays are static and in bounds: saying so keeps XLA from clamping or
# normalising negative indices (a third of the operations, and of the compile time).
def _get(x: Array, index: np.ndarray) -> Array:
    return x.at[index].get(mode="promise_in_bounds", indices_are_sorted=_sorted(index))


def _set(x: Array, index: np.ndarray, values: Array) -> Array:
    return x.at[index].set(
        values, mode="promise_in_bounds", unique_indices=True, indices_are_sorted=_sorted(index)
    )


def _add(x: Array, index: np.ndarray, values: Array) -> Array:
    return x.at[index].add(values, mode="promise_in_bounds", indices_are_sorted=_sorted(index))


def _sorted(index: np.ndarray) -> bool:
    return bool(np.all(np.diff(index) >= 0))


def _segment_sum(values: Array, segment: np.ndarray, count: int) -> Array:
    return jax.ops.segment_sum(
        values,
        segment,
        num_segments=count,
        indices_are_sorted=_sorted(segment),
        mode="promise_in_bounds",
    )


# ------------------------------------------------------------------ symbolic helpers
def minimum_degree(graph: np.ndarray) -> np.ndarray:
    """A minimum-degree ordering of the symmetric boolean adjacency matrix ``graph``:
    repeatedly eliminate a vertex of least degree (ties: the lowest index) and join
    its neighbours into a clique. Exact elimination graphs, no approximations; fine
    for the few thousand states of kinetic models."""
    n = graph.shape[0]
    adjacent = [set(np.flatnonzero(graph[i]).tolist()) - {i} for i in range(n)]
    alive = set(range(n))
    order = []
    while alive:
        v = min(alive, key=lambda i: (len(adjacent[i]), i))
        order.append(v)
        neighbours = adjacent[v]
        for a in neighbours:
            adjacent[a] |= neighbours
            adjacent[a].discard(a)
            adjacent[a].discard(v)
        alive.remove(v)
        adjacent[v] = set()
    return np.asarray(order, dtype=np.int64)


def colour_columns(pattern: np.ndarray) -> np.ndarray:
    """Greedy colouring of the columns of a boolean ``pattern`` (largest first):
    columns that share a row get different colours, so one directional derivative per
    colour recovers every nonzero (Curtis, Powell & Reid 1974). Columns with no
    nonzero get colour 0."""
    n_cols = pattern.shape[1]
    colour = np.zeros(n_cols, dtype=np.int64)
    rows_of = [np.flatnonzero(pattern[:, j]) for j in range(n_cols)]
    used: list[set[int]] = []  # per colour: rows already covered
    for j in sorted(range(n_cols), key=lambda j: -len(rows_of[j])):
        if len(rows_of[j]) == 0:
            continue
        rows = set(rows_of[j].tolist())
        for c, covered in enumerate(used):
            if not rows & covered:
                colour[j] = c
                covered |= rows
                break
        else:
            colour[j] = len(used)
            used.append(rows)
    return colour


def _symbolic(graph: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Column structures of ``L`` (strictly below the diagonal) and the elimination
    tree's parents for the symmetric pattern ``graph`` in its given order."""
    n = graph.shape[0]
    structure = [set((np.flatnonzero(graph[k, k + 1 :]) + k + 1).tolist()) for k in range(n)]
    parent = np.full(n, -1, dtype=np.int64)
    columns = []
    for k in range(n):
        s = structure[k]
        columns.append(np.asarray(sorted(s), dtype=np.int64))
        if s:
            p = min(s)
            parent[k] = p
            structure[p] |= s - {p}
    return columns, parent


# ------------------------------------------------------------------ plan
@dataclass(frozen=True)
class _Level:
    """Static index arrays of one level of the sparse part (indices into the value
    buffer; see :meth:`SparseLU.factorise`)."""

    scale: np.ndarray  # L entries (i, k) of this level's pivots k
    scale_pivot: np.ndarray  # the pivot (k, k) of each
    target: np.ndarray  # Schur updates: target (i, j) -= left (i, k) * right (k, j)
    left: np.ndarray
    right: np.ndarray


@dataclass(frozen=True)
class _Sweep:
    """One level of a triangular solve: ``x[row] -= sum value[slot] * x[col]``, with
    ``segment`` the index of ``row`` among ``rows`` (the level's rows)."""

    rows: np.ndarray
    slot: np.ndarray
    col: np.ndarray
    segment: np.ndarray


class SparseFactors(eqx.Module):
    """The numeric factorisation of one matrix: the buffer of ``L + U`` values of the
    sparse part, the dense tail's LU factors and row permutation, and whether the
    factorisation passed its guards."""

    values: _Buffer
    tail_lu: _Block
    tail_perm: _Perm
    ok: _Flag


@dataclass(frozen=True, eq=False)
class SparseLU:
    """The symbolic analysis of a sparsity pattern (build with :meth:`analyse`).

    Matrices are given by their values at :attr:`rows`, :attr:`cols` (the pattern's
    nonzeros plus the whole diagonal, row by row). Equality and hashing go by the
    pattern's digest, so solvers built twice for one model share compiled code.

    Attributes:
        n: matrix size.
        rows, cols: the entries a matrix is given at.
        in_pattern: [entries] whether an entry is in the pattern given (diagonal
            entries added by the analysis are not).
        order: the pivot order (``order[k]``: original index of the k-th pivot).
        colour: [n] a colouring of the pattern's columns (:func:`colour_columns`), for
            Jacobians compressed to ``n_colours`` directional derivatives.
        n_sparse: pivots eliminated sparsely; the other ``n - n_sparse`` form the tail.
        fill: nonzeros of ``L + U`` (diagonal included) of the sparse part.
        key: SHA-256 of the pattern.
    """

    n: int
    rows: np.ndarray
    cols: np.ndarray
    in_pattern: np.ndarray
    order: np.ndarray
    colour: np.ndarray
    n_colours: int
    n_sparse: int
    fill: int
    key: str
    _slot_of_entry: np.ndarray = field(repr=False)
    _pivot_slot: np.ndarray = field(repr=False)
    _tail_slots: np.ndarray = field(repr=False)
    _size: int = field(repr=False)
    _levels: tuple[_Level, ...] = field(repr=False)
    _forward: tuple[_Sweep, ...] = field(repr=False)
    _backward: tuple[_Sweep, ...] = field(repr=False)

    def __eq__(self, other) -> bool:
        return isinstance(other, SparseLU) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def n_tail(self) -> int:
        return self.n - self.n_sparse

    @property
    def n_levels(self) -> int:
        """Levels of the sparse part (each a few vectorised operations)."""
        return len(self._levels)

    @staticmethod
    def analyse(pattern: np.ndarray, max_tail: int = MAX_TAIL) -> SparseLU:
        """The symbolic analysis of a square boolean ``pattern`` (cached by its bytes)."""
        pattern = np.asarray(pattern, dtype=bool)
        if pattern.ndim != 2 or pattern.shape[0] != pattern.shape[1] or pattern.shape[0] == 0:
            raise ValueError(
                f"SparseLU.analyse needs a square, non-empty boolean pattern; "
                f"got shape {pattern.shape}"
            )
        return _analyse(pattern.tobytes(), pattern.shape[0], int(max_tail))

    # ------------------------------------------------------------ numeric
    def factorise(self, values: _Entries) -> SparseFactors:
        """Factorise the matrix with ``values`` at (:attr:`rows`, :attr:`cols`)."""
        dtype = values.dtype
        t = self.n_tail
        buf = _set(jnp.zeros(self._size, dtype), self._slot_of_entry, values)
        for level in self._levels:
            scaled = _get(buf, level.scale) / _get(buf, level.scale_pivot)
            buf = _set(buf, level.scale, scaled)
            buf = _add(buf, level.target, -_get(buf, level.left) * _get(buf, level.right))
        if t:
            block = _get(buf, self._tail_slots).reshape(t, t)
            tail_lu, _, tail_perm = jax.lax.linalg.lu(block)
        else:
            tail_lu, tail_perm = jnp.zeros((0, 0), dtype), jnp.zeros(0, jnp.int32)
        # guards: pivots against their rows of M, finiteness, and a probe solve
        magnitude = jnp.abs(values)
        row_max = jax.ops.segment_max(magnitude, self.rows, num_segments=self.n)
        row_max = jnp.where(row_max > 0, row_max, 1.0)[self.order]
        m = self.n_sparse
        pivots = _get(buf, self._pivot_slot[:m])
        ok = jnp.all(jnp.abs(pivots) > PIVOT_TOL * row_max[:m]) & jnp.all(jnp.isfinite(buf))
        if t:
            tail_scale = jnp.max(row_max[m:])
            ok = ok & jnp.all(jnp.abs(jnp.diagonal(tail_lu)) > PIVOT_TOL * tail_scale)
            ok = ok & jnp.all(jnp.isfinite(tail_lu))
        factors = SparseFactors(buf, tail_lu, tail_perm.astype(jnp.int32), ok)
        ones = jnp.ones(self.n, dtype)
        probe = self._solve(factors, self.matvec(values, ones))
        ok = ok & jnp.all(jnp.abs(probe - 1.0) <= PROBE_TOL)
        return SparseFactors(buf, tail_lu, tail_perm.astype(jnp.int32), jax.lax.stop_gradient(ok))

    def matvec(self, values: _Entries, x: _Vector) -> Array:
        """``M x`` for the matrix with ``values``."""
        return _segment_sum(values * _get(x, self.cols), self.rows, self.n)

    def solve(self, factors: SparseFactors, b: _Vector) -> Array:
        """``x`` with ``M x = b``; NaN where the factorisation failed its guards."""
        x = self._solve(factors, b)
        return jnp.where(factors.ok, x, jnp.nan)

    def _solve(self, factors: SparseFactors, b: Array) -> Array:
        values = factors.values
        z = _get(b, self.order)
        for sweep in self._forward:
            products = _get(values, sweep.slot) * _get(z, sweep.col)
            sums = _segment_sum(products, sweep.segment, len(sweep.rows))
            z = _add(z, sweep.rows, -sums)
        m = self.n_sparse
        if self.n_tail:
            tail = z[m:][factors.tail_perm]
            tail = jax.scipy.linalg.solve_triangular(
                factors.tail_lu, tail, lower=True, unit_diagonal=True
            )
            tail = jax.scipy.linalg.solve_triangular(factors.tail_lu, tail, lower=False)
            z = z.at[m:].set(tail)
        for sweep in self._backward:
            products = _get(values, sweep.slot) * _get(z, sweep.col)
            sums = _segment_sum(products, sweep.segment, len(sweep.rows))
            pivots = _get(values, self._pivot_slot[sweep.rows])
            z = _set(z, sweep.rows, (_get(z, sweep.rows) - sums) / pivots)
        return _set(jnp.zeros_like(z), self.order, z)


def sparse_solver_for(pattern: np.ndarray | None) -> SparseLU | None:
    """The analysis of a Jacobian's ``pattern`` [n, n] where sparse factorisation pays
    (at least :data:`SPARSE_MIN_STATES` states and filled factors of at most
    :data:`MAX_FILL_DENSITY`), else None (dense LU)."""
    if pattern is None or pattern.shape[0] < SPARSE_MIN_STATES:
        return None
    analysis = SparseLU.analyse(pattern)
    filled = analysis.fill + analysis.n_tail**2
    return analysis if filled <= MAX_FILL_DENSITY * analysis.n**2 else None


@lru_cache(maxsize=32)
def _analyse(data: bytes, n: int, max_tail: int) -> SparseLU:
    pattern = np.frombuffer(data, dtype=bool).reshape(n, n)
    key = hashlib.sha256(data + f"{n}/{max_tail}".encode()).hexdigest()
    graph = pattern | pattern.T | np.eye(n, dtype=bool)
    colour = colour_columns(pattern)

    # 1-2. ordering, symbolic factorisation, elimination-tree levels
    order = minimum_degree(graph)
    columns, parent = _symbolic(graph[np.ix_(order, order)])
    level = np.zeros(n, dtype=np.int64)
    for k in range(n):  # children come before parents
        if parent[k] >= 0:
            level[parent[k]] = max(level[parent[k]], level[k] + 1)
    # 3. the tail: the top levels while they hold at most max_tail pivots
    counts = np.bincount(level)
    from_top = np.cumsum(counts[::-1])[::-1]  # pivots at this level or above
    cut = int(np.argmax(from_top <= max_tail)) if (from_top <= max_tail).any() else len(counts)
    # Reorder by (level, position): a topological order of the elimination tree, which
    # keeps the fill, and puts the tail last.
    by_level = np.lexsort((np.arange(n), level))
    order = order[by_level]
    columns, parent = _symbolic(graph[np.ix_(order, order)])
    level = level[by_level]
    n_sparse = int(np.sum(level < cut))

    # Value slots: each (i, j) of the filled pattern with min(i, j) < n_sparse, then the
    # dense tail block row by row, then one zero slot.
    lower = {(int(i), k) for k in range(n_sparse) for i in columns[k]}
    entries = sorted({(k, k) for k in range(n_sparse)} | lower | {(j, i) for i, j in lower})
    slot = {e: s for s, e in enumerate(entries)}
    fill = len(entries)
    t = n - n_sparse
    tail_start = fill
    for i in range(t):
        for j in range(t):
            slot[(n_sparse + i, n_sparse + j)] = tail_start + i * t + j
    size = tail_start + t * t

    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    in_graph = pattern | np.eye(n, dtype=bool)
    rows, cols = np.nonzero(in_graph)
    in_pattern = pattern[rows, cols]
    slot_of_entry = np.array(
        [slot[(int(inverse[r]), int(inverse[c]))] for r, c in zip(rows, cols, strict=True)],
        dtype=np.int64,
    )

    rows_of_lower: list[list[int]] = [[] for _ in range(n)]
    for k in range(n_sparse):
        for i in columns[k]:
            rows_of_lower[int(i)].append(k)

    levels = []
    for ell in range(cut):
        pivots = np.flatnonzero(level == ell)
        scale, scale_pivot, target, left, right = [], [], [], [], []
        for k in pivots:
            below = columns[k]
            scale += [slot[(int(i), int(k))] for i in below]
            scale_pivot += [slot[(int(k), int(k))]] * len(below)
            for i in below:
                for j in below:
                    target.append(slot[(int(i), int(j))])
                    left.append(slot[(int(i), int(k))])
                    right.append(slot[(int(k), int(j))])
        levels.append(
            _Level(
                *(np.asarray(a, dtype=np.int64) for a in (scale, scale_pivot, target, left, right))
            )
        )

    def sweep(row_set: np.ndarray, upper: bool) -> _Sweep:
        rows_, slots, cols_, segment = [], [], [], []
        for position, i in enumerate(row_set):
            if upper:
                partners = [int(j) for j in columns[i]]  # U[i, j], j > i (symmetric structure)
            else:
                partners = rows_of_lower[int(i)]
            rows_.append(int(i))
            for j in partners:
                slots.append(slot[(int(i), j)])
                cols_.append(j)
                segment.append(position)
        return _Sweep(*(np.asarray(a, dtype=np.int64) for a in (rows_, slots, cols_, segment)))

    forward = [sweep(np.flatnonzero(level == ell), upper=False) for ell in range(cut)]
    if t:
        forward.append(sweep(np.arange(n_sparse, n), upper=False))
    backward = [sweep(np.flatnonzero(level == ell), upper=True) for ell in reversed(range(cut))]
    pivot_slot = np.array([slot[(k, k)] for k in range(n_sparse)] + [0] * t, dtype=np.int64)
    tail_slots = np.array(
        [slot[(n_sparse + i, n_sparse + j)] for i in range(t) for j in range(t)], dtype=np.int64
    )
    return SparseLU(
        n=n,
        rows=rows.astype(np.int64),
        cols=cols.astype(np.int64),
        in_pattern=in_pattern,
        order=order,
        colour=colour,
        n_colours=int(colour.max(initial=-1)) + 1,
        n_sparse=n_sparse,
        fill=fill,
        key=key,
        _slot_of_entry=slot_of_entry,
        _pivot_slot=pivot_slot,
        _tail_slots=tail_slots,
        _size=size,
        _levels=tuple(levels),
        _forward=tuple(f for f in forward if len(f.rows)),
        _backward=tuple(b for b in backward if len(b.rows)),
    )


__all__ = [
    "MAX_FILL_DENSITY",
    "SPARSE_MIN_STATES",
    "sparse_solver_for",
    "MAX_TAIL",
    "PIVOT_TOL",
    "PROBE_TOL",
    "SparseFactors",
    "SparseLU",
    "colour_columns",
    "minimum_degree",
]
