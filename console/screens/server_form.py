"""The server form (new or edit): validates as you type with ServerSpec, returns a spec.

Editing starts from the current spec, so fields the form does not show (extra vLLM flags,
LoRA limits, colour ports) are kept as they are; the form only changes what it shows."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select

from llmops.console.screens.spec_form import SpecFormScreen
from llmops.ops.kinds.server.spec import ServerSpec

FIELDS: list[tuple[str, str, str]] = [
    ("name", "Name", "e.g. qwen-7b (lowercase letters, digits, '-')"),
    ("host", "Host", "a host of the lab (see Hosts)"),
    ("model", "Model", "org/name (hub id) or /absolute/path on the host"),
    ("tp", "TP", "tensor-parallel size (1)"),
    ("pp", "PP", "pipeline-parallel size (1)"),
    ("gpus", "GPUs", "GPU ids, e.g. 0,1 (default: all)"),
    ("port", "Port", "8000 (on the host's loopback)"),
    ("max_model_len", "Max len", "max_model_len (default: the model's)"),
    ("gpu_memory_utilization", "GPU mem", "0.9 (fraction of each GPU)"),
    ("quantization", "Quant", "awq, gptq, fp8, … (default: none)"),
    ("served_model_name", "Served as", "name clients ask for (default: model)"),
    ("cpu_kvcache_gib", "CPU KV GiB", "KV-cache GiB on CPU-only hosts"),
]
CHOICES: dict[str, tuple[str, ...]] = {
    "dtype": ("auto", "float16", "bfloat16", "float32"),
    "strategy": ("recreate", "blue-green", "standby"),
}


def form_values(spec: ServerSpec | None, initial: dict[str, Any]) -> dict[str, str]:
    """What each field shows first: the spec's values when editing, else `initial`."""
    data = spec.model_dump() if spec is not None else dict(initial)
    values = {}
    for field in [f for f, _, _ in FIELDS] + list(CHOICES):
        value = data.get(field)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        values[field] = "" if value is None else str(value)
    return values


def spec_from_form(values: dict[str, str], base: ServerSpec | None,
                   hosts: list[str]) -> tuple[ServerSpec | None, dict[str, str]]:
    """A ServerSpec, or the problems by field ('' for the whole form). An empty field means
    the default; `hosts` are the lab's hosts, so a typo in the host shows at once."""
    data: dict[str, Any] = base.model_dump() if base is not None else {}
    problems: dict[str, str] = {}
    for field, raw in values.items():
        value = raw.strip()
        if not value:
            data.pop(field, None)
        elif field == "gpus":
            try:
                data[field] = [int(g) for g in value.replace(" ", "").split(",") if g]
            except ValueError:
                problems[field] = "GPU ids are numbers separated by commas, e.g. 0,1"
        else:
            data[field] = value
    host = values.get("host", "").strip()
    if host and hosts and host not in hosts:
        problems["host"] = f"there is no host named {host} (the lab has: {', '.join(hosts)})"
    try:
        spec = ServerSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            message = err["msg"].removeprefix("Value error, ")
            if field == "name" and "pattern" in message:
                message = "use 1-63 lowercase letters, digits or '-'"
            problems.setdefault(field if field in values else "", message)
        return None, problems
    return (None, problems) if problems else (spec, {})


class ServerFormScreen(SpecFormScreen[ServerSpec]):
    """New server (empty, or `initial`) or edit (`spec`): a live error under each field;
    ctrl+s (or the button) returns the spec, which the view turns into an action."""

    noun = "server"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Save", id="server_form.submit",
                tooltip="Make this spec an action (rolls back with ctrl+z)"),
        Binding("escape", "cancel", "Cancel", id="server_form.cancel", tooltip="Close the form"),
    ]

    def __init__(self, hosts: list[str], spec: ServerSpec | None = None,
                 initial: dict[str, Any] | None = None) -> None:
        super().__init__(spec, classes="dialog")
        self.hosts = hosts
        self.values_at_start = form_values(spec, initial or {})

    def compose(self) -> ComposeResult:
        title = f"Edit server {self.base.name}" if self.base else "New server"
        with Vertical(classes="dialog-box form-box server-form"):
            yield Label(title, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                for field, label, placeholder in FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        yield Input(self.values_at_start[field], placeholder=placeholder,
                                    id=f"field-{field}", disabled=bool(self.base) and
                                    field == "name")
                    yield Label("", id=f"error-{field}", classes="form-error")
                for field, options in CHOICES.items():
                    with Horizontal(classes="form-row"):
                        yield Label(field.capitalize(), classes="form-label")
                        yield Select([(o, o) for o in options], allow_blank=False,
                                     value=self.values_at_start[field] or options[0],
                                     id=f"field-{field}")
                    yield Label("", id=f"error-{field}", classes="form-error")
                yield Label("", id="error-", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save" if self.base else "Start", variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.validate_form()
        self.query_one("#field-max_model_len" if self.base else "#field-name", Input).focus()

    def values(self) -> dict[str, str]:
        values = {f: self.query_one(f"#field-{f}", Input).value for f, _, _ in FIELDS}
        for field in CHOICES:
            values[field] = str(self.query_one(f"#field-{field}", Select).value)
        return values

    @on(Input.Changed)
    @on(Select.Changed)
    def validate_form(self) -> None:
        values = self.values()
        self.spec, self.problems = spec_from_form(values, self.base, self.hosts)
        for field in values:
            touched = values[field] != self.values_at_start[field] or field not in (
                "name", "host", "model")
            shown = self.problems.get(field, "") if touched else ""
            error = self.query_one(f"#error-{field}", Label)
            error.update(Text(shown))  # pydantic quotes patterns in brackets: never markup
            error.display = bool(shown)
            self.query_one(f"#field-{field}").set_class(bool(shown), "-invalid")
        self.query_one("#error-", Label).update(Text(self.problems.get("", "")))
        unchanged = self.base is not None and self.spec == self.base
        self.query_one("#submit", Button).disabled = self.spec is None or unchanged
