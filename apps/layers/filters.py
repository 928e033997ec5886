"""The attribute filter vocabulary shared by tiles, the viewport API and feature lists.

`?price__gte=300000&bedrooms__gte=3&status=active&listed_at__gte=2026-01-01`

Every attribute must be in the layer's attribute schema, every operator must
suit the attribute's type, and every value must parse as that type; anything
else is a 400 naming the parameter. Names and values reach SQL only as bound
parameters — the SQL fragments below are fixed text chosen by operator.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from apps.core.errors import ApplicationError

# Query parameters that are not attribute filters.
RESERVED_PARAMS = frozenset(
    {"share_token", "v", "map", "format", "bbox", "cursor", "page_size", "zoom", "west", "south", "east", "north"}
)
MAX_FILTERS = 20
MAX_IN_VALUES = 100

NUMERIC = frozenset({"integer", "number"})
ORDERED = NUMERIC | {"date", "datetime", "string"}
OPERATORS: dict[str, frozenset[str]] = {
    "eq": frozenset({"string", "integer", "number", "boolean", "date", "datetime"}),
    "ne": frozenset({"string", "integer", "number", "boolean", "date", "datetime"}),
    "gt": ORDERED,
    "gte": ORDERED,
    "lt": ORDERED,
    "lte": ORDERED,
    "in": frozenset({"string", "integer", "number", "date"}),
    "isnull": frozenset({"string", "integer", "number", "boolean", "date", "datetime"}),
}
_COMPARISON_SQL = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class Condition:
    attribute: str
    operator: str
    attribute_type: str
    value: Any  # already parsed to the attribute's type (a tuple for `in`)

    def sql(self, bind: Callable[[Any], str], table: str = "f") -> str:
        """A WHERE fragment over `<table>.properties`; `bind(value)` returns a placeholder for a bound value.

        Only bound values vary: the fragment's text is chosen by operator and type.
        """
        props = f"{table}.properties"
        name = bind(self.attribute)
        if self.operator == "isnull":
            fragment = f"({props} ? {name})"
            return f"NOT {fragment}" if self.value else fragment
        if self.attribute_type in NUMERIC:
            # A stray non-number (imported data) compares as NULL, so no operator matches it. A CASE,
            # not an AND: PostgreSQL may evaluate AND's operands in any order, and the cast of a
            # JSON string or null is an error, not NULL.
            value = f"({props} -> {bind(self.attribute)})"
            lhs = f"(CASE WHEN jsonb_typeof({props} -> {name}) = 'number' THEN {value}::numeric END)"
        elif self.attribute_type == "boolean":
            lhs = f"({props} -> {name})"
        else:  # strings and ISO dates compare as text
            lhs = f"({props} ->> {name})"
        if self.operator == "in":
            cast = "::numeric[]" if self.attribute_type in NUMERIC else "::text[]"
            return f"({lhs} = ANY({bind(list(self.value))}{cast}))"
        if self.attribute_type == "boolean":
            return f"({lhs} {_COMPARISON_SQL[self.operator]} {bind(json.dumps(self.value))}::jsonb)"
        return f"({lhs} {_COMPARISON_SQL[self.operator]} {bind(self.value)})"


def _parse_value(raw: str, attribute_type: str, name: str) -> Any:
    try:
        if attribute_type == "integer":
            return int(raw)
        if attribute_type == "number":
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        if attribute_type == "boolean":
            if raw not in ("true", "false"):
                raise ValueError
            return raw == "true"
        if attribute_type == "date":
            return date.fromisoformat(raw).isoformat()
        if attribute_type == "datetime":
            return datetime.fromisoformat(raw).isoformat()
    except ValueError:
        raise ApplicationError(f"Expected {attribute_type}, got {raw!r}.", field=name) from None
    if len(raw) > 500:
        raise ApplicationError("At most 500 characters.", field=name)
    return raw


def _condition(name: str, raw: str, schema: Mapping[str, str]) -> Condition:
    attribute, _, operator = name.rpartition("__") if "__" in name else (name, "", "eq")
    attribute_type = schema.get(attribute)
    if attribute_type is None:
        known = ", ".join(sorted(schema)[:20]) or "none"
        raise ApplicationError(f"Unknown attribute {attribute!r} (this layer has: {known}).", field=name)
    if operator not in OPERATORS:
        raise ApplicationError(f"Unknown operator {operator!r}; use one of {', '.join(OPERATORS)}.", field=name)
    if attribute_type not in OPERATORS[operator]:
        raise ApplicationError(f"Operator {operator!r} does not apply to a {attribute_type}.", field=name)
    if operator == "isnull":
        return Condition(attribute, operator, attribute_type, _parse_value(raw, "boolean", name))
    if operator == "in":
        values = [v for v in raw.split(",") if v != ""]
        if not 1 <= len(values) <= MAX_IN_VALUES:
            raise ApplicationError(f"Give 1 to {MAX_IN_VALUES} comma-separated values.", field=name)
        return Condition(
            attribute, operator, attribute_type, tuple(_parse_value(v, attribute_type, name) for v in values)
        )
    return Condition(attribute, operator, attribute_type, _parse_value(raw, attribute_type, name))


def parse_filters(
    params: Mapping[str, str], schema: Mapping[str, str], *, extra_reserved: frozenset[str] | set[str] = frozenset()
) -> tuple[Condition, ...]:
    """Attribute conditions from query parameters, validated against the layer's schema."""
    names = sorted(name for name in params if name not in RESERVED_PARAMS and name not in extra_reserved)
    if len(names) > MAX_FILTERS:
        raise ApplicationError(f"At most {MAX_FILTERS} filters.", field=names[MAX_FILTERS])
    return tuple(_condition(name, params[name], schema) for name in names)


def filters_sql(conditions: tuple[Condition, ...], *, table: str = "f") -> tuple[str, dict[str, Any]]:
    """` AND …` fragments with named placeholders (for hand-written SQL) and their parameters."""
    params: dict[str, Any] = {}

    def bind(value: Any) -> str:
        key = f"filter{len(params)}"
        params[key] = value
        return f"%({key})s"

    return "".join(f" AND {c.sql(bind, table)}" for c in conditions), params


def filters_where(conditions: tuple[Condition, ...], *, table: str) -> tuple[str, list[Any]]:
    """One WHERE fragment with positional placeholders (for a Django queryset's RawSQL)."""
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return "%s"

    return " AND ".join(c.sql(bind, table) for c in conditions) or "TRUE", params


def filters_key(conditions: tuple[Condition, ...]) -> str:
    """A short stable hash of the conditions, for cache keys."""
    if not conditions:
        return "-"
    canonical = json.dumps([(c.attribute, c.operator, c.value) for c in conditions], default=str)
    return hashlib.sha1(canonical.encode()).hexdigest()[:16]  # noqa: S324 (a cache key, not security)
