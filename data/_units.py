"""Units accepted in the data tables and their conversion to the model's units.

Only conversions within one dimension are made (nM -> uM, ng/mL -> pg/mL, % -> 1).
Mass and molar concentrations are never converted into each other: that needs a
molecular weight the sources rarely give (e.g. tocilizumab's), so a dose in the
wrong dimension is a lint error, not a silent guess.
"""

from __future__ import annotations

#: unit -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    # molar concentration (base: M)
    "M": ("molar", 1.0),
    "mM": ("molar", 1e-3),
    "uM": ("molar", 1e-6),
    "µM": ("molar", 1e-6),
    "nM": ("molar", 1e-9),
    "pM": ("molar", 1e-12),
    # mass concentration (base: g/mL)
    "g/mL": ("mass_concentration", 1.0),
    "mg/mL": ("mass_concentration", 1e-3),
    "ug/mL": ("mass_concentration", 1e-6),
    "µg/mL": ("mass_concentration", 1e-6),
    "ng/mL": ("mass_concentration", 1e-9),
    "pg/mL": ("mass_concentration", 1e-12),
    # activity concentration
    "IU/mL": ("activity_concentration", 1.0),
    # volume (base: mm3)
    "mm3": ("volume", 1.0),
    "cm3": ("volume", 1e3),
    # rates (base: 1/h)
    "1/h": ("rate", 1.0),
    "1/min": ("rate", 60.0),
    "1/d": ("rate", 1.0 / 24.0),
    # dimensionless (base: 1)
    "1": ("dimensionless", 1.0),
    "%": ("dimensionless", 0.01),
    "fold": ("dimensionless", 1.0),
    # relative, arbitrary units
    "a.u.": ("arbitrary", 1.0),
    # on/off perturbations
    "indicator": ("indicator", 1.0),
}


def known_units() -> tuple[str, ...]:
    """All unit spellings the tables accept."""
    return tuple(_UNITS)


def dimension(unit: str) -> str | None:
    """The dimension of ``unit`` (None when the unit is unknown)."""
    entry = _UNITS.get(unit)
    return entry[0] if entry else None


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Factor f with ``value[to_unit] = f * value[from_unit]``.

    Raises:
        ValueError: a unit is unknown, or the two are of different dimensions.
    """
    for unit in (from_unit, to_unit):
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r}; known: {', '.join(_UNITS)}")
    dim_from, f_from = _UNITS[from_unit]
    dim_to, f_to = _UNITS[to_unit]
    if dim_from != dim_to:
        raise ValueError(
            f"unit {from_unit!r} ({dim_from.replace('_', ' ')}) cannot be converted to "
            f"{to_unit!r} ({dim_to.replace('_', ' ')})"
        )
    return f_from / f_to


__all__ = ["conversion_factor", "dimension", "known_units"]
