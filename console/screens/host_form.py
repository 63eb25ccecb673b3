"""The add-host form: validates as you type (the HostSpec pydantic model), returns a spec."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Switch

from llmops.console.screens.spec_form import SpecFormScreen
from llmops.ops.kinds.host.spec import HostSpec

FIELDS: list[tuple[str, str, str]] = [
    ("name", "Name", "e.g. gpu-1 (lowercase letters, digits, '-')"),
    ("address", "Address", "IP or DNS name (remote hosts)"),
    ("port", "Port", "22"),
    ("user", "User", "login user (default: yours)"),
    ("key", "Key", "private key path (default: agent, ~/.ssh)"),
    ("python", "Python", "python3 (the one with vLLM/peft)"),
    ("workdir", "Workdir", "~/.llmops"),
]
REMOTE_ONLY = {"address", "port", "user", "key"}


def spec_from_form(values: dict[str, str], local: bool) -> tuple[HostSpec | None, dict[str, str]]:
    """A HostSpec, or the problems by field ('' for the whole form)."""
    data: dict[str, Any] = {"local": local}
    for field, value in values.items():
        if value.strip() and not (local and field in REMOTE_ONLY):
            data[field] = value.strip()
    try:
        return HostSpec.model_validate(data), {}
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            message = err["msg"].removeprefix("Value error, ")
            if field == "name" and "pattern" in message:
                message = "use 1-63 lowercase letters, digits or '-'"
            problems.setdefault(field, message)
        return None, problems


class AddHostScreen(SpecFormScreen[HostSpec]):
    """Fields with a live error under each; ctrl+s (or Add) returns the spec."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Add", id="host_form.submit", tooltip="Add this host"),
        Binding("escape", "cancel", "Cancel", id="host_form.cancel", tooltip="Close the form"),
    ]

    noun = "host"

    def __init__(self, initial: dict[str, Any]) -> None:
        super().__init__(None, classes="dialog")
        self.initial = initial

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box form-box"):
            yield Label("Add a host", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                with Horizontal(classes="form-row"):
                    yield Label("This machine", classes="form-label")
                    yield Switch(bool(self.initial.get("local")), id="local")
                for field, label, placeholder in FIELDS:
                    with Horizontal(classes="form-row", id=f"row-{field}"):
                        yield Label(label, classes="form-label")
                        yield Input(str(self.initial.get(field, "")), placeholder=placeholder,
                                    id=f"field-{field}")
                    yield Label("", id=f"error-{field}", classes="form-error")
                yield Label("", id="error-", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add", variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.validate_form()
        self.query_one("#field-name", Input).focus()

    def values(self) -> dict[str, str]:
        return {f: self.query_one(f"#field-{f}", Input).value for f, _, _ in FIELDS}

    @on(Input.Changed)
    @on(Switch.Changed)
    def validate_form(self) -> None:
        local = self.query_one("#local", Switch).value
        self.spec, self.problems = spec_from_form(self.values(), local)
        for field, _, _ in FIELDS:
            hidden = local and field in REMOTE_ONLY
            self.query_one(f"#row-{field}").display = not hidden
            problem = self.problems.get(field, "")
            touched = bool(self.query_one(f"#field-{field}", Input).value) or field != "name"
            shown = problem if touched else ""
            self.query_one(f"#error-{field}", Label).update(Text(shown))  # may quote a pattern
            self.query_one(f"#error-{field}", Label).display = bool(shown)
            self.query_one(f"#field-{field}", Input).set_class(bool(shown), "-invalid")
        general = self.problems.get("", "")
        self.query_one("#error-", Label).update(Text(general))
        self.query_one("#submit", Button).disabled = self.spec is None
