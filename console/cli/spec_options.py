"""A kind's CLI options, made from its spec model (read through `console/specs.py`, as the
console's forms are): one option per field, with the field's type, choices, default and
description, so the CLI never mirrors a spec by hand.

Every option defaults to None ("not given"): a create fills in the model's defaults, a change
keeps the current value. Lists of numbers are given comma-separated (`--gpus 0,1`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from llmops.console.specs import SpecField, spec_fields
from llmops.ops.kinds.base import Spec

F = TypeVar("F", bound=Callable[..., Any])


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def _help(field: SpecField) -> str:
    shown = field.default not in (None, False)
    return field.description + (f" [default: {field.default}]" if shown else "")


def field_option(field: SpecField, annotation: Any) -> Callable[[F], F]:
    """One click option for one spec field; pydantic converts and refuses the rest."""
    flag, help_text = flag_of(field.name), _help(field)
    if field.shape == "flag":
        return click.option(f"{flag}/--no-{flag[2:]}", field.name, default=None, help=help_text)
    if field.shape == "choice":
        return click.option(flag, field.name, type=click.Choice(field.choices), help=help_text)
    if field.shape == "numbers":
        return click.option(flag, field.name, metavar="N,N", help=help_text)
    scalar = next((t for t in (int, float) if annotation in (t, t | None)), str)
    return click.option(flag, field.name, type=scalar, help=help_text)


def spec_options(spec: type[Spec], *, skip: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorate a command with an option per field of `spec` (name and `skip` left out)."""
    left_out = {"name", *skip}
    fields = [f for f in spec_fields(spec) if f.name not in left_out]

    def decorate(f: F) -> F:
        for field in reversed(fields):
            f = field_option(field, spec.model_fields[field.name].annotation)(f)
        return f

    return decorate


def given_fields(spec: type[Spec], given: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line, as spec values (number lists split); a list
    that is not numbers is refused naming the option."""
    shapes = {f.name: f.shape for f in spec_fields(spec)}
    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or name not in shapes:
            continue
        if shapes[name] == "numbers":
            try:
                value = [int(v) for v in str(value).split(",") if v.strip()]
            except ValueError:
                raise click.BadParameter(
                    f"give numbers, comma-separated (e.g. {flag_of(name)} 0,1)",
                    param_hint=flag_of(name),
                ) from None
        values[name] = value
    return values
