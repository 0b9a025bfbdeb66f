"""From a sweep file to its elements: expand the axes, validate every element's job
config, and write each one as a self-contained config under ``DIR/_sweep/configs``.

An element is named from its axis values (``variant=socs3_stat1__seed=2``); its config
is the base config with the axis values (and ``set``) applied, every file path made
absolute, so an element runs the same from any working directory or cluster node. An
element of a ``kind: profile`` sweep (``parameter=k_a``) has a profile spec instead:
the run folder (absolute), the parameter and the profile options.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ... import _io
from ...configs import (
    ParameterAxis,
    ProfileOptions,
    RunConfig,
    SweepConfig,
    ValuesAxis,
    load_config,
    load_sweep_config,
)
from ...errors import ConfigError, Il6rccError
from ._element import META, element_paths, run_status

#: job-config keys whose values name files (relative to the file that gives them)
PATH_KEYS = ("data.tables", "data.digitised", "priors.tables", "model.name")


@dataclass(frozen=True)
class Element:
    """One element: its folder name, its axis values (label -> shown value), the job
    config keys it sets (dotted key -> value), for SBC its replicate index, and for a
    profile sweep the parameter it profiles."""

    name: str
    values: tuple[tuple[str, str], ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    sbc_replicate: int | None = None
    parameter: str | None = None


@dataclass(frozen=True)
class SweepPlan:
    """``base``: the base job config (``kind: fit``) or the run folder (``kind:
    profile``), absolute."""

    path: Path
    config: SweepConfig
    base: Path
    labels: tuple[str, ...]
    elements: tuple[Element, ...]


def _absolute(key: str, value: Any, folder: Path) -> Any:
    """A path-valued override given in the sweep file, made absolute (relative paths
    in a sweep file are relative to the sweep file's folder)."""

    def one(text: Any) -> Any:
        if not isinstance(text, str) or text.startswith("builtin:"):
            return text
        return text if Path(text).is_absolute() else str(folder / text)

    if key not in PATH_KEYS:
        return value
    if key == "model.name":
        if isinstance(value, str) and ".py:" in value:
            file_part, _, cls = value.rpartition(":")
            return f"{one(file_part)}:{cls}"
        return value
    return [one(v) for v in value] if isinstance(value, list) else value


def _axis_entries(axis) -> list[tuple[str, str, dict, int | None, str | None]]:
    """(label, shown value, job-config overrides, SBC replicate, profiled parameter)
    for each value of the axis."""
    if isinstance(axis, ValuesAxis):
        return [
            (axis.axis_label, shown, {axis.key: value}, None, None)
            for value, shown in zip(axis.values, axis.display_names(), strict=True)
        ]
    if isinstance(axis, ParameterAxis):
        return [
            (axis.axis_label, shown, {}, None, name)
            for name, shown in zip(axis.parameter, axis.display_names(), strict=True)
        ]
    return [(axis.axis_label, str(r), {}, r, None) for r in range(axis.sbc.replicates)]


def _run_folder(path: Path, cfg: SweepConfig, folder: Path) -> Path:
    """The run folder a profile sweep profiles, checked to be one."""
    run = (folder / str(cfg.run)).resolve()
    missing = [n for n in ("manifest.json", "config.yaml") if not (run / n).is_file()]
    if not run.is_dir() or missing:
        found = "not found" if not run.is_dir() else f"holds no {' or '.join(missing)}"
        raise ConfigError(
            f"{path}: key run: got {cfg.run!r} (resolved to {run}), {found}; expected the "
            "--out folder of 'il6rcc fit' or 'il6rcc petab fit' (manifest.json, config.yaml)"
        )
    return run


def plan_sweep(path: str | Path) -> SweepPlan:
    """Read a sweep file and expand its axes (nothing is written)."""
    path = Path(path)
    cfg = load_sweep_config(path)
    folder = path.resolve().parent
    if cfg.kind == "profile":
        base = _run_folder(path, cfg, folder)
    else:
        base = (folder / str(cfg.base)).resolve()
        if not base.is_file():
            raise ConfigError(f"{path}: key base: file {cfg.base!r} not found (resolved to {base})")
    entries = [_axis_entries(a) for a in cfg.axes]
    combos = itertools.product(*entries) if cfg.combine == "product" else zip(*entries, strict=True)
    common = {k: _absolute(k, v, folder) for k, v in cfg.set.items()}
    elements = []
    for combo in combos:
        overrides = dict(common)
        sbc = parameter = None
        for _, _, o, r, par in combo:
            overrides.update({k: _absolute(k, v, folder) for k, v in o.items()})
            sbc = r if r is not None else sbc
            parameter = par if par is not None else parameter
        values = tuple((label, shown) for label, shown, *_ in combo)
        name = "__".join(f"{label}={shown}" for label, shown in values)
        elements.append(Element(name, values, overrides, sbc, parameter))
    names = [el.name for el in elements]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"{path}: key axes: several elements get the same folder name ({', '.join(repeated)}); "
            "give each axis distinct 'names' for its values"
        )
    return SweepPlan(
        path=path,
        config=cfg,
        base=base,
        labels=tuple(a.axis_label for a in cfg.axes),
        elements=tuple(elements),
    )


def element_config(plan: SweepPlan, element: Element, extra: Mapping[str, Any] = ()) -> dict:
    """The element's validated job config, every path absolute (raises ConfigError)."""
    from ..fit import _resolved_config

    loaded = load_config(plan.base, {**element.overrides, **dict(extra)})
    return _resolved_config(loaded)


def profile_spec(plan: SweepPlan, element: Element) -> dict:
    """What a profile element runs: ``il6rcc profile RUN --parameters NAME`` with the
    sweep's profile options (the element's config file)."""
    options = plan.config.profile or ProfileOptions()
    return {
        "kind": "profile",
        "run": str(plan.base),
        "parameter": element.parameter,
        "grid": options.grid,
        "max_points": options.max_points,
    }


def validate(plan: SweepPlan, extra: Mapping[str, Mapping[str, Any]] = ()) -> dict[str, str]:
    """Every element's config as YAML text; ConfigError with all problems at once.
    ``extra``: further overrides per element name (the SBC data tables). A profile
    element's parameter name is checked when it runs (an unknown one fails that
    element, recorded in sweep.csv), since checking it here means building the run's
    posterior in the driver."""
    if plan.config.kind == "profile":
        return {
            el.name: yaml.safe_dump(profile_spec(plan, el), sort_keys=True) for el in plan.elements
        }
    extra = dict(extra)
    problems: list[str] = []
    texts: dict[str, str] = {}
    for el in plan.elements:
        try:
            cfg = element_config(plan, el, extra.get(el.name, {}))
        except Il6rccError as err:
            for line in str(err).splitlines():
                text = f"{plan.path}: element {el.name}: {line}"
                if text not in problems:
                    problems.append(text)
            continue
        texts[el.name] = yaml.safe_dump(cfg, sort_keys=True)
    if problems:
        raise ConfigError("\n".join(problems))
    return texts


def same_config(old_text: str, new_text: str) -> bool:
    """Whether an element config written by an earlier run of the sweep says what
    ``new_text`` says. Both are read through the current schema, so a key that a later
    il6rcc added with a default (and an earlier one therefore did not write) is not a
    change; any value that differs is. Profile specs, which are not job configs, are
    compared as text."""
    if old_text == new_text:
        return True
    try:
        old = RunConfig.model_validate(yaml.safe_load(old_text))
        new = RunConfig.model_validate(yaml.safe_load(new_text))
    except (ValueError, TypeError, yaml.YAMLError):
        return False
    return old.model_dump(mode="json") == new.model_dump(mode="json")


def prepare(plan: SweepPlan, out: Path, extra: Mapping[str, Mapping[str, Any]] = ()) -> None:
    """Validate every element's config, check that the elements already run under
    ``out`` were run with the same configs, then write the element configs and
    ``out/_sweep/sweep.yaml``."""
    texts = validate(plan, extra)
    changed = []
    for el in plan.elements:
        p = element_paths(out, el.name)
        if p["config"].is_file() and run_status(p["run"]) != "pending":
            if not same_config(p["config"].read_text(), texts[el.name]):
                changed.append(el.name)
    if changed:
        raise ConfigError(
            f"{plan.path}: elements already run under {out} with a different config (the "
            f"sweep file or its base config changed since): {', '.join(changed)}; give a "
            f"new --out, or delete those run folders to run them again"
        )
    for el in plan.elements:
        _io.write_text(element_paths(out, el.name)["config"], texts[el.name])
    record = {
        "sweep_file": str(plan.path.resolve()),
        "base": str(plan.base),
        "elements": [el.name for el in plan.elements],
        "config": plan.config.model_dump(mode="json"),
    }
    _io.write_text(Path(out) / META / "sweep.yaml", yaml.safe_dump(record, sort_keys=False))


__all__ = [
    "PATH_KEYS",
    "Element",
    "SweepPlan",
    "element_config",
    "plan_sweep",
    "prepare",
    "profile_spec",
    "validate",
]
