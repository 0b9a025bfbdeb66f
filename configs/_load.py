"""Load a YAML job config into a frozen :class:`RunConfig`, reporting every problem.

Composition: a file may name a base with ``extends: base.yaml`` (a path relative to
the file) or ``extends: il6rcc:default`` (a config shipped with il6rcc, e.g.
``il6rcc:variants/main``), or a list of bases applied in order; mappings merge key by
key, anything else replaces. Command-line overrides are merged last. Only
``yaml.safe_load`` is used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError, ModelSpecError
from ._schema import EVIDENCE_ONLY, RunConfig

#: Folder of the configs shipped with il6rcc.
SHIPPED = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with where it came from.

    ``path``: the file given; ``base_dir``: its folder (relative paths in the config are
    resolved against it); ``files``: every file read (bases first); ``sha256``: hash of
    the canonical JSON of the validated config (equal configs hash equal whatever their
    YAML layout); ``overrides``: the command-line overrides applied.
    """

    config: RunConfig
    path: Path
    base_dir: Path
    files: tuple[Path, ...]
    sha256: str
    overrides: Mapping[str, Any]

    def resolve(self, relative: str) -> Path:
        """A path from the config, resolved against the config's folder."""
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p


def _merge(base: dict, top: Mapping) -> dict:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a config must be a mapping of sections, got {type(data).__name__}"
        )
    return data


def _compose(path: Path, seen: tuple[Path, ...]) -> tuple[dict, list[Path]]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"{path}: 'extends' forms a cycle: {chain}")
    data = _read_yaml(path)
    bases = data.pop("extends", [])
    if isinstance(bases, str):
        bases = [bases]
    if not (isinstance(bases, list) and all(isinstance(b, str) for b in bases)):
        raise ConfigError(f"{path}: key extends: expected a file name or a list of them")
    merged: dict = {}
    files: list[Path] = []
    for base in bases:
        base_data, base_files = _compose(_base_path(path, base), (*seen, path))
        merged = _merge(merged, base_data)
        files.extend(base_files)
    files.append(path)
    return _merge(merged, data), files


#: Prefix of a shipped config in ``extends``.
SHIPPED_PREFIX = "il6rcc:"


def _base_path(path: Path, base: str) -> Path:
    """The file an ``extends`` entry names: ``il6rcc:NAME`` is the shipped
    ``NAME.yaml``; anything else is relative to the extending file's folder."""
    if not base.startswith(SHIPPED_PREFIX):
        return path.parent / base
    name = base[len(SHIPPED_PREFIX) :]
    shipped = SHIPPED / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if not shipped.resolve().is_relative_to(SHIPPED) or not shipped.is_file():
        valid = sorted(
            p.relative_to(SHIPPED).with_suffix("").as_posix()
            for p in [*SHIPPED.glob("*.yaml"), *SHIPPED.glob("variants/*.yaml")]
        )
        raise ConfigError(
            f"{path}: key extends: no shipped config {base!r}; valid: "
            + ", ".join(f"il6rcc:{v}" for v in valid)
        )
    return shipped


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def format_validation_error(source: str, err: ValidationError) -> str:
    """One line per problem: file, dotted key, value received, what was expected."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not str(x).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            lines.append(f"{source}: key {loc}: unknown key (value {_describe(e['input'])})")
        elif e["type"] == "missing":
            lines.append(f"{source}: key {loc}: required key is missing")
        else:
            lines.append(f"{source}: key {loc}: got {_describe(e['input'])}; {msg}")
    return "\n".join(lines)


def config_hash(config: RunConfig) -> str:
    dump = config.model_dump(mode="json")
    if dump.get("cpu_devices") is None:
        # Added after runs were started: left out when not set, so that their
        # config.yaml hashes as before and they can still be resumed.
        dump.pop("cpu_devices", None)
    canonical = json.dumps(dump, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Read, compose, override and validate a config; raise :class:`ConfigError` with
    every problem found (schema, names, files) in one message."""
    path = Path(path)
    data, files = _compose(path, ())
    overrides = dict(overrides or {})
    for dotted, value in overrides.items():
        node: dict = {}
        cursor = node
        keys = dotted.split(".")
        for k in keys[:-1]:
            cursor = cursor.setdefault(k, {})
        cursor[keys[-1]] = value
        data = _merge(data, node)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(str(path), err)) from None
    loaded = LoadedConfig(
        config=config,
        path=path,
        base_dir=path.resolve().parent,
        files=tuple(files),
        sha256=config_hash(config),
        overrides=overrides,
    )
    check_references(loaded)
    return loaded


def check_references(loaded: LoadedConfig) -> None:
    """Checks that need the model or the file system, all reported together."""
    from ..models import load_model

    cfg = loaded.config
    src = str(loaded.path)
    if cfg.model.petab is not None:
        check_petab_config(loaded)
        return
    problems: list[str] = []
    try:
        variant = cfg.model.variant
        model = load_model(
            cfg.model.name,
            variant if isinstance(variant, str) else variant.model_dump(),
            base_dir=loaded.base_dir,
        )
    except ModelSpecError as err:
        raise ConfigError(f"{src}: key model: {err}") from None
    params = set(model.parameter_names)
    inputs = {u.name for u in model.inputs if not u.phase}
    for key, names in (
        ("priors.estimate", cfg.priors.estimate),
        ("priors.cell_line_specific", cfg.priors.cell_line_specific),
        ("priors.overrides", list(cfg.priors.overrides)),
    ):
        for n in names:
            if n not in params:
                problems.append(
                    f"{src}: key {key}: unknown parameter {n!r} of model {model.name!r}"
                )
    cell_lines = set(model.cell_line_names) | {a for c in model.cell_lines for a in c.aliases}
    lines_used = (
        [("simulate.experiments", e.cell_line) for e in cfg.simulate.experiments]
        + [("data.cell_lines", c) for c in cfg.data.cell_lines]
        + [("predict.cell_lines", c) for c in cfg.predict.cell_lines]
        + [(f"predict.custom[{c.label!r}].cell_line", c.cell_line) for c in cfg.predict.custom]
    )
    for key, line in lines_used:
        if line not in cell_lines:
            problems.append(
                f"{src}: key {key}: unknown cell line {line!r}; valid: "
                f"{', '.join(sorted(model.cell_line_names))}"
            )
    for e in cfg.simulate.experiments:
        for name, dose in e.perturbations.items():
            if name not in inputs:
                problems.append(
                    f"{src}: key simulate.experiments[{e.id}].perturbations: unknown "
                    f"perturbation {name!r}; valid: {', '.join(sorted(inputs))}"
                )
            elif dose < 0:
                problems.append(
                    f"{src}: key simulate.experiments[{e.id}].perturbations.{name}: got "
                    f"{dose!r}; expected a dose >= 0"
                )
    problems += _schedule_problems(loaded, model)
    observables = set(model.observable_names)
    for c in cfg.predict.custom:
        key = f"predict.custom[{c.label!r}]"
        for part, given in (("inputs", c.inputs), ("control", c.control or {})):
            for name in given:
                if name not in inputs:
                    problems.append(
                        f"{src}: key {key}.{part}: unknown perturbation {name!r}; valid: "
                        f"{', '.join(sorted(inputs))}"
                    )
        if c.observable not in observables:
            problems.append(
                f"{src}: key {key}.observable: unknown observable {c.observable!r}; valid: "
                f"{', '.join(sorted(observables))}"
            )
    for panel in cfg.simulate.panels:
        if panel.observable not in observables:
            problems.append(
                f"{src}: key simulate.panels[{panel.title!r}].observable: unknown observable "
                f"{panel.observable!r}; valid: {', '.join(sorted(observables))}"
            )
    if cfg.model.name == "rcc_circuit" and cfg.predict.tki not in (
        "sorafenib",
        "sunitinib",
        "pazopanib",
    ):
        problems.append(
            f"{src}: key predict.tki: got {cfg.predict.tki!r}; expected one of "
            f"'pazopanib', 'sorafenib', 'sunitinib'"
        )
    for key, files in (
        ("data.tables", cfg.data.tables),
        ("data.digitised", cfg.data.digitised),
        ("priors.tables", [t for t in cfg.priors.tables if not t.startswith("builtin:")]),
    ):
        for f in files:
            if not loaded.resolve(f).is_file():
                problems.append(
                    f"{src}: key {key}: file {f!r} not found (resolved to {loaded.resolve(f)})"
                )
    if problems:
        raise ConfigError("\n".join(problems))


def _schedule_problems(loaded: LoadedConfig, model) -> list[str]:
    """The model-dependent problems of every dosing schedule of the config (unknown
    states or inputs, pre-treatment inputs, overlapping exposures, an input both
    constant and scheduled): the simulator's own checks, at the schedule's key."""
    from ..models import schedule_problems

    cfg = loaded.config
    src = str(loaded.path)
    problems: list[str] = []
    for e in cfg.simulate.experiments:
        if e.schedule is not None:
            where = f"{src}: key simulate.experiments[{e.id}].schedule"
            problems += schedule_problems(model, e.to_condition(), where)
    for c in cfg.predict.custom:
        if c.schedule is not None:
            where = f"{src}: key predict.custom[{c.label!r}].schedule"
            problems += schedule_problems(model, c.to_conditions(c.label, c.cell_line)[0], where)
    return problems


def check_petab_config(loaded: LoadedConfig) -> None:
    """A PEtab job: the problem file exists, and no section that only a model fitted to
    evidence tables uses is given (all reported together)."""
    cfg = loaded.config
    src = str(loaded.path)
    problems = [
        f"{src}: key {key}: not used with a PEtab problem (model.petab brings its own "
        f"model, data and priors); remove it"
        for key in EVIDENCE_ONLY
        if key in cfg.model_fields_set
    ]
    problem_file = loaded.resolve(cfg.model.petab)
    if not problem_file.is_file():
        problems.append(
            f"{src}: key model.petab: file {cfg.model.petab!r} not found (resolved to "
            f"{problem_file}); expected a PEtab problem YAML"
        )
    if problems:
        raise ConfigError("\n".join(problems))


def model_from_config(loaded: LoadedConfig):
    """The model named by a validated config."""
    from ..models import load_model

    variant = loaded.config.model.variant
    return load_model(
        loaded.config.model.name,
        variant if isinstance(variant, str) else variant.model_dump(),
        base_dir=loaded.base_dir,
    )


def solver_from_config(loaded: LoadedConfig, default=None):
    """The :class:`il6rcc.models.SolverSettings` of a validated config; when it gives
    none, ``default`` (the model's own: a PEtab problem passes the tolerances of its
    reference values) or the library's defaults."""
    from ..models import SolverSettings

    if loaded.config.solver is not None:
        return loaded.config.solver
    return default if default is not None else SolverSettings()


def shipped_config(name: str) -> Path:
    """Path of a config shipped with il6rcc (e.g. ``default.yaml``)."""
    return SHIPPED / name


__all__ = [
    "SHIPPED",
    "SHIPPED_PREFIX",
    "check_petab_config",
    "LoadedConfig",
    "config_hash",
    "format_validation_error",
    "load_config",
    "model_from_config",
    "shipped_config",
    "solver_from_config",
]
