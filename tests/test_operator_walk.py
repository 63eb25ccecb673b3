"""A newcomer's walk, each stumble kept as a test: the CLI through the real subprocess (the
fork server), on a lab with host `local` and nothing that starts vLLM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from labtools import llmops, llmops_json, local_host_lab
from testkinds import SleeperKind, SleeperSpec, sleeper_kind

from llmops.ops import procs
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

__all__ = ["sleeper_kind"]  # the fixture, used by name


def test_rollback_last_without_a_ref_names_the_fix(tmp_path: Path) -> None:
    """`llmops rollback --last` alone: not click's bare "requires an argument", but what goes
    there, the resources that have something to undo, and the numbered form; nothing runs."""
    empty = tmp_path / "empty"
    refused = llmops(empty, "rollback", "--last", check=2)
    assert "--last needs KIND/NAME" in refused.stderr
    assert "nothing in the journal can be rolled back yet" in refused.stderr
    lab = local_host_lab(tmp_path)
    refused = llmops(lab, "rollback", "--last", check=2)
    assert "requires an argument" not in refused.stderr
    assert "`llmops rollback --last host/local`" in refused.stderr
    assert "host/local (action 1: host local added)" in refused.stderr
    assert "`llmops rollback 1`" in refused.stderr
    as_json = llmops_json(lab, "rollback", "--last-good", check=2)
    assert as_json["error"].startswith("--last-good needs KIND/NAME")
    assert [a["id"] for a in llmops_json(lab, "history")] == [1]  # nothing was rolled back
    done = llmops_json(lab, "rollback", "--last", "host/local")  # the form it names works
    assert done["ok"] and done["action"]["rollback_of"] == 1


CLI_WITH_SLEEPER = """
import sys
from testkinds import SleeperKind
from llmops.rollback.kinds import KINDS
KINDS["sleeper"] = SleeperKind()
from llmops.console.cli import cli
cli(sys.argv[1:], prog_name="llmops")
"""
"""The real CLI in its own process, with the tests' sleeper kind registered: an action that
stays open (its start waits for a file) until the test presses Ctrl-C."""


def terminal_ctrl_c() -> None:
    """In the child: SIGINT as an operator's terminal has it. A suite started in the background
    (`nohup make test &`) inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt: the CLI would sleep on through the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_mid_action_says_what_it_left(tmp_path: Path, sleeper_kind: SleeperKind) -> None:
    """Ctrl-C while `llmops apply` waits on a start: exit 130, the action marked interrupted at
    once (the journal says so before any other command runs), and the line names the action
    and the rollback that puts it back; what it started is left running, as it says."""
    lab = local_host_lab(tmp_path)
    hand = Lab(lab)
    hand.write_spec("sleeper", "z", SleeperSpec(name="z", host="local",
                                                hold=str(tmp_path / "never")))
    hand.close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_WITH_SLEEPER, "--lab", str(lab), "apply"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=terminal_ctrl_c,
    )
    engine = Engine(Lab(lab))
    transport = engine.hosts.transport("local")
    deadline = time.monotonic() + 120
    while not procs.status(transport, "sleeper-z").running:  # the start step is under way
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    try:
        assert proc.returncode == 130, (stdout, stderr)
        assert "Aborted!" not in stderr
        assert ("interrupted (Ctrl-C): action 2 (apply hand edits: sleepers/z.toml) stopped"
                " mid-way") in stderr
        assert "`llmops rollback 2` puts back the state before it" in stderr
        record = engine.lab.journal.action(2)  # no later command has recovered it
        assert record is not None and record.status == "interrupted"
        assert procs.status(transport, "sleeper-z").running  # left as it is, as the line says
    finally:
        done = engine.rollback(2)  # the fix the line names: the sleep stops
        stopped = not procs.status(transport, "sleeper-z").running
        engine.close()
        engine.lab.close()
    assert done.ok and stopped


def test_tables_to_a_pipe_keep_every_cell(tmp_path: Path) -> None:
    """`llmops host list | grep ...` or a log file: rich would cut the table to 80 columns
    (`loc…`, `0.3…`, `Deb…`); to a pipe it is as wide as its cells, unless COLUMNS is set."""
    lab = local_host_lab(tmp_path)
    facts = llmops_json(lab, "host", "show", "local")["facts"]
    text = llmops(lab, "host", "list", env={"COLUMNS": ""}).stdout
    assert "…" not in text
    row = next(line for line in text.splitlines() if line.startswith("│ local "))
    for cell in (facts["os"], facts["observed_at"], *(
            facts["packages"].get(p) or "-" for p in ("vllm", "peft", "torch"))):
        assert f" {cell} " in row
    action = llmops_json(lab, "history")[0]
    shown = llmops(lab, "history", env={"COLUMNS": ""}).stdout
    assert "host local added" in shown
    assert f"{action['before_commit'][:7]}→{action['commit'][:7]}" in shown
    narrow = llmops(lab, "host", "list", env={"COLUMNS": "60"}).stdout  # asked for: obeyed
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_port_held_by_another_process_is_refused_first(tmp_path: Path) -> None:
    """`server up --port P` with P held by something llmops did not start: refused before
    anything is written (exit 2, field port), not a start that fails and then blames its own
    revert ("failed, revert unverified", ✗ port closed) for a port that was never ours."""
    lab = local_host_lab(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512,
        "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "torch_dtype": "float32"}))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        refused = llmops_json(lab, "server", "up", "s1", "--host", "local", "--model",
                              str(model), "--port", str(port), check=2)
    assert refused["error"].startswith(
        f"port: port {port} on local is in use by a process llmops did not start")
    assert "pick another port" in refused["error"]
    assert [a["summary"] for a in llmops_json(lab, "history")] == ["host local added"]
    assert llmops_json(lab, "server", "list") == []


def test_empty_lists_say_how_to_make_the_first(tmp_path: Path) -> None:
    """A newcomer's first `server list` or `status` printed a table of headers only; it says
    there are none yet and the command that makes one (scripts read --json: still [])."""
    lab = tmp_path / "lab"
    for words, line in (
        (("host", "list"), "no hosts yet: `llmops host add NAME --local`"),
        (("history",), "no actions yet: every change is one"),
        (("server", "list"), "no servers yet: `llmops server up NAME --host H --model M`"),
        (("status", "--no-observe"), "no servers yet: `llmops server up NAME"),
        (("run", "list"), "no runs yet: `llmops run start NAME --host H --base M"),
        (("adapter", "list"), "no adapters yet: `llmops adapter deploy NAME"),
        (("index", "list"), "no indexes yet: `llmops index create NAME"),
        (("cluster", "list"), "no clusters yet: `llmops cluster up NAME"),
        (("env", "list"), "no environments yet: `llmops env add NAME --host H --packages"),
    ):
        shown = llmops(lab, *words).stdout
        assert shown.startswith(line) and "┏" not in shown, (words, shown)
    assert llmops_json(lab, "server", "list") == []


def run_at_a_terminal(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """The CLI with stdout and stderr on a pseudo-terminal, as an operator runs it."""
    leader, follower = os.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env={**os.environ, "COLUMNS": "200"})
    os.close(follower)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=30), seen.decode(errors="replace")


def test_alert_watch_says_each_round_at_a_terminal(tmp_path: Path) -> None:
    """`llmops alert watch` printed nothing until an alert: at a terminal it looked hung. Each
    round now says what it sampled (dim, on stderr, only at a terminal); `alert list` with no
    alerts says so instead of two tables of headers."""
    lab = local_host_lab(tmp_path)
    hand = Lab(lab)  # a server in the lab that is not running: sampled, answers nothing
    hand.commit("hand edit: server ghost", [hand.write_spec("server", "ghost", ServerSpec(
        name="ghost", host="local", model=str(tmp_path / "no-model"), port=18391))])
    hand.close()
    code, shown = run_at_a_terminal([sys.executable, "-m", "llmops.console.cli", "--lab",
                                     str(lab), "alert", "watch", "--rounds", "2",
                                     "--interval", "0.5"])
    assert code == 0, shown
    assert "round 1: sampled ghost:" in shown and "round 2: sampled ghost:" in shown
    piped = llmops(lab, "alert", "watch", "--rounds", "1", "--interval", "0.5")
    assert "round 1" not in piped.stdout + piped.stderr  # a pipe or cron gets alerts only
    listed = llmops(lab, "alert", "list").stdout
    assert "active alerts: none" in listed and "┏" not in listed
