"""What the console reads of a kind's spec model (pydantic): its fields, with their type,
default and description, for forms and options; and its validation errors in words.

No UI here, so the TUI's forms and the CLI's commands can share it."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError

from llmops.ops.kinds.base import NAME_HINT, Spec


def spec_problems(exc: ValidationError) -> dict[str, str]:
    """A spec's validation errors the way operators read them, by field path ('' for the spec
    as a whole; the first problem of each): pydantic's prefix dropped, a bad name explained."""
    problems: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if field == "name" and err["type"] == "string_pattern_mismatch":
            message = NAME_HINT
        problems.setdefault(field, message)
    return problems


def problems_text(exc: ValidationError, limit: int = 3) -> str:
    """The first problems on one line, `field: problem; ...` (a toast, a CLI error)."""
    found = list(spec_problems(exc).items())[:limit]
    return "; ".join(f"{field or 'spec'}: {message}" for field, message in found)


Shape = Literal["text", "flag", "choice", "numbers", "words", "pairs"]
"""text: typed as is (pydantic converts); flag: on or off; choice: one of the choices;
numbers: a list of integers typed as `0,1`; words: a list of strings typed as `q_proj,v_proj`;
pairs: a dict from a fixed set of keys to one of the choices each, typed as
`secret=drop,email=redact`."""


@dataclass(frozen=True)
class SpecField:
    """One field of a spec model, as a form or an option needs it."""

    name: str
    required: bool
    default: Any
    description: str
    shape: Shape
    choices: tuple[str, ...] = ()
    optional: bool = False
    """None is allowed (a choice may be left blank)."""
    keys: tuple[str, ...] = ()
    """The keys a `pairs` field may have (its values are `choices`)."""


def _literals(annotation: Any) -> tuple[str, ...] | None:
    if get_origin(annotation) is not Literal:
        return None
    return tuple(str(a) for a in get_args(annotation))


def _shape(annotation: Any) -> tuple[Shape, tuple[str, ...], bool, tuple[str, ...]] | None:
    """(shape, choices, optional, keys) of a field's type; None for what a one-line field
    can't hold."""
    args = get_args(annotation)
    optional = get_origin(annotation) in (Union, types.UnionType) and type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        annotation = rest[0]
    if annotation is bool:
        return "flag", (), optional, ()
    if (choices := _literals(annotation)) is not None:
        return "choice", choices, optional, ()
    if get_origin(annotation) is list and get_args(annotation) in ((int,), (str,)):
        return ("numbers" if get_args(annotation) == (int,) else "words"), (), optional, ()
    if get_origin(annotation) is dict:
        key, value = get_args(annotation)
        keys, choices = _literals(key), _literals(value)
        if keys is not None and choices is not None:
            return "pairs", choices, optional, keys
        return None
    if annotation in (str, int, float):
        return "text", (), optional, ()
    return None


def spec_fields(model: type[Spec]) -> list[SpecField]:
    """Every field of the model a one-line field can hold, in the model's order (a dict of
    extra arguments, say, is left to the TOML file)."""
    found = []
    for name, info in model.model_fields.items():
        shape = _shape(info.annotation)
        if shape is None:
            continue
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        found.append(SpecField(name, info.is_required(), default, info.description or "",
                               *shape))
    return found


def field_text(value: Any) -> str:
    """A value as the operator types it: `0,1`, `q_proj,v_proj`, `secret=drop,email=redact`."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def example(f: SpecField) -> str:
    """What a typed list or dict looks like, for a field of this shape."""
    if f.shape == "pairs":
        return f"e.g. {f.keys[0]}={f.choices[0]},{f.keys[-1]}={f.choices[-1]}"
    return "e.g. 0,1" if f.shape == "numbers" else "e.g. a,b"



def parse_field(f: SpecField, text: str) -> Any:
    """A typed list or dict as the spec holds it (text fields are left to pydantic); raises
    ValueError saying what is expected."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if f.shape == "numbers":
        try:
            return [int(item) for item in items]
        except ValueError:
            raise ValueError(f"give numbers, comma-separated ({example(f)})") from None
    if f.shape == "words":
        return items
    if f.shape != "pairs":
        return text
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            raise ValueError(f"{item!r} is not KEY=VALUE ({example(f)})")
        if key not in f.keys:
            raise ValueError(f"{key!r} is not one of {', '.join(f.keys)}")
        if value not in f.choices:
            raise ValueError(f"{key}={value}: give one of {', '.join(f.choices)}")
        pairs[key] = value
    return pairs
