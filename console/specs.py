"""What the console reads of a kind's spec model (pydantic): its fields, with their type,
default and description, for forms and options; and its validation errors in words.

No UI here, so the TUI's forms and the CLI's commands can share it."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic_core import PydanticUndefined

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


Shape = Literal["text", "flag", "choice", "numbers"]
"""text: typed as is (pydantic converts); flag: on or off; choice: one of the choices;
numbers: a list of integers typed as `0,1`."""


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


def _shape(annotation: Any) -> tuple[Shape, tuple[str, ...], bool] | None:
    """(shape, choices, optional) of a field's type; None for what a one-line field can't hold."""
    args = get_args(annotation)
    optional = get_origin(annotation) in (Union, types.UnionType) and type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        annotation = rest[0]
    if annotation is bool:
        return "flag", (), optional
    if get_origin(annotation) is Literal:
        return "choice", tuple(str(a) for a in get_args(annotation)), optional
    if get_origin(annotation) is list and get_args(annotation) == (int,):
        return "numbers", (), optional
    if annotation in (str, int, float):
        return "text", (), optional
    return None


def spec_fields(model: type[Spec]) -> list[SpecField]:
    """Every field of the model a one-line field can hold, in the model's order (a dict of
    extra arguments, say, is left to the TOML file)."""
    found = []
    for name, info in model.model_fields.items():
        shape = _shape(info.annotation)
        if shape is None:
            continue
        default = None if info.default is PydanticUndefined else info.default
        found.append(SpecField(name, info.is_required(), default, info.description or "",
                               *shape))
    return found
