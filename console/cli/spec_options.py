"""A kind's CLI options, made from its spec model: one option per field, with the field's type,
choices, default and description, so the CLI never mirrors a spec by hand.

Every option defaults to None ("not given"): a create fills in the model's defaults, a change
keeps the current value. Lists are given comma-separated (`--gpus 0,1`).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import click
from pydantic.fields import FieldInfo

from llmops.ops.kinds.base import Spec

F = TypeVar("F", bound=Callable[..., Any])
SCALARS: dict[type, type] = {int: int, float: float, str: str}


def _bare(annotation: Any) -> Any:
    """`X | None` -> X."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _literal_values(annotation: Any) -> list[str] | None:
    bare = _bare(annotation)
    return [str(v) for v in get_args(bare)] if get_origin(bare) is Literal else None


def is_list(info: FieldInfo) -> bool:
    return get_origin(_bare(info.annotation)) is list


def _help(info: FieldInfo) -> str:
    text = info.description or ""
    if info.is_required():
        return text
    default = info.get_default(call_default_factory=True)
    if default not in (None, False, [], {}):
        text += f" [default: {default}]"
    return text


def field_option(name: str, info: FieldInfo) -> Callable[[F], F]:
    """One click option for one spec field."""
    flag = "--" + name.replace("_", "-")
    bare = _bare(info.annotation)
    help_text = _help(info)
    if bare is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
    choices = _literal_values(info.annotation)
    if choices is not None:
        return click.option(flag, name, type=click.Choice(choices), help=help_text)
    if is_list(info):
        return click.option(flag, name, metavar="A,B", help=help_text)
    if bare in SCALARS:
        return click.option(flag, name, type=SCALARS[bare], help=help_text)
    raise TypeError(f"no CLI option for {name}: {info.annotation}")


def spec_options(spec: type[Spec], *, skip: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorate a command with an option per field of `spec` (name and `skip` left out)."""
    left_out = {"name", *skip}
    fields = [(n, i) for n, i in spec.model_fields.items() if n not in left_out]

    def decorate(f: F) -> F:
        for name, info in reversed(fields):
            f = field_option(name, info)(f)
        return f

    return decorate


def given_fields(spec: type[Spec], given: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line, as spec values (comma lists split); a list
    whose items are not numbers where numbers are wanted is refused naming the option."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        info = spec.model_fields.get(name)
        if value is None or info is None:
            continue
        if is_list(info):
            items = [v.strip() for v in str(value).split(",") if v.strip()]
            item_type = (get_args(_bare(info.annotation)) or (str,))[0]
            try:
                values[name] = [item_type(v) for v in items]
            except ValueError:
                flag = "--" + name.replace("_", "-")
                raise click.BadParameter(
                    f"give {item_type.__name__}s, comma-separated (e.g. {flag} 0,1)",
                    param_hint=flag,
                ) from None
        else:
            values[name] = value
    return values
