"""A kind's CLI options, made from its spec model (read through `console/specs.py`, as the
console's forms are): one option per field, with the field's type, choices, default and
description, so the CLI never mirrors a spec by hand.

Every option defaults to None ("not given"): a create fills in the model's defaults, a change
keeps the current value. Lists are given comma-separated (`--gpus 0,1`, `--target-modules
q_proj,v_proj`), a dict of choices as KEY=VALUE pairs (`--screening secret=drop,email=redact`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from llmops.console.cli.completion import Completer, names_of

if TYPE_CHECKING:
    from llmops.console.specs import SpecField
from llmops.ops.kinds.base import Spec

F = TypeVar("F", bound=Callable[..., Any])


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def _help(field: SpecField) -> str:
    from llmops.console.specs import field_text

    shown = field.default not in (None, False, [], {})
    return field.description + (f" [default: {field_text(field.default)}]" if shown else "")


def field_option(field: SpecField, annotation: Any,
                 complete: Completer | None = None) -> Callable[[F], F]:
    """One click option for one spec field; pydantic converts and refuses the rest. A field
    naming a resource completes its names (`complete`)."""
    flag, help_text = flag_of(field.name), _help(field)
    if field.shape == "flag":
        return click.option(f"{flag}/--no-{flag[2:]}", field.name, default=None, help=help_text)
    if field.shape == "choice":
        return click.option(flag, field.name, type=click.Choice(field.choices), help=help_text)
    if field.shape == "numbers":
        return click.option(flag, field.name, metavar="N,N", help=help_text)
    if field.shape == "words":
        return click.option(flag, field.name, metavar="A,B", help=help_text)
    if field.shape == "pairs":
        return click.option(flag, field.name, metavar="K=V,K=V",
                            help=f"{help_text} Keys: {', '.join(field.keys)}; values: "
                            f"{', '.join(field.choices)}.")
    scalar = next((t for t in (int, float) if annotation in (t, t | None)), str)
    return click.option(flag, field.name, type=scalar, help=help_text, shell_complete=complete)


def spec_options(spec: type[Spec], *, skip: Iterable[str] = (),
                 refs: Mapping[str, str] | None = None) -> Callable[[F], F]:
    """Decorate a command with an option per field of `spec` (name and `skip` left out);
    `refs`: field -> the kind whose names it completes ({"host": "host"})."""
    from llmops.console.specs import spec_fields

    left_out = {"name", *skip}
    fields = [f for f in spec_fields(spec) if f.name not in left_out]
    completers = {field: names_of(kind) for field, kind in (refs or {}).items()}

    def decorate(f: F) -> F:
        for field in reversed(fields):
            f = field_option(field, spec.model_fields[field.name].annotation,
                             completers.get(field.name))(f)
        return f

    return decorate


def given_fields(spec: type[Spec], given: Mapping[str, Any]) -> dict[str, Any]:
    """The options given on the command line, as spec values (lists split, pairs read); a
    list or pair that does not read is refused naming the option (exit 2, nothing written)."""
    from llmops.console.specs import parse_field, spec_fields

    fields = {f.name: f for f in spec_fields(spec)}
    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or name not in fields:
            continue
        field = fields[name]
        if field.shape in ("numbers", "words", "pairs"):
            try:
                value = parse_field(field, str(value))
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=flag_of(name)) from None
        values[name] = value
    return values
