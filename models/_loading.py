"""Find a model by name, or in a user's Python file (``path/to/file.py:ClassName``)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import ModelSpecError, choices
from ._model import ODEModel
from .circuit import VARIANTS, RCCCircuit
from .examples import InducibleGene, LinearDecay, LinearTwoState

BUILTIN_MODELS: dict[str, type[ODEModel]] = {
    "rcc_circuit": RCCCircuit,
    "linear_decay": LinearDecay,
    "linear_two_state": LinearTwoState,
    "inducible_gene": InducibleGene,
}


def _load_from_file(spec: str, base_dir: Path | None) -> type[ODEModel]:
    file_part, _, class_name = spec.rpartition(":")
    path = Path(file_part)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise ModelSpecError(
            f"model {spec!r}: file {str(path)!r} does not exist; expected "
            f"'path/to/file.py:ClassName' (relative paths are taken from the config's folder)"
        )
    module_name = f"il6rcc_user_model_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelSpecError(f"model {spec!r}: cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # the user's file failed: say where, keep the cause
        del sys.modules[module_name]
        raise ModelSpecError(f"model {spec!r}: importing {str(path)!r} failed: {err}") from err
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, ODEModel)):
        found = [
            n
            for n, c in vars(module).items()
            if inspect.isclass(c) and issubclass(c, ODEModel) and c is not ODEModel
        ]
        raise ModelSpecError(
            f"model {spec!r}: {str(path)!r} has no ODEModel subclass {class_name!r}; "
            f"found: {choices(found) or 'none'}"
        )
    return cls


def load_model(
    spec: str,
    variant: str | Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> ODEModel:
    """Build a model.

    Args:
        spec: a built-in name (see :data:`BUILTIN_MODELS`) or ``path/to/file.py:ClassName``.
        variant: for the circuit, a name from :data:`VARIANTS` or a mapping of its
            components (see :data:`il6rcc.models.circuit.COMPONENTS`); for other
            models, a mapping of their dataclass fields (or None).
        base_dir: folder that relative file paths are resolved against.
    """
    if spec.endswith(".py") or ".py:" in spec:
        if ":" not in spec:
            raise ModelSpecError(f"model {spec!r}: expected 'path/to/file.py:ClassName'")
        cls = _load_from_file(spec, base_dir)
    elif spec in BUILTIN_MODELS:
        cls = BUILTIN_MODELS[spec]
    else:
        raise ModelSpecError(
            f"unknown model {spec!r}; valid: {choices(BUILTIN_MODELS)} or "
            f"'path/to/file.py:ClassName'"
        )
    if cls is RCCCircuit:
        if variant is None or isinstance(variant, str):
            model = RCCCircuit.variant(variant or "main")
        else:
            model = RCCCircuit(**dict(variant))
    else:
        if isinstance(variant, str) and variant not in ("", "main"):
            raise ModelSpecError(
                f"model {spec!r} has no named variants (got {variant!r}); circuit variants: "
                f"{choices(VARIANTS)}"
            )
        try:
            model = cls(**dict(variant)) if isinstance(variant, Mapping) else cls()
        except TypeError as err:
            raise ModelSpecError(f"model {spec!r}: cannot build with {variant!r}: {err}") from err
    model.validate()
    return model


__all__ = ["BUILTIN_MODELS", "load_model"]
