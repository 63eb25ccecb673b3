"""`llmops demo`: the two-minute tour — a tiny local model served as `demo`, then the console.

It does what a newcomer would do by hand (host add, make a model, server up), through the
same engine, so the tour's actions are real ones: in History, and rolled back with one key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llmops.console.cli.common import (
    engine_for_cli,
    err,
    esc,
    fail,
    out,
    refuse_if_read_only,
    report_action,
    stream_progress,
)
from llmops.ops.kinds.host.spec import HostSpec
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.rollback.engine import Engine

SCRIPT = """\
1. Watch the telemetry: Servers (key 2) shows demo's tokens/s, p95 latency and KV cache.
2. Change it: select demo, press e, set max_model_len to 128
   (or run `llmops server up demo --max-model-len 128`).
3. Undo it: ctrl+z on demo's row (or on the action in History): blue-green switches back."""


def ensure_local_host(engine: Engine) -> None:
    """Host `local` (this machine, this python) unless the lab has one already."""
    from llmops.rollback.engine import Change

    if engine.lab.read_spec("host", "local") is not None:
        return
    spec = HostSpec(name="local", local=True, python=sys.executable)
    record = engine.act([Change("host", "local", spec)], "host local added (demo)")
    if record.status != "succeeded":
        report_action(record, as_json=False)


def ensure_tiny_model(engine: Engine, model_dir: Path) -> None:
    """The tests' tiny Llama, made on the host by its own python (~5 s), once."""
    err.print(f"[dim]the tiny model goes to {esc(model_dir)} (made once, ~5 s) …[/]")
    try:
        made = engine.make_demo_model("local", str(model_dir))
    except RuntimeError as exc:
        fail(str(exc), code=1)
    if not made:
        err.print(f"[dim]tiny model already at {esc(model_dir)}[/]")


@click.command("demo")
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    help="Where the tiny model goes (default: demo-model beside the lab folder).",
)
@click.option("--port", type=int, default=8000, show_default=True, help="The live port.")
@click.option("--no-console", is_flag=True, help="Set it up and stop (for scripts and tests).")
def demo(model_dir: Path | None, port: int, no_console: bool) -> None:
    """Serve a tiny local model as server `demo` on host `local`, then open the console.

    The demo server runs eager (`--enforce-eager`): compiling a 6 MB model gains nothing
    and costs ~10 s of its start on a CPU; its one rank runs in vLLM's engine process
    (`cpu_inline_worker`: one vLLM import fewer per start). Its targets are a CPU's (first
    token 2 s, 10 tokens/s), so a busy laptop doesn't fail the checklist and revert the tour."""
    from llmops.rollback.engine import Change

    refuse_if_read_only("demo")
    with engine_for_cli(create=True) as engine:
        lab_path = engine.lab.path
        model_dir = (model_dir or lab_path.parent / "demo-model").expanduser().absolute()
        ensure_local_host(engine)
        ensure_tiny_model(engine, model_dir)
        spec = ServerSpec(
            name="demo",
            host="local",
            model=str(model_dir),
            dtype="float32",
            max_model_len=256,
            port=port,
            strategy="blue-green",
            cpu_kvcache_gib=1,
            cpu_inline_worker=True,
            args={"enforce-eager": True},
            target_ttft_p95_ms=2000,
            target_output_tps=10,
        )
        if engine.lab.read_spec("server", "demo") == spec:
            err.print("[dim]server demo is already in the lab as the demo made it[/]")
        else:
            stream_progress(engine, as_json=False)
            err.print("starting vLLM for server demo (about half a minute on a laptop) …")
            record = engine.act([Change("server", "demo", spec)], "server demo up (demo)")
            if not record.ok:
                report_action(record, as_json=False)
            out.print(
                f"[green]server demo is up[/] on port {port} in {record.seconds or 0:.1f}s,"
                f" {len(record.checks)} checks passed (action {record.id})"
            )
    out.print(SCRIPT)
    if not no_console:
        from llmops.console.app import run_console

        if sys.stdin.isatty():
            click.prompt("press enter to open the console", default="", show_default=False)
        run_console(lab_path, read_only=False, intro=SCRIPT)
