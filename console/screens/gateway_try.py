"""A gateway's "try it" box: a model name, a prompt and max tokens; Enter sends the prompt
through the gateway (`Engine.gateway_try`) in a thread worker and shows the answer, which
server answered (LiteLLM's api-base header mapped back to the lab's name), the tokens, the
cost, whether the cache answered, the fallbacks tried, LiteLLM's own overhead, and whether a
guardrail fired (an injection refused, or secrets redacted from the answer). Nothing in the
lab changes. Escape goes back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, Static

from llmops.console.screens.acting import error_text
from llmops.console.screens.base import ViewContext
from llmops.ops.kinds.gateway.spec import GatewaySpec

DEFAULT_MAX_TOKENS = 32
MAX_TOKENS = 4096
BLOCKED = re.compile(r"llmops guardrail: (.*?refused(?: \(rule [\w-]+\))?)")
REDACTED = re.compile(r"\[REDACTED:([\w-]+)\]")


@dataclass
class TryAnswered(Message):
    """A prompt's outcome (worker -> screen): the gateway's answer, or why there is none."""

    model: str
    answer: dict[str, Any] | None
    error: str | None


def max_tokens_of(raw: str) -> int:
    """Pure: the max tokens typed; ValueError saying what is expected."""
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"max tokens: give a whole number from 1 to {MAX_TOKENS}") from None
    if not 1 <= n <= MAX_TOKENS:
        raise ValueError(f"max tokens: give a whole number from 1 to {MAX_TOKENS}")
    return n


def guardrail_of(answer: dict[str, Any]) -> str | None:
    """Pure: what the gateway's guardrail did to this request, in words (None: nothing)."""
    found = BLOCKED.search(str(answer.get("error") or ""))
    if not answer.get("ok") and found:
        return f"blocked: {found.group(1)}"
    rules = sorted(set(REDACTED.findall(str(answer.get("text") or ""))))
    return f"redacted: {', '.join(rules)}" if rules else None


def answer_text(model: str, answer: dict[str, Any]) -> Text:
    """Pure: the answer and its facts, as the screen shows them."""
    guard = guardrail_of(answer)
    out = Text()
    if not answer.get("ok"):
        out.append(f"HTTP {answer.get('status')}: ", style="bold red")
        out.append(str(answer.get("error") or "")[:600])
    else:
        out.append(str(answer.get("text") or ""))
    out.append("\n\n")
    if answer.get("ok"):
        cost = answer.get("cost")
        out.append(f"{model} answered by ", style="grey50")
        out.append(str(answer.get("server") or "?"), style="bold")
        out.append(f" ({answer.get('api_base') or '?'}) · "
                   f"{answer.get('prompt_tokens', 0)}+{answer.get('completion_tokens', 0)} "
                   f"tokens · cost {'-' if cost is None else f'{cost:.8f}'} · "
                   f"{'cache hit · ' if answer.get('cache_hit') else ''}"
                   f"fallbacks {answer.get('fallbacks', 0)}", style="grey50")
        overhead = answer.get("overhead_ms")
        if overhead is not None:
            out.append(f" · gateway overhead {overhead:.1f} ms", style="grey50")
        out.append(f" · {float(answer.get('seconds') or 0.0):.2f}s\n", style="grey50")
    out.append("guardrail ", style="grey50")
    out.append(guard or "none fired", style="bold yellow" if guard else "green")
    return out


class GatewayTryScreen(Screen[None]):
    """Prompts through one gateway, as often as the operator likes."""

    CSS_PATH = "gateway_try.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="gateway-try.close", tooltip="Back to the list"),
    ]

    def __init__(self, context: ViewContext, spec: GatewaySpec) -> None:
        super().__init__()
        self.context, self.spec = context, spec
        self.sending = False
        self.answered: TryAnswered | None = None

    def compose(self) -> ComposeResult:
        spec = self.spec
        models = list(spec.models)
        yield Label(Text.assemble(("try gateway ", "bold"), (spec.name, "bold"),
                                  f" · {spec.listen}:{spec.port} on {spec.host} · guardrails "
                                  f"on {', '.join(spec.guardrails) or 'no model'}"
                                  + (" · guard models " + ", ".join(
                                      f"{m} → {g.server}" for m, g in spec.guards.items())
                                     if spec.guards else "")),
                    classes="screen-title")
        with Horizontal(id="try-row"):
            yield Select([(m, m) for m in models], value=models[0], allow_blank=False,
                         id="try-model")
            yield Input(placeholder="a prompt; Enter sends it through the gateway",
                        id="try-prompt")
            yield Input(str(DEFAULT_MAX_TOKENS), placeholder="max tokens", id="try-max",
                        tooltip="the most tokens the answer may have")
        yield Static(Text("Type a prompt and press Enter.", style="grey50"), id="try-status")
        yield Static("", id="try-answer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#try-prompt", Input).focus()

    @on(Input.Submitted)
    def submitted(self) -> None:
        prompt = self.query_one("#try-prompt", Input).value.strip()
        status = self.query_one("#try-status", Static)
        if not prompt:
            status.update(Text("Type a prompt first.", style="yellow"))
            return
        try:
            max_tokens = max_tokens_of(self.query_one("#try-max", Input).value.strip())
        except ValueError as exc:
            status.update(Text(str(exc), style="bold red"))
            return
        model = str(self.query_one("#try-model", Select).value)
        self.sending = True
        status.update(Text(f"sending to {model} through {self.spec.name}…", style="cyan"))
        self.send(model, prompt, max_tokens)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gateway-try",
          description="a prompt through a gateway")
    def send(self, model: str, prompt: str, max_tokens: int) -> None:
        try:
            answer = self.context.engine.gateway_try(self.spec, model, prompt, max_tokens)
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            self.post_message(TryAnswered(model, None, error_text(exc)))
            return
        self.post_message(TryAnswered(model, answer, None))

    def on_try_answered(self, message: TryAnswered) -> None:
        self.sending, self.answered = False, message
        status = self.query_one("#try-status", Static)
        shown = self.query_one("#try-answer", Static)
        if message.answer is None:
            status.update(Text.assemble(("the gateway did not answer: ", "bold red"),
                                        message.error or "", "\n",
                                        (f"it must be serving (see its state and logs): "
                                         f"{self.spec.host}:{self.spec.port}", "grey50")))
            shown.update("")
            return
        ok = bool(message.answer.get("ok"))
        status.update(Text(f"{message.model}: {'answered' if ok else 'refused'}",
                           style="green" if ok else "bold yellow"))
        shown.update(answer_text(message.model, message.answer))

    def action_close(self) -> None:
        self.dismiss(None)
