"""The shared filter vocabulary (apps/layers/filters.py) translated to point-table columns.

A condition translates only when its result is the same row for row as the
fallback's jsonb condition: numbers (stored as float8, NULL when the value is not
a JSON number, which the fallback's jsonb_typeof guard also rejects) and dates
(stored as YYYYMMDD when all of the layer's are canonical ISO dates, whose text
order the fallback compares) with every operator but `isnull` (the table cannot
tell a JSON null from a missing key), and strings (dictionary codes of their `->>`
text) with every operator but `isnull`: a range picks the codes whose dictionary
value satisfies it, compared in SQL, so under the database's own collation.
Column names come only from the build's own slot mapping; values are bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apps.layers.filters import NUMERIC, Condition

_COMPARISON_SQL = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
SLOTS = frozenset({"n0", "n1", "n2", "n3", "n4", "n5", "c0", "c1", "c2", "c3"})
# A value missing from the dictionary matches no row's code.
_CODE_SQL = (
    "coalesce((SELECT d.code FROM tiles_clusterpointcode d WHERE d.layer_id = %(layer)s"
    " AND d.slot = {slot_number} AND d.value = {value}), -1)"
)
_CODES_SQL = (
    "ARRAY(SELECT d.code FROM tiles_clusterpointcode d WHERE d.layer_id = %(layer)s"
    " AND d.slot = {slot_number} AND d.value = ANY({values}::text[]))"
)


# The codes of the dictionary values a range admits (at most MAX_CODES of them).
_RANGE_CODES_SQL = (
    "ARRAY(SELECT d.code FROM tiles_clusterpointcode d WHERE d.layer_id = %(layer)s"
    " AND d.slot = {slot_number} AND d.value {satisfied})"
)


def _numeric_sql(
    column: str, condition: Condition, bind: Callable[[Any], str], number: Callable[[Any], float] = float
) -> str | None:
    if condition.operator == "in":
        return f"p.{column} = ANY({bind([number(v) for v in condition.value])}::float8[])"
    if condition.operator in _COMPARISON_SQL:
        return f"p.{column} {_COMPARISON_SQL[condition.operator]} {bind(number(condition.value))}::float8"
    return None


def day_number(iso_date: str) -> float:
    return float(iso_date.replace("-", ""))  # the build's replace(value, '-', '')::float8


def _code_sql(column: str, condition: Condition, bind: Callable[[Any], str]) -> str | None:
    slot_number = int(column[1:])
    if condition.operator == "in":
        values = bind([str(v) for v in condition.value])
        return f"p.{column} = ANY({_CODES_SQL.format(slot_number=slot_number, values=values)})"
    if condition.operator in ("eq", "ne"):
        code = _CODE_SQL.format(slot_number=slot_number, value=bind(str(condition.value)))
        return f"p.{column} {_COMPARISON_SQL[condition.operator]} {code}"
    if condition.operator in _COMPARISON_SQL:
        satisfied = f"{_COMPARISON_SQL[condition.operator]} {bind(str(condition.value))}"
        return f"p.{column} = ANY({_RANGE_CODES_SQL.format(slot_number=slot_number, satisfied=satisfied)})"
    return None


def _condition_sql(condition: Condition, columns: Mapping[str, Any], bind: Callable[[Any], str]) -> str | None:
    mapping = columns.get(condition.attribute)
    if not mapping or mapping.get("slot") not in SLOTS:
        return None
    column = mapping["slot"]
    if mapping["kind"] == "number" and condition.attribute_type in NUMERIC:
        return _numeric_sql(column, condition, bind)
    if mapping["kind"] == "date" and condition.attribute_type == "date":
        return _numeric_sql(column, condition, bind, number=day_number)
    if mapping["kind"] == "code" and condition.attribute_type == "string":
        return _code_sql(column, condition, bind)
    return None


def point_filters_sql(
    conditions: tuple[Condition, ...], columns: Mapping[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """` AND …` fragments over the point table `p`, or None when any condition cannot be expressed on it."""
    params: dict[str, Any] = {}

    def bind(value: Any) -> str:
        key = f"pfilter{len(params)}"
        params[key] = value
        return f"%({key})s"

    fragments = []
    for condition in conditions:
        fragment = _condition_sql(condition, columns, bind)
        if fragment is None:
            return None
        fragments.append(f" AND {fragment}")
    return "".join(fragments), params
