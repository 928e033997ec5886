"""A vector layer's attribute schema: property name → type, inferred and enforced.

Properties are flat: strings, numbers, booleans, dates or null. A new property
name extends the schema; a value whose type contradicts the schema is refused.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from apps.core.errors import ApplicationError

AttributeType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
NAME_PATTERN = re.compile(r"^[^\x00-\x1f]{1,100}$")
MAX_PROPERTIES = 200
MAX_STRING = 10_000


def _looks_like(value: str) -> AttributeType:
    try:
        date.fromisoformat(value)
        return "date"
    except ValueError:
        pass
    if "T" in value:
        try:
            datetime.fromisoformat(value)
            return "datetime"
        except ValueError:
            pass
    return "string"


def value_type(value: Any) -> AttributeType | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return _looks_like(value)
    raise TypeError(type(value).__name__)


def _compatible(expected: str, found: str) -> bool:
    widening = {("number", "integer"), ("string", "date"), ("string", "datetime"), ("datetime", "date")}
    return expected == found or (expected, found) in widening


def merge_properties(schema: dict[str, str], properties: Any, *, field: str = "properties") -> dict[str, str]:
    """Validate `properties` against `schema`; return the schema extended with any new names."""
    if not isinstance(properties, dict):
        raise ApplicationError("Must be a JSON object of name → value.", field=field)
    if len(properties) > MAX_PROPERTIES:
        raise ApplicationError(f"At most {MAX_PROPERTIES} properties.", field=field)
    merged = dict(schema)
    for name, value in properties.items():
        where = f"{field}.{name}"
        if not NAME_PATTERN.match(name):
            raise ApplicationError("Property names are 1-100 printable characters.", field=where)
        try:
            found = value_type(value)
        except TypeError as exc:
            raise ApplicationError(f"Values must be scalars, not {exc}.", field=where) from None
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise ApplicationError(f"Longer than {MAX_STRING} characters.", field=where)
        if isinstance(value, float) and value != value:  # NaN
            raise ApplicationError("NaN is not a value.", field=where)
        if found is None:
            continue
        expected = merged.get(name)
        if expected is None or (expected, found) == ("integer", "number"):
            merged[name] = found  # a new attribute, or integers widened to numbers
        elif not _compatible(expected, found):
            raise ApplicationError(f"Expected {expected}, got {found} ({value!r}).", field=where)
    return merged
