"""Safe formula handling: libsbml ASTs -> a small expression tree -> JAX or sympy.

No text from a file is ever evaluated as Python. SBML math arrives as libsbml
MathML ASTs and PEtab formula strings are parsed by ``libsbml.parseL3Formula``; the
resulting AST is converted node by node through an explicit whitelist of node types
(:data:`_BINARY`, :data:`_FUNCTIONS`, ...) into plain nested tuples (hashable, so
models built from them can be static arguments of ``jax.jit``). Any other node type
(``delay``, ``rateOf``, ``lambda``, unknown function calls, ...) raises
:class:`~il6rcc.errors.PetabError` naming the formula and the construct.

Expression tree (``Expr``), tuples with a tag first:

* ``("num", value)``, ``("bool", value)``, ``("sym", name)``, ``("time",)``
* ``("add", a, b, ...)``, ``("mul", a, b, ...)``, ``("sub", a, b)``, ``("div", a, b)``,
  ``("pow", a, b)``, ``("neg", a)``
* ``("fn", name, a, ...)`` with ``name`` in :data:`FUNCTION_NAMES`
* ``("log", base, x)``: logarithm of ``x`` to ``base``
* ``("piecewise", value1, condition1, ..., otherwise)``; ``otherwise`` may be absent
* ``("rel", op, a, b)`` with ``op`` in ``lt le gt ge eq ne``
* ``("and", a, ...)``, ``("or", a, ...)``, ``("xor", a, ...)``, ``("not", a)``
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import libsbml

from ..errors import PetabError

Expr = tuple

#: Avogadro's number as SBML L3 defines its ``avogadro`` csymbol.
AVOGADRO = 6.02214076e23

#: Unary math functions, by the name used in ``("fn", name, ...)`` trees.
FUNCTION_NAMES = (
    "exp",
    "ln",
    "sqrt",
    "abs",
    "floor",
    "ceil",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "max",
    "min",
    "sign",
    "arcsinh",
    "arccosh",
    "arctanh",
)

_BINARY = {
    libsbml.AST_DIVIDE: "div",
    libsbml.AST_POWER: "pow",
    libsbml.AST_FUNCTION_POWER: "pow",
}

_NARY = {libsbml.AST_PLUS: "add", libsbml.AST_TIMES: "mul"}

_FUNCTIONS = {
    libsbml.AST_FUNCTION_EXP: "exp",
    libsbml.AST_FUNCTION_LN: "ln",
    libsbml.AST_FUNCTION_ABS: "abs",
    libsbml.AST_FUNCTION_FLOOR: "floor",
    libsbml.AST_FUNCTION_CEILING: "ceil",
    libsbml.AST_FUNCTION_SIN: "sin",
    libsbml.AST_FUNCTION_COS: "cos",
    libsbml.AST_FUNCTION_TAN: "tan",
    libsbml.AST_FUNCTION_ARCSIN: "arcsin",
    libsbml.AST_FUNCTION_ARCCOS: "arccos",
    libsbml.AST_FUNCTION_ARCTAN: "arctan",
    libsbml.AST_FUNCTION_SINH: "sinh",
    libsbml.AST_FUNCTION_COSH: "cosh",
    libsbml.AST_FUNCTION_TANH: "tanh",
    libsbml.AST_FUNCTION_MAX: "max",
    libsbml.AST_FUNCTION_MIN: "min",
}

_RELATIONAL = {
    libsbml.AST_RELATIONAL_LT: "lt",
    libsbml.AST_RELATIONAL_LEQ: "le",
    libsbml.AST_RELATIONAL_GT: "gt",
    libsbml.AST_RELATIONAL_GEQ: "ge",
    libsbml.AST_RELATIONAL_EQ: "eq",
    libsbml.AST_RELATIONAL_NEQ: "ne",
}

_LOGICAL = {
    libsbml.AST_LOGICAL_AND: "and",
    libsbml.AST_LOGICAL_OR: "or",
    libsbml.AST_LOGICAL_XOR: "xor",
}

#: PEtab formulas use sympy's spelling of some functions; these user-function names
#: (which libsbml's infix parser does not know) are accepted and mapped.
_PETAB_FUNCTION_ALIASES = {
    "Max": "max",
    "Min": "min",
    "max": "max",
    "min": "min",
    "Abs": "abs",
    "log10": "log10",
    "log2": "log2",
}

_AST_TYPE_NAMES = {
    getattr(libsbml, name): name[4:].lower() for name in dir(libsbml) if name.startswith("AST_")
}


def _describe(node) -> str:
    name = node.getName()
    kind = _AST_TYPE_NAMES.get(node.getType(), str(node.getType()))
    return f"{name!r} ({kind})" if name else kind


def from_ast(node, *, where: str, petab: bool = False) -> Expr:
    """Convert a libsbml AST to an expression tree.

    Args:
        node: a ``libsbml.ASTNode``.
        where: what the formula belongs to, for error messages (file, row, column).
        petab: True for PEtab formula strings (sympy conventions: ``log(x, b)`` is the
            logarithm of ``x`` to base ``b``); False for SBML MathML (``log`` with a
            ``logbase`` child first).

    Raises:
        PetabError: for any node type outside the whitelist.
    """
    return _convert(node, where, petab)


def _children(node, where, petab) -> list[Expr]:
    return [_convert(node.getChild(i), where, petab) for i in range(node.getNumChildren())]


def _convert(node, where: str, petab: bool) -> Expr:  # noqa: C901 - one branch per node type
    if node is None:
        raise PetabError(f"{where}: empty formula")
    t = node.getType()
    n = node.getNumChildren()
    if t == libsbml.AST_INTEGER:
        return ("num", float(node.getInteger()))
    if t in (libsbml.AST_REAL, libsbml.AST_REAL_E):
        return ("num", float(node.getReal()))
    if t == libsbml.AST_RATIONAL:
        return ("num", node.getNumerator() / node.getDenominator())
    if t == libsbml.AST_NAME:
        return ("sym", node.getName())
    if t == libsbml.AST_NAME_TIME:
        return ("time",)
    if t == libsbml.AST_NAME_AVOGADRO:
        return ("num", AVOGADRO)
    if t == libsbml.AST_CONSTANT_E:
        return ("num", math.e)
    if t == libsbml.AST_CONSTANT_PI:
        return ("num", math.pi)
    if t in (libsbml.AST_CONSTANT_TRUE, libsbml.AST_CONSTANT_FALSE):
        return ("bool", t == libsbml.AST_CONSTANT_TRUE)
    args = _children(node, where, petab)
    if t in _NARY:
        if not args:
            return ("num", 0.0 if t == libsbml.AST_PLUS else 1.0)
        return args[0] if len(args) == 1 else (_NARY[t], *args)
    if t == libsbml.AST_MINUS:
        if n == 1:
            return ("neg", args[0])
        if n == 2:
            return ("sub", args[0], args[1])
    elif t in _BINARY and n == 2:
        return (_BINARY[t], args[0], args[1])
    elif t in _FUNCTIONS and (
        n == 1 or (t in (libsbml.AST_FUNCTION_MAX, libsbml.AST_FUNCTION_MIN))
    ):
        return ("fn", _FUNCTIONS[t], *args)
    elif t == libsbml.AST_FUNCTION_ROOT:
        if n == 1:
            return ("fn", "sqrt", args[0])
        if n == 2:  # (degree, x)
            return ("pow", args[1], ("div", ("num", 1.0), args[0]))
    elif t == libsbml.AST_FUNCTION_LOG:
        name = node.getName() or "log"
        if n == 1:
            return ("log", ("num", 10.0), args[0])
        if n == 2:
            if petab and name == "log":  # sympy: log(x, base)
                return ("log", args[1], args[0])
            return ("log", args[0], args[1])  # MathML and log10(x): (base, x)
    elif t == libsbml.AST_FUNCTION_PIECEWISE and n >= 1:
        return ("piecewise", *args)
    elif t in _RELATIONAL and n == 2:
        return ("rel", _RELATIONAL[t], args[0], args[1])
    elif t in _LOGICAL and n >= 1:
        return (_LOGICAL[t], *args)
    elif t == libsbml.AST_LOGICAL_NOT and n == 1:
        return ("not", args[0])
    elif t == libsbml.AST_FUNCTION and petab and node.getName() in _PETAB_FUNCTION_ALIASES:
        alias = _PETAB_FUNCTION_ALIASES[node.getName()]
        if alias in ("max", "min") and n >= 1:
            return ("fn", alias, *args)
        if alias == "abs" and n == 1:
            return ("fn", "abs", args[0])
        if alias in ("log10", "log2") and n == 1:
            return ("log", ("num", 10.0 if alias == "log10" else 2.0), args[0])
    elif t == libsbml.AST_FUNCTION:
        raise PetabError(
            f"{where}: unknown function {node.getName()!r}; supported: "
            f"{', '.join(FUNCTION_NAMES)}, log, log10, pow, piecewise (SBML function "
            f"definitions are expanded when the model is read)"
        )
    raise PetabError(
        f"{where}: unsupported math construct {_describe(node)} with {n} argument(s); "
        f"supported: numbers, identifiers, time, + - * / ^, {', '.join(FUNCTION_NAMES)}, "
        f"log, piecewise, relational and logical operators"
    )


def parse_formula(text: Any, *, where: str) -> Expr:
    """Parse a PEtab formula (a string or a number) without evaluating it.

    The text goes through the petab library's own parser (``petab.v1.math``, an
    ANTLR grammar of PEtab math that builds sympy objects without evaluating any
    text), and the sympy tree through the whitelist of :func:`from_sympy`. What that
    grammar lacks and older PEtab files use (sympy's ``**``, ``Max``/``Min``/``Abs``,
    ``pi``) falls back to libsbml's infix parser and :func:`from_ast`. Raises
    :class:`PetabError` naming ``where`` when the text is not a formula of the
    supported kind.
    """
    if isinstance(text, bool) or text is None:
        raise PetabError(f"{where}: expected a formula or a number, got {text!r}")
    if isinstance(text, int | float):
        if math.isnan(text):
            raise PetabError(f"{where}: expected a formula or a number, got an empty cell")
        return ("num", float(text))
    if not isinstance(text, str) or not text.strip():
        raise PetabError(f"{where}: expected a formula or a number, got {text!r}")
    from petab.v1.math import sympify_petab

    try:
        tree = sympify_petab(text, evaluate=False)
    except (ValueError, AssertionError, TypeError, RecursionError):
        tree = None  # outside PEtab math's grammar: the libsbml fallback decides
    if tree is not None:
        try:
            return from_sympy(tree, where=f"{where} ({text!r})")
        except _NotPetabMath:
            pass
    settings = libsbml.L3ParserSettings()
    settings.setParseLog(libsbml.L3P_PARSE_LOG_AS_LN)
    settings.setParseAvogadroCsymbol(False)
    ast = libsbml.parseL3FormulaWithSettings(text.replace("**", "^"), settings)
    if ast is None:
        message = libsbml.getLastParseL3Error().strip()
        raise PetabError(
            f"{where}: {text!r} is not a valid formula ({message}); expected arithmetic "
            f"on identifiers and numbers, e.g. 'scale_x * x + offset_x'"
        )
    return from_ast(ast, where=f"{where} ({text!r})", petab=True)


class _NotPetabMath(Exception):
    """A sympy node that PEtab math produced but the whitelist does not map (the
    libsbml fallback then decides)."""


#: sympy function classes by their name, mapped to ``("fn", name, ...)`` names.
_SYMPY_FUNCTIONS = {
    "exp": "exp",
    "Abs": "abs",
    "sign": "sign",
    "floor": "floor",
    "ceiling": "ceil",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "asinh": "arcsinh",
    "acosh": "arccosh",
    "atanh": "arctanh",
    "Max": "max",
    "Min": "min",
}

#: Reciprocal trigonometric functions: 1 / f(x).
_SYMPY_RECIPROCALS = {
    "sec": "cos",
    "csc": "sin",
    "cot": "tan",
    "sech": "cosh",
    "csch": "sinh",
    "coth": "tanh",
}

_SYMPY_RELATIONS = {
    "StrictLessThan": "lt",
    "LessThan": "le",
    "StrictGreaterThan": "gt",
    "GreaterThan": "ge",
    "Equality": "eq",
    "Unequality": "ne",
}


def from_sympy(node, *, where: str) -> Expr:  # noqa: C901 - one branch per node type
    """Convert a sympy tree built by ``petab.v1.math.sympify_petab`` to an expression
    tree, through an explicit whitelist of node types (nothing is evaluated).

    The symbol ``time`` is the model time and ``pi`` the constant; every other
    symbol is an identifier.
    """
    import sympy

    if isinstance(node, sympy.Symbol):
        name = node.name
        if name == "time":
            return ("time",)
        if name == "pi":
            return ("num", math.pi)
        return ("sym", name)
    if node is sympy.true or node is sympy.false:
        return ("bool", bool(node))
    if node is sympy.pi:
        return ("num", math.pi)
    if node is sympy.E:
        return ("num", math.e)
    if isinstance(node, sympy.Number):
        if node in (sympy.oo, -sympy.oo) or node is sympy.nan:
            value = {sympy.oo: math.inf, -sympy.oo: -math.inf}.get(node, math.nan)
            return ("num", value)
        return ("num", float(node))
    name = type(node).__name__
    if isinstance(node, sympy.Piecewise):
        out: list = []
        for pair in node.args:
            value = from_sympy(pair.expr, where=where)
            if pair.cond is sympy.true:
                out.append(value)
                break
            out.extend((value, from_sympy(pair.cond, where=where)))
        return ("piecewise", *out)
    args = [from_sympy(a, where=where) for a in node.args]
    if isinstance(node, sympy.Add):
        return ("add", *args)
    if isinstance(node, sympy.Mul):
        return ("mul", *args)
    if isinstance(node, sympy.Pow):
        return ("pow", args[0], args[1])
    if isinstance(node, sympy.log):
        if len(args) == 1:
            return ("fn", "ln", args[0])
        return ("log", args[1], args[0])  # sympy: log(x, base)
    if name in _SYMPY_RELATIONS:
        return ("rel", _SYMPY_RELATIONS[name], args[0], args[1])
    if isinstance(node, sympy.And):
        return ("and", *args)
    if isinstance(node, sympy.Or):
        return ("or", *args)
    if isinstance(node, sympy.Xor):
        return ("xor", *args)
    if isinstance(node, sympy.Not):
        return ("not", args[0])
    if name in _SYMPY_FUNCTIONS:
        return ("fn", _SYMPY_FUNCTIONS[name], *args)
    if name in _SYMPY_RECIPROCALS:
        return ("div", ("num", 1.0), ("fn", _SYMPY_RECIPROCALS[name], args[0]))
    raise _NotPetabMath(f"{where}: sympy node {name}")


# ------------------------------------------------------------------------ inspection
def free_symbols(expr: Expr) -> frozenset[str]:
    """Identifiers an expression refers to (``time`` excluded)."""
    out: set[str] = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        tag = e[0]
        if tag == "sym":
            out.add(e[1])
        elif tag in ("num", "bool", "time"):
            continue
        elif tag == "fn":
            stack.extend(e[2:])
        elif tag == "rel":
            stack.extend(e[2:])
        else:
            stack.extend(e[1:])
    return frozenset(out)


def uses_time(expr: Expr) -> bool:
    """Whether an expression refers to time."""
    if expr[0] == "time":
        return True
    if expr[0] in ("num", "bool", "sym"):
        return False
    start = 2 if expr[0] in ("fn", "rel") else 1
    return any(uses_time(e) for e in expr[start:])


def substitute(expr: Expr, mapping: Mapping[str, Expr]) -> Expr:
    """Replace symbols by expressions."""
    tag = expr[0]
    if tag == "sym":
        return mapping.get(expr[1], expr)
    if tag in ("num", "bool", "time"):
        return expr
    if tag in ("fn", "rel"):
        return (tag, expr[1], *(substitute(e, mapping) for e in expr[2:]))
    return (tag, *(substitute(e, mapping) for e in expr[1:]))


# ------------------------------------------------------------------------ evaluation
class JaxBackend:
    """Evaluates expression trees with ``jax.numpy`` (at trace time)."""

    @staticmethod
    def num(v):
        return v

    @staticmethod
    def where(c, a, b):
        import jax.numpy as jnp

        return jnp.where(c, a, b)

    @staticmethod
    def pow(a, b_expr, b):
        import jax
        import jax.numpy as jnp

        if b_expr[0] == "num" and float(b_expr[1]).is_integer() and abs(b_expr[1]) <= 16:
            return jax.lax.integer_pow(jnp.asarray(a, dtype=float), int(b_expr[1]))
        return jnp.power(a, b)

    @staticmethod
    def log(base, x):
        import jax.numpy as jnp

        if isinstance(base, float) and base == 10.0:
            return jnp.log10(x)
        return jnp.log(x) / jnp.log(base)

    @staticmethod
    def fn(name, *args):
        import jax.numpy as jnp

        if name == "max":
            out = args[0]
            for a in args[1:]:
                out = jnp.maximum(out, a)
            return out
        if name == "min":
            out = args[0]
            for a in args[1:]:
                out = jnp.minimum(out, a)
            return out
        table = {"ln": jnp.log, "ceil": jnp.ceil}
        return (table[name] if name in table else getattr(jnp, name))(args[0])

    @staticmethod
    def rel(op, a, b):
        import jax.numpy as jnp

        return {
            "lt": jnp.less,
            "le": jnp.less_equal,
            "gt": jnp.greater,
            "ge": jnp.greater_equal,
            "eq": jnp.equal,
            "ne": jnp.not_equal,
        }[op](a, b)

    @staticmethod
    def logical(op, args):
        import jax.numpy as jnp

        fn = {"and": jnp.logical_and, "or": jnp.logical_or, "xor": jnp.logical_xor}[op]
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return out

    @staticmethod
    def logical_not(a):
        import jax.numpy as jnp

        return jnp.logical_not(a)


class SympyBackend:
    """Builds sympy expressions (no parsing: explicit constructors only)."""

    @staticmethod
    def num(v):
        import sympy

        return sympy.Integer(int(v)) if float(v).is_integer() else sympy.Float(v)

    @staticmethod
    def where(c, a, b):
        import sympy

        return sympy.Piecewise((a, c), (b, True))

    @staticmethod
    def pow(a, b_expr, b):
        return a**b

    @staticmethod
    def log(base, x):
        import sympy

        return sympy.log(x, base)

    @staticmethod
    def fn(name, *args):
        import sympy

        table = {
            "exp": sympy.exp,
            "ln": sympy.log,
            "sqrt": sympy.sqrt,
            "abs": sympy.Abs,
            "floor": sympy.floor,
            "ceil": sympy.ceiling,
            "sin": sympy.sin,
            "cos": sympy.cos,
            "tan": sympy.tan,
            "arcsin": sympy.asin,
            "arccos": sympy.acos,
            "arctan": sympy.atan,
            "sinh": sympy.sinh,
            "cosh": sympy.cosh,
            "tanh": sympy.tanh,
            "sign": sympy.sign,
            "arcsinh": sympy.asinh,
            "arccosh": sympy.acosh,
            "arctanh": sympy.atanh,
        }
        if name == "max":
            return sympy.Max(*args)
        if name == "min":
            return sympy.Min(*args)
        return table[name](args[0])

    @staticmethod
    def rel(op, a, b):
        import sympy

        return {
            "lt": sympy.Lt,
            "le": sympy.Le,
            "gt": sympy.Gt,
            "ge": sympy.Ge,
            "eq": sympy.Eq,
            "ne": sympy.Ne,
        }[op](a, b)

    @staticmethod
    def logical(op, args):
        import sympy

        return {"and": sympy.And, "or": sympy.Or, "xor": sympy.Xor}[op](*args)

    @staticmethod
    def logical_not(a):
        import sympy

        return sympy.Not(a)


def evaluate(expr: Expr, lookup: Callable[[str], Any], time: Any = 0.0, backend=JaxBackend):
    """Value of an expression tree.

    Args:
        expr: the tree.
        lookup: maps an identifier to its value (raises ``KeyError`` if unknown).
        time: value of the time symbol.
        backend: :class:`JaxBackend` (arrays, traceable) or :class:`SympyBackend`.
    """
    tag = expr[0]
    if tag == "num":
        return backend.num(expr[1])
    if tag == "sym":
        return lookup(expr[1])
    if tag == "time":
        return time
    if tag == "bool":
        return expr[1]

    def ev(e):
        return evaluate(e, lookup, time, backend)

    if tag == "add":
        out = ev(expr[1])
        for e in expr[2:]:
            out = out + ev(e)
        return out
    if tag == "mul":
        out = ev(expr[1])
        for e in expr[2:]:
            out = out * ev(e)
        return out
    if tag == "sub":
        return ev(expr[1]) - ev(expr[2])
    if tag == "div":
        return ev(expr[1]) / ev(expr[2])
    if tag == "neg":
        return -ev(expr[1])
    if tag == "pow":
        return backend.pow(ev(expr[1]), expr[2], ev(expr[2]))
    if tag == "log":
        base = float(expr[1][1]) if expr[1][0] == "num" else ev(expr[1])
        return backend.log(base, ev(expr[2]))
    if tag == "fn":
        return backend.fn(expr[1], *(ev(e) for e in expr[2:]))
    if tag == "rel":
        return backend.rel(expr[1], ev(expr[2]), ev(expr[3]))
    if tag in ("and", "or", "xor"):
        return backend.logical(tag, [ev(e) for e in expr[1:]])
    if tag == "not":
        return backend.logical_not(ev(expr[1]))
    if tag == "piecewise":
        pieces = expr[1:]
        if len(pieces) % 2 == 1:
            out = ev(pieces[-1])
            pairs = pieces[:-1]
        else:
            out = backend.num(float("nan"))
            pairs = pieces
        for i in range(len(pairs) - 2, -1, -2):
            out = backend.where(ev(pairs[i + 1]), ev(pairs[i]), out)
        return out
    raise PetabError(f"internal: unknown expression node {tag!r}")


class LazyEnv:
    """Identifier values computed on first use: fixed ``values`` first, then
    ``definitions`` (expression trees or zero-argument callables), memoised.

    A definition that (indirectly) refers to itself raises :class:`PetabError`.
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        definitions: Mapping[str, Any],
        time: Any = 0.0,
        backend=JaxBackend,
        where: str = "model",
    ) -> None:
        self._values = dict(values)
        self._definitions = definitions
        self._time = time
        self._backend = backend
        self._where = where
        self._active: set[str] = set()

    def __call__(self, name: str):
        if name in self._values:
            return self._values[name]
        if name not in self._definitions:
            raise KeyError(name)
        if name in self._active:
            raise PetabError(f"{self._where}: {name!r} is defined in terms of itself")
        self._active.add(name)
        try:
            definition = self._definitions[name]
            if callable(definition):
                value = definition()
            else:
                value = evaluate(definition, self, self._time, self._backend)
        finally:
            self._active.discard(name)
        self._values[name] = value
        return value

    def set(self, name: str, value) -> None:
        """Give ``name`` a value (overrides any definition)."""
        self._values[name] = value


__all__ = [
    "AVOGADRO",
    "Expr",
    "FUNCTION_NAMES",
    "JaxBackend",
    "LazyEnv",
    "SympyBackend",
    "evaluate",
    "free_symbols",
    "from_ast",
    "from_sympy",
    "parse_formula",
    "substitute",
    "uses_time",
]
