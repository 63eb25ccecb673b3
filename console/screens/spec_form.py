"""Every spec form (new or edit): its fields come from the kind's spec model (type, default,
description: console/specs.py); the presenter's FormLayout picks their order and any words of
its own. It validates as the operator types and dismisses with a valid spec, or None.

Editing starts from the current spec, so fields the form does not show are kept as they are.
A list is typed comma-separated; a dict of choices (a run's screening) is a choice per key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Switch

from llmops.console.specs import SpecField, field_text, parse_field, spec_fields, spec_problems
from llmops.ops.kinds.base import Spec

Values = dict[str, str | bool]
"""What the form's fields hold: a switch's state, or the text typed or chosen ('' = default)."""


@dataclass(frozen=True)
class FormLayout:
    """A kind's own words for its form; everything else is read from the spec model."""

    fields: tuple[str, ...] = ()
    """The spec fields shown, in order (default: every field a line can hold)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    help: Mapping[str, str] = field(default_factory=dict)
    """A placeholder where the model's description or default says too little."""
    refs: Mapping[str, str] = field(default_factory=dict)
    """field -> the kind whose resource it names ({"host": "host"}): checked as typed."""
    hides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """A switch -> the fields that do not apply while it is on (a local host's address)."""
    title: str = ""
    """The new form's title (default: New KIND)."""
    submit: str = "Create"
    """The new form's button (an edit saves)."""
    edit_focus: str = ""
    sections: Mapping[str, str] = field(default_factory=dict)
    """field -> the title of the group of fields it starts ("LoRA", "Training")."""
    advanced: tuple[str, ...] = ()
    """Fields shown only while the form's Advanced switch is on (kept as they are meanwhile)."""
    filled: Mapping[str, Any] = field(default_factory=dict)
    """Fields the presenter fills in before the action (an adapter's sha256, from its host):
    the form validates with these stand-ins until then."""

    def spec_fields(self, model: type[Spec]) -> list[SpecField]:
        found = {f.name: f for f in spec_fields(model)}
        return [found[name] for name in self.fields] if self.fields else list(found.values())

    def label(self, f: SpecField) -> str:
        return self.labels.get(f.name) or f.name.replace("_", " ").capitalize()

    def placeholder(self, f: SpecField) -> str:
        """The presenter's words, else the model's: its description and default."""
        if f.name in self.help:
            return self.help[f.name]
        default = "" if f.default in (None, "") else f"default {f.default}"
        if f.description and default and "default" not in f.description:
            return f"{f.description.rstrip('.')} ({default})"
        return f.description or default

    def hidden(self, values: Values) -> set[str]:
        return {name for flag, names in self.hides.items() if values.get(flag) is True
                for name in names}


def form_values(fields: list[SpecField], spec: Spec | None, initial: Mapping[str, Any]) -> Values:
    """What each field shows first: the spec's values when editing, else `initial`; an empty
    text field means the model's default, a choice starts on it."""
    data = spec.model_dump() if spec is not None else dict(initial)
    values: Values = {}
    for f in fields:
        value = data.get(f.name, f.default if f.shape in ("flag", "choice", "pairs") else None)
        values[f.name] = bool(value) if f.shape == "flag" else field_text(value)
    return values


def spec_from_form(model: type[Spec], layout: FormLayout, values: Values, base: Spec | None,
                   names: Mapping[str, list[str]]) -> tuple[Spec | None, dict[str, str]]:
    """A spec, or the problems by field ('' for the whole form). An empty field means the
    default; `names` are the lab's resources by kind, so a typo in a host shows at once."""
    data: dict[str, Any] = base.model_dump() if base is not None else {}
    problems: dict[str, str] = {}
    lists = {f.name: f for f in spec_fields(model) if f.shape in ("numbers", "words", "pairs")}
    hidden = layout.hidden(values)
    for name, raw in values.items():
        value = raw if isinstance(raw, bool) else raw.strip()
        if name in hidden or value == "":
            data.pop(name, None)
        elif name in lists and isinstance(value, str):
            try:
                data[name] = parse_field(lists[name], value)
            except ValueError as exc:
                problems[name] = str(exc)
        else:
            data[name] = value
    for name, stand_in in layout.filled.items():
        data.setdefault(name, stand_in)
    for name, kind in layout.refs.items():
        typed, known = str(values.get(name, "")).strip(), names.get(kind, [])
        if typed and known and typed not in known:
            problems[name] = f"there is no {kind} named {typed} (the lab has: {', '.join(known)})"
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        for path, message in spec_problems(exc).items():
            name = path.split(".")[0]
            problems.setdefault(name if name in values else "", message)
        return None, problems
    return (None, problems) if problems else (spec, {})


class PairsField(Vertical):
    """A dict of choices (a run's screening: rule -> drop, keep or redact), one Select per key;
    its `value` is typed as the CLI takes it (`secret=drop,email=redact`)."""

    def __init__(self, f: SpecField, start: str, *, id: str) -> None:  # noqa: A002
        super().__init__(id=id, classes="pairs-field")
        self.spec_field = f
        self.start = dict(item.split("=", 1) for item in start.split(",") if "=" in item)

    def compose(self) -> ComposeResult:
        f = self.spec_field
        for key in f.keys:
            with Horizontal(classes="pair-row"):
                yield Label(key, classes="pair-key")
                yield Select([(c, c) for c in f.choices], allow_blank=False,
                             value=self.start.get(key, f.choices[0]), id=f"{self.id}-{key}")

    @property
    def value(self) -> str:
        return ",".join(f"{key}={select.value}" for key in self.spec_field.keys
                        if not (select := self.query_one(f"#{self.id}-{key}", Select)).is_blank())


class SpecFormScreen(ModalScreen[Spec | None]):
    """New (empty, or `initial`) or edit (`spec`): a live error under each field; ctrl+s (or
    the button) returns the spec, which the view turns into an action."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Save", id="form.submit",
                tooltip="Make this spec an action (ctrl+z rolls it back)"),
        Binding("escape", "cancel", "Cancel", id="form.cancel", tooltip="Close the form"),
    ]

    def __init__(self, noun: str, model: type[Spec], layout: FormLayout, *,
                 names: Mapping[str, list[str]], spec: Spec | None = None,
                 initial: Mapping[str, Any] | None = None) -> None:
        super().__init__(classes="dialog")
        self.noun, self.model, self.form_layout, self.names = noun, model, layout, names
        self.base = spec
        """The spec being edited (None for a new resource): submitting it unchanged is refused."""
        self.fields = layout.spec_fields(model)
        self.values_at_start = form_values(self.fields, spec, initial or {})
        self.spec: Spec | None = None
        self.problems: dict[str, str] = {}
        defaults = form_values(self.fields, None, {})
        self.advanced_at_start = any(self.values_at_start[name] != defaults[name]
                                     for name in layout.advanced if name in defaults)
        """Editing a spec whose advanced fields were changed shows them from the start."""

    def compose(self) -> ComposeResult:
        title = (f"Edit {self.noun} {self.base.name}" if self.base
                 else self.form_layout.title or f"New {self.noun}")
        with Vertical(classes="dialog-box form-box"):
            yield Label(title, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                layout = self.form_layout
                first_advanced = next((f.name for f in self.fields if f.name in layout.advanced),
                                      None)
                for f in self.fields:
                    if f.name == first_advanced:
                        with Horizontal(classes="form-row", id="row-advanced"):
                            yield Label("Advanced", classes="form-label")
                            yield Switch(self.advanced_at_start, id="advanced")
                    if f.name in layout.sections:
                        yield Label(layout.sections[f.name], classes="form-section",
                                    id=f"section-{f.name}")
                    with Horizontal(classes="form-row", id=f"row-{f.name}"):
                        yield Label(layout.label(f), classes="form-label")
                        yield self.field_widget(f)
                    yield Label("", id=f"error-{f.name}", classes="form-error")
                yield Label("", id="error-", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save" if self.base else self.form_layout.submit, variant="primary",
                             id="submit")
                yield Button("Cancel", id="cancel")

    def field_widget(self, f: SpecField) -> Widget:
        start, wid = self.values_at_start[f.name], f"field-{f.name}"
        if f.shape == "flag":
            return Switch(bool(start), id=wid)
        if f.shape == "choice":
            return Select([(c, c) for c in f.choices], allow_blank=f.optional, id=wid,
                          value=start or (Select.NULL if f.optional else f.choices[0]),
                          prompt="default: none")
        if f.shape == "pairs":
            return PairsField(f, str(start), id=wid)
        return Input(str(start), placeholder=self.form_layout.placeholder(f), id=wid,
                     disabled=self.base is not None and f.name == "name")

    def on_mount(self) -> None:
        self.validate_form()
        focus = "name"
        if self.base is not None:  # the name is not editable: the kind's pick, or the next
            others = [f.name for f in self.fields if f.name != "name"]
            focus = self.form_layout.edit_focus or others[0]
        self.query_one(f"#field-{focus}").focus()

    def values(self) -> Values:
        values: Values = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.name}")
            if isinstance(widget, Switch):
                values[f.name] = widget.value
            elif isinstance(widget, Select):
                values[f.name] = "" if widget.is_blank() else str(widget.value)
            elif isinstance(widget, PairsField):
                values[f.name] = widget.value
            else:
                assert isinstance(widget, Input)
                values[f.name] = widget.value
        return values

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def validate_form(self) -> None:
        values = self.values()
        self.spec, self.problems = spec_from_form(self.model, self.form_layout, values, self.base,
                                                  self.names)
        hidden = self.form_layout.hidden(values)
        folded: set[str] = set()
        if self.form_layout.advanced and not self.query_one("#advanced", Switch).value:
            folded = set(self.form_layout.advanced)
        for f in self.fields:
            shown_row = f.name not in hidden and f.name not in folded
            self.query_one(f"#row-{f.name}").display = shown_row
            for section in self.query(f"#section-{f.name}"):
                section.display = shown_row
            touched = values[f.name] != self.values_at_start[f.name] or not f.required
            shown = self.problems.get(f.name, "") if touched and shown_row else ""
            error = self.query_one(f"#error-{f.name}", Label)
            error.update(Text(shown))  # pydantic quotes patterns in brackets: never markup
            error.display = bool(shown)
            self.query_one(f"#field-{f.name}").set_class(bool(shown), "-invalid")
        self.query_one("#error-", Label).update(Text(self.problems.get("", "")))
        unchanged = self.base is not None and self.spec == self.base
        self.query_one("#submit", Button).disabled = self.spec is None or unchanged

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        if self.spec is None:
            self.notify("; ".join(f"{k or self.noun}: {v}" for k, v in self.problems.items()),
                        title="not yet", severity="warning")
            return
        if self.base is not None and self.spec == self.base:
            self.notify("nothing changed", severity="warning")
            return
        self.dismiss(self.spec)

    def action_cancel(self) -> None:
        self.dismiss(None)
