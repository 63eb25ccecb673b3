"""Property values: checking them against the schema's data types the way Weaviate does, and
guessing a type for an unknown property (auto-schema), so that a wrong value fails here as it
would on a real instance."""

from __future__ import annotations

import datetime as dt
import re
import uuid as uuid_mod
from typing import Any

from .errors import Unprocessable

ARRAY_OF = {"text[]": "text", "int[]": "int", "number[]": "number", "boolean[]": "boolean",
            "date[]": "date", "uuid[]": "uuid"}
PRIMITIVE_TYPES = {"text", "int", "number", "boolean", "date", "uuid", "geoCoordinates",
                   "phoneNumber", "blob", "object", "object[]", *ARRAY_OF}
_TYPE_WORD = {"text": "text", "int": "integer", "number": "number", "boolean": "boolean",
              "date": "date", "uuid": "uuid"}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def go_type(value: Any) -> str:
    """The Go type name Weaviate's messages use for a decoded JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "json.Number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


def parse_date(value: str) -> dt.datetime:
    """RFC3339 as Go parses it (a zone is required)."""
    if not _RFC3339.match(value):
        raise ValueError(value)
    text = value.replace("z", "Z").replace("t", "T")
    if "." in text:  # Python keeps 6 fractional digits at most
        head, _, rest = text.partition(".")
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end():]}"
    return dt.datetime.fromisoformat(text)


def format_date(moment: dt.datetime) -> str:
    """Go's time.RFC3339Nano: fraction without trailing zeros, Z for UTC."""
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        base += "." + f"{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset()
    if not offset:
        return base + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{base}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _scalar(kind: str, value: Any) -> Any:
    """One value of a primitive type, normalised, or ValueError(reason)."""
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError(f"not a string, but {go_type(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"requires an integer, the given value is '{value}'")
        if float(value) != int(value):
            raise ValueError(f"requires an integer, the given value is '{value}'")
        return int(value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"requires a float, the given value is '{value}'")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"not a bool, but {go_type(value)}")
        return value
    if kind == "date":
        try:
            return format_date(parse_date(value))
        except (ValueError, TypeError):
            raise ValueError(
                f"requires a string with a RFC3339 formatted date, but the given value is '{value}'"
            ) from None
    if kind == "uuid":
        try:
            return str(uuid_mod.UUID(str(value)))
        except ValueError:
            raise ValueError(f"requires a string of UUID format, but the given value is "
                             f"'{value}'") from None
    raise ValueError(f"unsupported type {kind}")


def _object(value: Any, nested: list[dict[str, Any]], name: str, class_name: str) -> Any:
    if not isinstance(value, dict):
        raise Unprocessable(f"invalid object property '{name}' on class '{class_name}': not an "
                            f"object, but {go_type(value)}")
    defs = {p["name"]: p for p in nested}
    out = {}
    for key, item in value.items():
        if item is None:
            continue
        prop = defs.get(key)
        if prop is None:
            raise Unprocessable(f"invalid object property '{name}' on class '{class_name}': "
                                f"nested property '{key}' does not exist")
        out[key] = coerce(prop["dataType"][0], item, f"{name}.{key}", class_name,
                          prop.get("nestedProperties"))
    return out


def coerce(kind: str, value: Any, name: str, class_name: str,
           nested: list[dict[str, Any]] | None = None) -> Any:
    """A property value checked against its data type, as stored (Weaviate's messages)."""
    if value is None:
        return None
    if kind == "object" and nested is not None:
        return _object(value, nested, name, class_name)
    if kind == "object[]" and nested is not None:
        if not isinstance(value, list):
            raise Unprocessable(f"invalid object array property '{name}' on class "
                                f"'{class_name}': not an array, but {go_type(value)}")
        return [_object(v, nested, name, class_name) for v in value]
    base = ARRAY_OF.get(kind)
    try:
        if base is not None:
            if not isinstance(value, list):
                raise ValueError(f"not a {base} array, but {go_type(value)}")
            return [_scalar(base, item) for item in value]
        if kind in _TYPE_WORD:
            return _scalar(kind, value)
        if kind == "geoCoordinates":
            if not isinstance(value, dict):
                raise ValueError(f"geoCoordinates must be a map, but got: {go_type(value)}")
            return {"latitude": float(value.get("latitude", 0.0)),
                    "longitude": float(value.get("longitude", 0.0))}
        return value  # object, object[], blob, phoneNumber: kept as sent
    except ValueError as err:
        word = _TYPE_WORD.get(base or kind, kind)
        array = " array" if base else ""
        raise Unprocessable(
            f"invalid {word}{array} property '{name}' on class '{class_name}': {err}"
        ) from None


def guess_type(value: Any) -> str:
    """Auto-schema's type for a value (AUTOSCHEMA_DEFAULT_NUMBER=number, like Weaviate)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        try:
            parse_date(value)
            return "date"
        except ValueError:
            pass
        try:
            uuid_mod.UUID(value)
            return "uuid" if len(value) in (32, 36) else "text"
        except ValueError:
            return "text"
    if value is None:
        return "text"
    if isinstance(value, dict):
        if set(value) >= {"latitude", "longitude"}:
            return "geoCoordinates"
        return "object"
    if isinstance(value, list):
        if not value:
            return "text[]"
        first = guess_type(value[0])
        if first == "object":
            return "object[]"
        for item in value[1:]:
            other = guess_type(item)
            if other != first:
                if {first, other} <= {"text", "date", "uuid"}:
                    first = "text"
                    continue
                raise Unprocessable(f"mismatched data type - '{first}' expected, got '{other}'")
        return first + "[]"
    raise Unprocessable(f"unrecognized data type of value '{value}'")


def nested_of(value: Any) -> list[dict[str, Any]]:
    """Auto-schema's nested properties for an object (or the first of an object array)."""
    sample = value[0] if isinstance(value, list) else value
    out = []
    for key, item in sample.items():
        kind = guess_type(item)
        prop: dict[str, Any] = {"name": key, "dataType": [kind]}
        if kind in ("object", "object[]"):
            prop["nestedProperties"] = nested_of(item)
        out.append(prop)
    return out


def merge_nested(defs: list[dict[str, Any]], value: Any) -> bool:
    """Auto-schema for objects: add nested properties the value has and the schema lacks."""
    changed = False
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict):
            continue
        for new in nested_of(item):
            old = next((d for d in defs if d["name"] == new["name"]), None)
            if old is None:
                defs.append({**new, "indexFilterable": True,
                             "indexSearchable": new["dataType"][0] in ("text", "text[]"),
                             "indexRangeFilters": False,
                             **({"tokenization": "word"} if new["dataType"][0] in
                                ("text", "text[]") else {})})
                changed = True
            elif old.get("nestedProperties") is not None:
                changed |= merge_nested(old["nestedProperties"], item[new["name"]])
    return changed
