"""What every CLI command shares: opening the lab, exit codes, JSON or rich output.

Text that comes from specs, hosts or errors is never read as rich markup: it is escaped
(`esc`) or printed as `Text`, so a `[/x]` in a model path prints as itself.

The CLI starts fast (`llmops --help`, shell completion): modules here import llmops.rollback
and the kinds' machinery inside the functions that use them (types under TYPE_CHECKING); at
module level only click, rich and the kinds' `spec` modules (the options come from them)."""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the lab, the engine and the kinds load when a command uses them
    from llmops.ops.kinds.base import Spec
    from llmops.rollback.drill import Readiness
    from llmops.rollback.engine import Engine
    from llmops.rollback.lab import Lab
    from llmops.rollback.records import ActionRecord

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_BUSY = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
F = TypeVar("F", bound=Callable[..., Any])
WIDEST_TABLE = 1000
"""A table to a pipe is as wide as its cells, up to this many columns."""


class Printer(Console):
    """rich, but what goes to a pipe or a log file keeps all its text: rich would hard-wrap a
    message at 80 columns, splitting errors mid-phrase for whoever greps them, and cut a
    table's cells to `loc…` / `0.3…`. So a message stays one line and a table is as wide as
    its cells (unless COLUMNS says otherwise)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not self.is_terminal and all(isinstance(o, str | Text) for o in objects):
            kwargs.setdefault("soft_wrap", True)
        elif not self.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
            tables = [o for o in objects if isinstance(o, Table)]
            if tables:
                wide = self.options.update(width=WIDEST_TABLE)
                need = max(Measurement.get(self, wide, t).maximum for t in tables)
                width = self.width
                self.width = max(width, min(need, WIDEST_TABLE))  # print clamps to self.width
                try:
                    super().print(*objects, **kwargs)
                finally:
                    self.width = width
                return
        super().print(*objects, **kwargs)


out = Printer(highlight=False)
err = Printer(stderr=True, highlight=False)


def esc(value: object) -> str:
    """Anything that did not come from our own format strings, safe inside rich markup."""
    return escape(str(value))


def log_to_file() -> None:
    """Library log lines (paramiko's "Secsh channel N open FAILED" while vLLM loads) go to
    a log file instead of Python's last-resort handler, which writes them over the screen."""
    import platformdirs

    root = logging.getLogger()
    if any(h.get_name() == "llmops" for h in root.handlers):
        return
    handler: logging.Handler
    try:
        path = platformdirs.user_log_path("llmops") / "llmops.log"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)  # log lines name hosts and paths: the operator's only
        os.close(os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        handler = logging.FileHandler(path, delay=True)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s pid %(process)d %(name)s: %(message)s"))
    handler.set_name("llmops")
    root.addHandler(handler)


@dataclass
class Settings:
    """Global options, passed down explicitly (no global state)."""

    lab_path: Path | None
    read_only: bool
    lock_wait: float = 5.0

    def lab(self, create: bool = False) -> Lab:
        from llmops.rollback.lab import Lab

        return Lab(self.checked_path(create))

    def checked_path(self, create: bool = False) -> Path:
        """The lab's path; a missing lab is refused (exit 2) unless this command may create it:
        only on the default path, never read-only, so a mistyped --lab makes nothing."""
        from llmops.rollback.lab import LabMissing, default_lab_path, is_lab

        path = self.lab_path or default_lab_path()
        if is_lab(path):
            return path
        if self.read_only:
            raise LabMissing(path, f"there is no lab at {path} (and --read-only creates none)")
        if self.lab_path is not None:
            raise LabMissing(path, f"{LabMissing(path)}, or check --lab (or LLMOPS_LAB)")
        if not create:
            raise LabMissing(path, f"there is no lab at {path} yet: `llmops init` creates it")
        err.print(f"creating the lab at {esc(path)} (first use; --lab DIR picks another)")
        return path


def settings() -> Settings:
    return click.get_current_context().find_object(Settings)  # type: ignore[return-value]


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def print_rows(table: Table, what: str, how: str) -> None:
    """A list's table, or with no rows a line saying so and how to make the first (an empty
    table of headers told a newcomer nothing; scripts read --json)."""
    if table.row_count:
        out.print(table)
    else:
        out.print(Text(f"no {what} yet: {how}"))


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
        err.print(f"[bold red]error:[/] {esc(message)}")
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


def put_spec(
    engine: Engine, kind: str, spec: Spec, new_verb: str, as_json: bool,
    trust: dict[str, str] | None = None,
) -> None:
    """One action putting a spec into the lab (created, or changed when it exists). A change
    first says whether what runs now could be put back, and how long that took before."""
    from llmops.rollback.engine import Change

    stream_progress(engine, as_json)
    verb = "changed" if engine.lab.read_spec(kind, spec.name) else new_verb
    change = Change(kind, spec.name, spec)
    ready = engine.readiness_for([change]) if verb == "changed" else []
    if not as_json:
        for r in ready:
            show_readiness(r)
    record = engine.act([change], f"{kind} {spec.name} {verb}", trust=trust)
    report_action(record, as_json, {"readiness": [asdict(r) for r in ready]} if ready else None)


def expected_text(ready: Readiness) -> str:
    """The rollback time the journal expects, and what it is based on: before a change, the
    past rollbacks that ran the steps this change's plan runs (a change that restarts nothing
    is not rolled back in the minutes a restart took)."""
    steps = ready.steps  # None: not planned (a drill's check, a host that did not answer)
    seconds = ready.expected_seconds
    if steps is None:
        return (f"~{seconds:.1f}s (p50 of {ready.samples} rollbacks)" if seconds is not None
                else "not known yet")
    if not steps:
        like = (f"~{seconds:.1f}s (p50 of {ready.samples} rollbacks that ran no step)"
                if seconds is not None else "its checks only (no such rollback journalled yet)")
        return f"{like}: this change restarts nothing (no step planned), nor will its rollback"
    what = ", ".join(steps)
    if seconds is None:
        return f"not known yet (no rollback that ran {what} journalled yet)"
    return f"~{seconds:.1f}s (p50 of {ready.samples} rollbacks that ran {what})"


def show_readiness(ready: Readiness) -> None:
    """On stderr, before the action: ready or each blocker (not a refusal: the operator may be
    replacing a broken state), and the rollback time the journal's history expects."""
    verdict = "[green]ready[/]" if ready.ready else "[yellow]BLOCKED[/]"
    err.print(f"rollback of {esc('/'.join(ready.ref))}: {verdict};"
              f" expected {esc(expected_text(ready))}")
    for blocker in ready.blockers:
        err.print(f"  [yellow]✗ {esc(blocker)}[/]")


def remove_resource(command: str, kind: str, name: str, summary: str, as_json: bool) -> None:
    """One action taking a resource out of the lab (`server down`, `host remove`)."""
    from llmops.rollback.engine import Change

    refuse_if_read_only(command)
    with engine_for_cli(as_json) as engine:
        stream_progress(engine, as_json)
        report_action(engine.act([Change(kind, name, None)], summary), as_json)


def recover(engine: Engine) -> None:
    """Mark actions a killed llmops left `running` as interrupted, as the console does at
    start-up, so they can be rolled back; says so on stderr."""
    from llmops.rollback.lock import LabBusy

    try:
        found = engine.recover()
    except LabBusy:
        return  # someone took the lock meanwhile: they are alive, or recover next time
    for action_id in found:
        record = engine.lab.journal.action(action_id)
        why = record.error if record and record.error else "interrupted"
        err.print(
            f"[yellow]action {action_id} was interrupted:[/] {esc(why)};"
            f" undo it with `llmops rollback {action_id}`"
        )


def interrupted(engine: Engine, as_json: bool) -> None:
    """Ctrl-C inside an action: mark it interrupted now (not at the next command) and say what
    it left and how to go back; exit 130. Outside an action: return (nothing to say)."""
    from llmops.rollback.lock import LabBusy

    try:
        found = engine.recover()
    except (LabBusy, KeyboardInterrupt):
        found = []
    if not found:
        return None
    records = [engine.lab.journal.action(n) for n in found]
    what = ", ".join(f"action {r.id} ({r.summary})" for r in records if r is not None)
    undo = " or ".join(f"`llmops rollback {n}`" for n in found)
    message = (f"interrupted (Ctrl-C): {what} stopped mid-way; what it started on the hosts is"
               f" left as it is (`llmops plan` shows it); {undo} puts back the state before it")
    fail(message, EXIT_INTERRUPTED, as_json)


def gc_after_start() -> None:
    """The command has started (the lab and the engine loaded): the garbage collector that
    `main` held off runs again for what the command does next (an action that waits minutes,
    `alert watch`, the console), with what starting made frozen out of its way. A no-op
    where the collector was never held off (the tests' in-process CLI)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@contextmanager
def engine_for_cli(as_json: bool = False, *, create: bool = False) -> Iterator[Engine]:
    """An engine on the lab (recovered first unless read-only), with every expected failure
    turned into a clear exit. `create`: this command may make the default lab."""
    from pydantic import ValidationError

    from llmops.console.specs import problems_text
    from llmops.ops.kinds.base import SpecError
    from llmops.rollback.engine import ActionRefused, Engine
    from llmops.rollback.lab import LabFileError, LabMissing
    from llmops.rollback.lock import LabBusy
    from llmops.rollback.operate import HostKeyError, TransportError

    lab = None
    engine = None
    try:
        lab = settings().lab(create)
        engine = Engine(lab, lock_wait=settings().lock_wait)
        engine.records = not settings().read_only
        for notice in lab.notices:  # what opening the lab had to repair (a lost lab.db)
            err.print(f"[yellow]warning:[/] {esc(notice)}")
        if not settings().read_only:
            recover(engine)
        gc_after_start()
        yield engine
    except SpecError as exc:
        fail(str(exc), EXIT_BAD_INPUT, as_json)
    except ValidationError as exc:
        fail(problems_text(exc), EXIT_BAD_INPUT, as_json)
    except (LabFileError, LabMissing, ActionRefused) as exc:
        fail(str(exc), EXIT_BAD_INPUT, as_json)
    except LabBusy as exc:
        fail(str(exc), EXIT_BUSY, as_json)
    except HostKeyError as exc:
        fail(str(exc), EXIT_BAD_INPUT, as_json)
    except TransportError as exc:
        fail(str(exc), EXIT_FAILED, as_json)
    except KeyboardInterrupt:
        if engine is not None:
            interrupted(engine, as_json)
        fail("interrupted (Ctrl-C)", EXIT_INTERRUPTED, as_json)
    finally:
        if engine is not None:
            engine.close()
        if lab is not None:
            lab.close()


def report_action(
    record: ActionRecord, as_json: bool, extra: dict[str, Any] | None = None
) -> NoReturn:
    """Print an action's verdict, steps and checks; exit 0 when it did what was asked."""
    ok = record.ok
    if as_json:
        emit_json({"ok": ok, "action": record, **(extra or {})})
        sys.exit(EXIT_OK if ok else EXIT_FAILED)
    colour = "green" if ok else "red"
    secs = f"{record.seconds:.1f}s" if record.seconds is not None else "?"
    out.print(
        f"[bold]action {record.id}[/] {esc(record.summary)}:"
        f" [{colour}]{record.display_status}[/] in {secs}"
    )
    for step in record.steps:
        mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
        phase = "revert: " if step.phase == "revert" else ""
        line = f"{phase}{step.ref} {step.verb}: {step.detail} ({step.seconds}s)"
        error = f" — {step.error}" if step.error else ""
        out.print(f"  {mark} {esc(line + error)}")
    for check in record.checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        phase = "revert: " if check.phase == "revert" else ""
        line = f"{phase}check {check.ref} {check.name}: {check.detail}"
        out.print(f"  {mark} {esc(line)}")
    if record.error:
        out.print(Text(record.error, style="red"))
    if record.revert_error:
        out.print(f"[bold red]the revert failed too:[/] {esc(record.revert_error)}")
        out.print("[yellow]what it started stays marked unknown — revert pending; the next"
                  " action or `llmops plan` that reaches the host finishes the revert[/]")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def stream_progress(engine: Engine, as_json: bool) -> None:
    """Show step progress lines on stderr while an action runs (not in --json mode)."""
    if not as_json:
        engine.progress_listeners.append(
            lambda _a, ref, line: err.print(Text(f"{ref}: {line}", style="dim"))
        )
