"""Reading a PEtab v1 problem: the YAML file and its tables, as pandas DataFrames.

pandas stays here and in :mod:`._lint`; :mod:`._problem` turns the tables into arrays
once. Column names are the PEtab spellings from ``petab.v1.C``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import petab.v1 as petab
import yaml
from petab.v1 import C

from ..errors import PetabError

#: PEtab format versions this reader accepts.
SUPPORTED_FORMAT_VERSIONS = ("1", "1.0.0", "1.0", 1)


@dataclass(frozen=True, eq=False)
class PetabTables:
    """The files of one PEtab problem, read but not yet checked.

    Attributes:
        yaml_path: the problem's YAML file.
        sbml_path: the SBML model file.
        condition, measurement, observable, parameter: the tables (``petab.v1``
            layouts: conditions indexed by ``conditionId``, observables by
            ``observableId``, parameters by ``parameterId``; measurements keep their
            row order with a RangeIndex).
        condition_file, measurement_file, observable_file, parameter_file: file names
            used in error messages (joined with ``+`` when a problem lists several).
        measurement_lines: [n_measurements] line of each measurement in its file (the
            header is line 1), for error messages.
    """

    yaml_path: Path
    sbml_path: Path
    condition: pd.DataFrame
    measurement: pd.DataFrame
    observable: pd.DataFrame
    parameter: pd.DataFrame
    condition_file: str
    measurement_file: str
    observable_file: str
    parameter_file: str
    measurement_lines: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.yaml_path.stem


def _as_list(value, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise PetabError(f"{where}: {key!r} must be a file name or a list of file names, got {value!r}")


def _read(reader, paths: list[Path], kind: str):
    frames = []
    for path in paths:
        if not path.is_file():
            raise PetabError(f"{kind} file {str(path)!r} does not exist")
        try:
            frames.append(reader(path))
        except (AssertionError, KeyError, ValueError, pd.errors.ParserError) as err:
            raise PetabError(f"{path.name}: cannot read the {kind} table: {err}") from err
    return frames


def read_tables(yaml_path: str | Path) -> PetabTables:
    """Read a PEtab v1 problem's YAML file and the tables it lists.

    Only single-model problems are supported (one entry under ``problems`` with one
    SBML file). Raises :class:`PetabError` naming the file and what was expected.
    """
    yaml_path = Path(yaml_path)
    if not yaml_path.is_file():
        raise PetabError(f"PEtab problem file {str(yaml_path)!r} does not exist")
    try:
        with yaml_path.open(encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as err:
        raise PetabError(f"{yaml_path.name}: not a readable YAML file: {err}") from err
    where = yaml_path.name
    if not isinstance(config, dict):
        raise PetabError(f"{where}: expected a mapping with 'format_version' and 'problems'")
    version = config.get(C.FORMAT_VERSION)
    if version not in SUPPORTED_FORMAT_VERSIONS and str(version) not in SUPPORTED_FORMAT_VERSIONS:
        raise PetabError(
            f"{where}: format_version {version!r} is not supported; expected PEtab v1 "
            f"(format_version: 1)"
        )
    problems = config.get(C.PROBLEMS)
    if not isinstance(problems, list) or len(problems) != 1 or not isinstance(problems[0], dict):
        raise PetabError(f"{where}: expected exactly one entry under 'problems'")
    entry = problems[0]
    base = yaml_path.parent
    sbml = _as_list(entry.get(C.SBML_FILES), C.SBML_FILES, where)
    if len(sbml) != 1:
        raise PetabError(f"{where}: expected exactly one file in 'sbml_files', got {sbml!r}")
    files = {}
    for key in (C.CONDITION_FILES, C.MEASUREMENT_FILES, C.OBSERVABLE_FILES):
        names = _as_list(entry.get(key), key, where)
        if not names:
            raise PetabError(f"{where}: '{key}' lists no file")
        files[key] = names
    parameter_files = _as_list(config.get(C.PARAMETER_FILE), C.PARAMETER_FILE, where)
    if not parameter_files:
        raise PetabError(f"{where}: 'parameter_file' is missing")
    if entry.get(C.MAPPING_FILES):
        raise PetabError(f"{where}: mapping tables ('mapping_files') are not supported")

    def paths(names):
        return [base / n for n in names]

    conditions = _read(petab.get_condition_df, paths(files[C.CONDITION_FILES]), "condition")
    measurements = _read(petab.get_measurement_df, paths(files[C.MEASUREMENT_FILES]), "measurement")
    observables = _read(petab.get_observable_df, paths(files[C.OBSERVABLE_FILES]), "observable")
    parameters = _read(petab.get_parameter_df, paths(parameter_files), "parameter")
    lines = []
    for name, frame in zip(files[C.MEASUREMENT_FILES], measurements, strict=True):
        lines.extend(f"{name} line {i + 2}" for i in range(len(frame)))
    sbml_path = base / sbml[0]
    if not sbml_path.is_file():
        raise PetabError(f"{where}: SBML file {str(sbml_path)!r} does not exist")
    return PetabTables(
        yaml_path=yaml_path,
        sbml_path=sbml_path,
        condition=pd.concat(conditions) if len(conditions) > 1 else conditions[0],
        measurement=pd.concat(measurements, ignore_index=True),
        observable=pd.concat(observables) if len(observables) > 1 else observables[0],
        parameter=pd.concat(parameters) if len(parameters) > 1 else parameters[0],
        condition_file="+".join(files[C.CONDITION_FILES]),
        measurement_file="+".join(files[C.MEASUREMENT_FILES]),
        observable_file="+".join(files[C.OBSERVABLE_FILES]),
        parameter_file="+".join(parameter_files),
        measurement_lines=tuple(lines),
    )


def split_overrides(cell) -> list[str | float]:
    """The entries of an ``observableParameters`` or ``noiseParameters`` cell: numbers
    as floats, parameter ids as stripped strings; an empty cell gives ``[]``."""
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return []
    if isinstance(cell, int | float):
        return [float(cell)]
    out: list[str | float] = []
    for part in str(cell).split(C.PARAMETER_SEPARATOR):
        part = part.strip()
        try:
            out.append(float(part))
        except ValueError:
            out.append(part)
    return out


def cell_is_empty(cell) -> bool:
    """True for a missing value (NaN, None or an empty string)."""
    if cell is None:
        return True
    if isinstance(cell, str):
        return not cell.strip()
    try:
        return bool(pd.isna(cell))
    except (TypeError, ValueError):
        return False


__all__ = ["PetabTables", "cell_is_empty", "read_tables", "split_overrides"]
