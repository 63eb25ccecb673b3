"""What every CLI command shares: opening the lab, exit codes, JSON or rich output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console

from llmops.ops.kinds.base import Spec, SpecError
from llmops.ops.transport import HostKeyError, TransportError
from llmops.rollback.engine import ActionRefused, Engine
from llmops.rollback.journal import ActionRecord
from llmops.rollback.lab import Lab, LabFileError, default_lab_path
from llmops.rollback.lock import LabBusy

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_BUSY = 0, 1, 2, 3

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """Global options, passed down explicitly (no global state)."""

    lab_path: Path | None
    read_only: bool
    lock_wait: float = 5.0

    def lab(self) -> Lab:
        return Lab(self.lab_path or default_lab_path())


def settings() -> Settings:
    return click.get_current_context().find_object(Settings)  # type: ignore[return-value]


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def emit_json(data: Any) -> None:
    click.echo(
        json.dumps(
            data,
            indent=2,
            default=lambda o: asdict(o) if is_dataclass(o) and not isinstance(o, type) else str(o),
        )
    )


def fail(message: str, code: int = EXIT_BAD_INPUT, as_json: bool = False) -> NoReturn:
    if as_json:
        emit_json({"ok": False, "error": message, "exit_code": code})
    else:
        err.print(f"[bold red]error:[/] {message}")
    sys.exit(code)


def existing_spec(engine: Engine, kind: str, name: str, as_json: bool) -> Spec:
    """The resource's desired spec, or exit 2 naming it and where to look."""
    spec = engine.lab.read_spec(kind, name)
    if spec is None:
        fail(f"name: there is no {kind} named {name} (see `llmops {kind} list`)", as_json=as_json)
    return spec


def refuse_if_read_only(what: str) -> None:
    if settings().read_only:
        fail(f"read-only mode: `{what}` would change the lab; run without --read-only")


def validation_message(exc: ValidationError) -> str:
    """The first pydantic error as `field: problem`, the way operators read it."""
    parts = []
    for e in exc.errors()[:3]:
        field = ".".join(str(p) for p in e["loc"]) or "spec"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)


@contextmanager
def engine_for_cli(as_json: bool = False) -> Iterator[Engine]:
    """An engine on the lab, with every expected failure turned into a clear exit."""
    lab = None
    engine = None
    try:
        lab = settings().lab()
        engine = Engine(lab, lock_wait=settings().lock_wait)
        yield engine
    except SpecError as exc:
        fail(str(exc), EXIT_BAD_INPUT, as_json)
    except ValidationError as exc:
        fail(validation_message(exc), EXIT_BAD_INPUT, as_json)
    except (LabFileError, ActionRefused) as exc:
        fail(str(exc), EXIT_BAD_INPUT, as_json)
    except LabBusy as exc:
        fail(str(exc), EXIT_BUSY, as_json)
    except HostKeyError as exc:
        fail(str(exc), EXIT_BAD_INPUT, as_json)
    except TransportError as exc:
        fail(str(exc), EXIT_FAILED, as_json)
    finally:
        if engine is not None:
            engine.close()
        if lab is not None:
            lab.close()


def report_action(record: ActionRecord, as_json: bool) -> NoReturn:
    """Print an action's verdict, steps and checks; exit 0 when it did what was asked."""
    ok = record.status == "succeeded" and record.checks_passed
    if as_json:
        emit_json({"ok": ok, "action": record})
        sys.exit(EXIT_OK if ok else EXIT_FAILED)
    colour = "green" if ok else "red"
    secs = f"{record.seconds:.1f}s" if record.seconds is not None else "?"
    out.print(
        f"[bold]action {record.id}[/] {record.summary}: [{colour}]{record.display_status}[/]"
        f" in {secs}"
    )
    for step in record.steps:
        mark = "[green]✓[/]" if step.get("ok") else "[red]✗[/]"
        phase = "revert: " if step.get("phase") == "revert" else ""
        out.print(
            f"  {mark} {phase}{step['ref']} {step['verb']}: {step['detail']} ({step['seconds']}s)"
            + (f" — {step['error']}" if step.get("error") else "")
        )
    for check in record.checks:
        mark = "[green]✓[/]" if check["ok"] else "[red]✗[/]"
        out.print(f"  {mark} check {check['ref']} {check['name']}: {check['detail']}")
    if record.error:
        out.print(f"[red]{record.error}[/]")
    if record.revert_error:
        out.print(f"[bold red]the revert failed too:[/] {record.revert_error}")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def stream_progress(engine: Engine, as_json: bool) -> None:
    """Show step progress lines on stderr while an action runs (not in --json mode)."""
    if not as_json:
        engine.progress_listeners.append(lambda _a, ref, line: err.print(f"[dim]{ref}: {line}[/]"))
