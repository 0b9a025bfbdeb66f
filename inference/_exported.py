"""Ahead-of-time exported programs of a posterior's compiled functions, kept on disk.

JAX's persistent compilation cache (:func:`il6rcc.runtime.setup`) spares a second
process the XLA compile of a log density's gradient, but not the tracing that comes
before it: tracing an ODE solve and its adjoint through diffrax takes about as long as
compiling it. :class:`PersistentFunction` traces a function once, exports it with
:mod:`jax.export` (StableHLO, versioned and serialisable), writes it to the
``exported`` folder of the compilation cache and, in later processes, reads it back and
calls it (``jax.jit(exported.call)``): nothing is traced again, and the XLA compile of
the same module is then a hit in the compilation cache.

A stale program must never run, so an entry's key is conservative: the SHA-256 of

* the format of an entry (:data:`FORMAT`), Python's version and that of every
  installed distribution, the JAX backend, device count and kinds, and the settings
  that change what is traced (float64, promotion rules, ``EQX_ON_ERROR``);
* every ``.py`` file of il6rcc (:func:`source_digest`) and of the other modules loaded
  from outside the standard library and the installed distributions, such as a user's
  model file and the modules it imports (:func:`user_sources_digest`);
* the function's name, the structure of its arguments (static fields included),
  their shapes and dtypes;
* the identity of the object whose method is exported (:func:`fingerprint`): its
  class and every value it holds, recursively (arrays by their bytes, classes and
  functions by the hash of the source file that defines them). An object holding
  something without a reliable identity (a C object of an unknown library, an object
  that cannot be found by its name) is not exported: its function is jitted as before.

Entries are written atomically (a temporary file, then a rename), so processes that
share the folder never read half an entry; an entry that cannot be read (corrupt,
truncated, written by another version) is reported with a warning and the function is
traced again. A program that cannot be exported (one with host callbacks, such as
``jax.debug.print`` or equinox's runtime errors under ``EQX_ON_ERROR=raise``) is jitted
as before, silently. ``IL6RCC_JAX_CACHE=off`` switches this off with the compilation
cache.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import sysconfig
import tempfile
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from ..runtime import compilation_cache_dir

log = logging.getLogger(__name__)

#: Version of an entry's layout and key; bump it when either changes.
FORMAT = 1
#: Largest total size of the exported programs (bytes); the least recently used are
#: removed beyond it.
MAX_BYTES = 1024**3
#: Distributions whose version is part of every key (their modules are identified by
#: name, not by the hash of their source).
VERSIONED = (
    "jax",
    "jaxlib",
    "diffrax",
    "equinox",
    "optimistix",
    "lineax",
    "numpyro",
    "numpy",
    "scipy",
    "pandas",
)
#: Subpackages whose ``.py`` files make up :func:`source_digest`.
_PACKAGES = (
    "il6rcc",
    "il6rcc.models",
    "il6rcc.inference",
    "il6rcc.data",
    "il6rcc.configs",
    "il6rcc.petab_io",
)
#: JAX settings that change a traced program.
_JAX_SETTINGS = (
    "jax_enable_x64",
    "jax_numpy_rank_promotion",
    "jax_numpy_dtype_promotion",
    "jax_default_matmul_precision",
    "jax_default_prng_impl",
    "jax_enable_checks",
    "jax_debug_nans",
    "jax_debug_infs",
    "jax_disable_jit",
)
_MAGIC = b"il6rcc-exported\n"
_SUFFIX = ".jaxexp"


class NotIdentifiable(Exception):
    """An object has no identity that is reliable across processes."""


# ---------------------------------------------------------------------- the key
def export_cache_dir() -> str | None:
    """The folder of exported programs: ``exported`` in the compilation cache's folder
    (see :func:`il6rcc.runtime.compilation_cache_dir`); None when that cache is off."""
    base = compilation_cache_dir()
    return None if base is None else os.path.join(base, "exported")


@functools.cache
def source_digest() -> str:
    """SHA-256 of every ``.py`` file of il6rcc (relative path and content)."""
    h = hashlib.sha256()
    files: set[Path] = set()
    for folder in _package_folders():
        files.update(p for p in Path(folder).rglob("*.py") if "__pycache__" not in p.parts)
    for path in sorted(files):
        h.update(f"{path.parent.name}/{path.name}\0".encode())
        h.update(_file_digest_now(str(path)).encode())
    return h.hexdigest()


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    """Python's version and every installed distribution's (not only :data:`VERSIONED`:
    a library called while tracing changes the program too)."""
    found = {
        ((dist.metadata["Name"] or "?").lower(), dist.version)
        for dist in importlib.metadata.distributions()
    }
    missing = {(name, "absent") for name in VERSIONED if name not in {n for n, _ in found}}
    return (("python", sys.version), *sorted(found | missing))


@functools.cache
def _library_roots() -> tuple[str, ...]:
    """Folders of the standard library and of installed distributions."""
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(sorted(r + os.sep for r in roots))


def _is_library_file(path: str) -> bool:
    real = os.path.realpath(path)
    parts = Path(real).parts
    return "site-packages" in parts or "dist-packages" in parts or real.startswith(_library_roots())


@functools.cache
def _package_folders() -> tuple[str, ...]:
    folders = set()
    for name in _PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            folders.update(os.path.realpath(p) + os.sep for p in spec.submodule_search_locations)
    return tuple(sorted(folders))


def _file_digest_now(path: str) -> str:
    st = os.stat(path)
    return _file_digest_at(path, st.st_mtime_ns, st.st_size)


@functools.cache
def _file_digest_at(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def user_sources_digest() -> str:
    """SHA-256 of the Python files of the modules loaded now that belong neither to
    il6rcc, nor to the standard library, nor to an installed distribution: a user's
    model file and whatever it imports (the model's own file is keyed by its content
    anyway; a helper module it imports is covered here)."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py") or not os.path.isfile(path):
            continue
        real = os.path.realpath(path)
        if _is_library_file(real) or real.startswith(_package_folders()):
            continue
        files.add(real)
    h = hashlib.sha256()
    for digest in sorted(_file_digest_now(f) for f in files):
        h.update(digest.encode())
    return h.hexdigest()


def environment() -> dict:
    """What a traced program depends on besides its function and arguments."""
    devices = jax.devices()
    settings = {name: str(getattr(jax.config, name, None)) for name in _JAX_SETTINGS}
    equinox = sys.modules.get("equinox")
    on_error = (
        equinox._config.EQX_ON_ERROR  # type: ignore[attr-defined]
        if equinox is not None
        else os.environ.get("EQX_ON_ERROR", "raise")
    )
    return {
        "format": FORMAT,
        "versions": _versions(),
        "backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.device_kind}" for d in devices],
        "settings": settings,
        "eqx_on_error": on_error,
    }


class _Abstract:
    """Stands for an array argument in a key: its shape and dtype, not its values."""

    __slots__ = ("dtype", "shape")

    def __init__(self, leaf):
        self.shape = tuple(int(s) for s in np.shape(leaf))
        self.dtype = np.dtype(leaf.dtype).str


def fingerprint(obj) -> str:
    """SHA-256 of an object's identity: its type and everything it holds, recursively.

    Raises :class:`NotIdentifiable` for anything whose identity is not reliable across
    processes (see the module docstring)."""
    h = hashlib.sha256()
    _Fingerprinter(h).walk(obj)
    return h.hexdigest()


def _module_token(module_name: str) -> str:
    top = module_name.partition(".")[0]
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if top in sys.stdlib_module_names or (isinstance(path, str) and _is_library_file(path)):
        return f"module:{module_name}"  # versioned by the key's environment
    if not isinstance(path, str) or not path.endswith(".py") or not os.path.isfile(path):
        raise NotIdentifiable(f"module {module_name!r} has no Python source file")
    # by content, not name: a user's model file is imported under a per-process name
    return f"file:{_file_digest_now(path)}"


def _lookup(module_name: str, qualname: str):
    obj = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def _named_token(obj) -> str:
    """The identity of a class or function that can be found by its name."""
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module_name or not qualname or _lookup(module_name, qualname) is not obj:
        raise NotIdentifiable(f"{obj!r} cannot be found by its name")
    return f"{_module_token(module_name)}:{qualname}"


def _cached_names(cls) -> set[str]:
    """Attributes computed from the others on first use (not part of an identity)."""
    return {
        name
        for klass in cls.__mro__
        for name, value in vars(klass).items()
        if isinstance(value, functools.cached_property)
    }


class _Fingerprinter:
    def __init__(self, h):
        self.h = h
        self.memo: dict[int, int] = {}
        self.alive: list = []  # keeps walked objects alive so their ids stay unique

    def put(self, *tokens) -> None:
        for token in tokens:
            data = token if isinstance(token, bytes) else str(token).encode()
            self.h.update(len(data).to_bytes(8, "little"))
            self.h.update(data)

    def walk(self, obj) -> None:  # noqa: C901 - one branch per kind of value
        if obj is None or isinstance(obj, bool | int | float | complex | str | bytes):
            self.put(type(obj).__name__, repr(obj))
            return
        if isinstance(obj, _Abstract):
            self.put("abstract", obj.shape, obj.dtype)
            return
        if id(obj) in self.memo:
            self.put("ref", self.memo[id(obj)])
            return
        self.memo[id(obj)] = len(self.memo)
        self.alive.append(obj)
        if isinstance(obj, jax.core.Tracer):
            raise NotIdentifiable("a traced value")
        if isinstance(obj, jax.Array):
            obj = np.asarray(obj)
        if isinstance(obj, np.ndarray | np.generic):
            arr = np.asarray(obj)
            self.put("ndarray", arr.dtype.str, arr.shape)
            if arr.dtype.hasobject:
                for item in arr.ravel().tolist():
                    self.walk(item)
            else:
                self.put(np.ascontiguousarray(arr).tobytes())
            return
        if isinstance(obj, type):
            self.put("type", _named_token(obj))
            return
        if isinstance(obj, enum.Enum):
            self.put("enum", _named_token(type(obj)), obj.name)
            return
        if isinstance(obj, np.dtype):
            self.put("dtype", obj.str)
            return
        if isinstance(obj, functools.partial):
            self.put("partial")
            self.walk(obj.func)
            self.walk(obj.args)
            self.walk(obj.keywords)
            return
        if isinstance(obj, types.MethodType):
            self.put("method")
            self.walk(obj.__func__)
            self.walk(obj.__self__)
            return
        if isinstance(obj, types.FunctionType):
            self._function(obj)
            return
        if callable(obj) and getattr(obj, "__qualname__", None) is not None:
            # a builtin, a ufunc, a jitted library function: found by its name
            self.put("callable", _named_token(obj))
            return
        if isinstance(obj, tuple | list):
            self.put(_named_token(type(obj)), len(obj))
            for item in obj:
                self.walk(item)
            return
        if isinstance(obj, dict | types.MappingProxyType):
            self.put(_named_token(type(obj)), len(obj))
            for k, v in obj.items():
                self.walk(k)
                self.walk(v)
            return
        if isinstance(obj, set | frozenset):
            self.put(_named_token(type(obj)), len(obj))
            for digest in sorted(fingerprint(item) for item in obj):
                self.put(digest)
            return
        if type(obj).__module__.partition(".")[0] == "pandas":
            self._pandas(obj)
            return
        self._instance(obj)

    def _function(self, fn: types.FunctionType) -> None:
        try:
            self.put("function", _named_token(fn))
        except NotIdentifiable:
            # a lambda or a local function: its code, defaults and closure
            self.put("function", _module_token(fn.__module__), fn.__qualname__)
            self._code(fn.__code__)
        self.walk(fn.__defaults__)
        self.walk(fn.__kwdefaults__)
        for cell in fn.__closure__ or ():
            self.walk(cell.cell_contents)

    def _code(self, code: types.CodeType) -> None:
        self.put("code", code.co_code, code.co_names, code.co_varnames, code.co_firstlineno)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self._code(const)
            else:
                self.walk(const)

    def _pandas(self, obj) -> None:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            self.put("DataFrame", list(map(str, obj.dtypes)))
            self.walk(list(obj.columns))
            self.walk(obj.index.to_numpy())
            for column in obj.columns:
                self.walk(obj[column].to_numpy())
            return
        if isinstance(obj, pd.Series):
            self.put("Series", str(obj.dtype), repr(obj.name))
            self.walk(obj.index.to_numpy())
            self.walk(obj.to_numpy())
            return
        if isinstance(obj, pd.Index):
            self.walk(obj.to_numpy())
            return
        raise NotIdentifiable(f"a pandas {type(obj).__name__}")

    def _instance(self, obj) -> None:
        cls = type(obj)
        self.put("instance", _named_token(cls))
        cached = _cached_names(cls)
        state: dict = {}
        if dataclasses.is_dataclass(obj):
            state.update((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
        for klass in cls.__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if hasattr(obj, slot) and slot not in ("__dict__", "__weakref__"):
                    state.setdefault(slot, getattr(obj, slot))
        if hasattr(obj, "__dict__"):
            state.update((k, v) for k, v in vars(obj).items() if k not in cached)
        elif not state and not getattr(cls, "__slots__", None):
            raise NotIdentifiable(f"a {cls.__qualname__} holds state we cannot see")
        for name in sorted(state):
            self.put(name)
            self.walk(state[name])


def identity(obj) -> str | None:
    """:func:`fingerprint` of ``obj``, or None (logged) when it has no reliable one."""
    try:
        return fingerprint(obj)
    except NotIdentifiable as err:
        log.info("not exporting the programs of %s: %s", type(obj).__qualname__, err)
        return None
    except RecursionError:
        log.info("not exporting the programs of %s: too deeply nested", type(obj).__qualname__)
        return None


def program_key(name: str, owner: str, treedef, leaves) -> str:
    """The key of the exported program of function ``name`` of an object with identity
    ``owner`` called with arguments ``jax.tree.unflatten(treedef, leaves)``."""
    abstract = jax.tree.unflatten(treedef, [_Abstract(leaf) for leaf in leaves])
    h = hashlib.sha256()
    printer = _Fingerprinter(h)
    printer.put(name, owner, source_digest(), user_sources_digest())
    printer.walk(environment())
    printer.walk(abstract)
    return h.hexdigest()


# ---------------------------------------------------------------------- storage
_warned_dirs: set[str] = set()


def _read(path: Path, key: str) -> jax.export.Exported | None:
    """The exported program stored at ``path``; None when there is none, and a warning
    when the entry cannot be used."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        warnings.warn(
            f"cannot read the exported program {str(path)!r} ({err}); tracing it again",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    problem = None
    header = len(_MAGIC) + 2 * 65
    if not blob.startswith(_MAGIC) or len(blob) < header:
        problem = "not an il6rcc exported program"
    else:
        fields = blob[len(_MAGIC) : header].decode("ascii", "replace").split("\n")
        stored_key, digest = (fields + ["", ""])[:2]
        payload = blob[header:]
        if stored_key != key:
            problem = "its key does not match its file name"
        elif hashlib.sha256(payload).hexdigest() != digest:
            problem = "its checksum does not match (truncated or corrupt)"
    if problem is None:
        try:
            exported = jax.export.deserialize(bytearray(payload))
        except Exception as err:  # noqa: BLE001 - any failure means: trace again
            problem = f"it cannot be deserialised ({type(err).__name__}: {err})"
    if problem is not None:
        warnings.warn(
            f"ignoring the exported program {str(path)!r}: {problem}; tracing it again "
            f"(the entry is replaced)",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    try:
        os.utime(path)  # least recently used entries are removed first
    except OSError:
        pass
    return exported


def _write(folder: Path, path: Path, key: str, payload: bytes) -> None:
    """Write an entry atomically (a temporary file in the same folder, then a rename)."""
    digest = hashlib.sha256(payload).hexdigest()
    blob = _MAGIC + f"{key}\n{digest}\n".encode("ascii") + payload
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        if str(folder) not in _warned_dirs:
            _warned_dirs.add(str(folder))
            warnings.warn(
                f"cannot write exported programs to {str(folder)!r} ({err}); later runs "
                f"will trace them again. Set IL6RCC_JAX_CACHE to a writable folder, or "
                f"to 'off'.",
                RuntimeWarning,
                stacklevel=4,
            )
        return
    _prune(folder)


def _prune(folder: Path, max_bytes: int = MAX_BYTES) -> None:
    """Remove the least recently used entries beyond ``max_bytes``."""
    entries = []
    for p in folder.glob(f"*{_SUFFIX}"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        p.unlink(missing_ok=True)
        total -= size


# ---------------------------------------------------------------------- the function
class PersistentFunction:
    """``jax.jit(fn)`` whose traced program is kept on disk between processes.

    Args:
        name: names the function in keys (e.g. ``value_and_grad``).
        fn: a pure JAX function of array pytrees.
        owner: returns the identity of what ``fn`` depends on besides its arguments
            (:func:`identity` of the object whose method it is), or None to jit ``fn``
            without exporting it. Called once, when first needed.

    Programs are looked up once per argument structure, shapes and dtypes. Attributes
    ``hits``, ``exports`` and ``fallbacks`` count how programs were obtained.
    """

    def __init__(self, name: str, fn: Callable, owner: Callable[[], str | None]):
        self.name = name
        self._fn = fn
        self._owner_fn = owner
        self._owner: str | None = None
        self._owner_known = False
        self._programs: dict = {}
        self._jitted = jax.jit(fn)
        self.hits = 0
        self.exports = 0
        self.fallbacks = 0

    def __call__(self, *args):
        leaves, treedef = jax.tree.flatten(args)
        leaves = [leaf if isinstance(leaf, jax.Array) else np.asarray(leaf) for leaf in leaves]
        signature = (treedef, tuple((leaf.shape, leaf.dtype) for leaf in leaves))
        program = self._programs.get(signature)
        if program is None:
            program = self._programs[signature] = self._program(treedef, leaves)
            if program is not self._jitted:
                try:  # the first call compiles the exported module
                    return program(*leaves)
                except Exception as err:  # noqa: BLE001 - never worse than plain jit
                    warnings.warn(
                        f"the exported program of {self.name} failed on its first call "
                        f"({type(err).__name__}: {err}); jitting it instead",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    self.fallbacks += 1
                    program = self._programs[signature] = self._jitted
        if program is self._jitted:
            return program(*args)
        return program(*leaves)

    def _owner_identity(self) -> str | None:
        if not self._owner_known:
            self._owner = self._owner_fn()
            self._owner_known = True
        return self._owner

    def _program(self, treedef, leaves) -> Callable:
        folder = export_cache_dir()
        owner = self._owner_identity() if folder is not None else None
        if folder is None or owner is None:
            return self._jitted
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return self._jitted  # called inside another trace: nothing to save
        try:
            key = program_key(self.name, owner, treedef, leaves)
        except NotIdentifiable as err:
            log.info("not exporting %s: %s", self.name, err)
            self.fallbacks += 1
            return self._jitted
        path = Path(folder) / f"{key}{_SUFFIX}"
        exported = _read(path, key)
        if exported is not None:
            self.hits += 1
            log.debug("%s: read %s", self.name, path)
            return jax.jit(exported.call)

        def flat(*flat_leaves):
            return self._fn(*jax.tree.unflatten(treedef, flat_leaves))

        specs = [jax.ShapeDtypeStruct(leaf.shape, leaf.dtype) for leaf in leaves]
        try:
            payload = bytes(jax.export.export(jax.jit(flat))(*specs).serialize())
            # call what a later process will read, so that both compile the same module
            # (one entry in the compilation cache serves them all)
            exported = jax.export.deserialize(bytearray(payload))
        except Exception as err:  # noqa: BLE001 - e.g. host callbacks: jit it as before
            log.info("%s cannot be exported (%s: %s); jitting it", self.name, type(err), err)
            self.fallbacks += 1
            return self._jitted
        _write(Path(folder), path, key, payload)
        self.exports += 1
        log.debug("%s: exported to %s", self.name, path)
        return jax.jit(exported.call)


__all__ = [
    "FORMAT",
    "MAX_BYTES",
    "VERSIONED",
    "NotIdentifiable",
    "PersistentFunction",
    "environment",
    "export_cache_dir",
    "fingerprint",
    "identity",
    "program_key",
    "source_digest",
    "user_sources_digest",
]
