"""Detached processes on a real namespace sshd host: they outlive the console's connection."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshhosts import SshHost

from llmops.ops import procs
from llmops.ops.hostpool import HostPool
from llmops.ops.kinds.host import HostSpec
from llmops.ops.procs import ProcError, ProcInfo
from llmops.ops.transport import LocalTransport, Transport

pytestmark = pytest.mark.ssh

TICKER = ("import time\nfor i in range(10**6):\n"
          "    print('tick', i, flush=True)\n    time.sleep(0.05)")
STUBBORN = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\ntime.sleep(120)")


@pytest.fixture
def t(ssh_pool: HostPool, ssh_host: SshHost) -> Iterator[Transport]:
    """The shared host's transport; whatever a test left running is stopped after it."""
    transport = ssh_pool.transport(ssh_host.name)
    yield transport
    for info in procs.list_procs(transport):
        if info.running:
            procs.stop(transport, info.name, grace=1)


def ticks(lines: list[str]) -> int:
    """The newest tick the log shows (-1 before the first): a window of the log's last lines
    can hold tick 150-199 and no line that starts with "tick 3"."""
    return max((int(line.split()[1]) for line in lines if line.startswith("tick ")), default=-1)


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def alive(pid: int | None) -> bool:
    """True for a live, non-zombie pid (the namespace shares this machine's pid space)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in "ZX"
    except OSError:
        return False


def test_survives_the_console_and_stops_with_term(ssh_host: SshHost, tmp_path: Path) -> None:
    spec = ssh_host.spec()
    pool = HostPool({spec.name: spec}.get, tmp_path / "kh",
                    trust={spec.name: ssh_host.host_pub_fingerprint})
    began = time.monotonic()
    info = procs.start(pool.transport(spec.name), "ticker", [sys.executable, "-c", TICKER],
                       env={"SECRET_TOKEN": "s3cret"}, cwd=str(tmp_path))
    assert time.monotonic() - began < 30  # returned: a nohup-over-SSH hang never returns
    assert info.running
    assert alive(info.pid)
    assert info.cwd == str(tmp_path)
    assert info.env_keys == ["SECRET_TOKEN"]
    assert "s3cret" not in json.dumps(info.__dict__)
    pool.close()  # the console goes away

    pool = HostPool({spec.name: spec}.get, tmp_path / "kh")
    t = pool.transport(spec.name)
    time.sleep(0.3)
    again = procs.status(t, "ticker")
    assert again.running
    assert again.pid == info.pid
    wait_for(lambda: ticks(procs.tail(t, "ticker")) >= 3)  # ticking on after the console left
    lines = procs.tail(t, "ticker", lines=5)
    assert len(lines) == 5
    assert all(line.startswith("tick") for line in lines)
    assert procs.tail(t, "ticker", lines=1000)[0].startswith("--- start ")
    assert "ticker" in {p.name for p in procs.list_procs(t)}

    stopped = procs.stop(t, "ticker", grace=5)
    assert (stopped.state, stopped.stopped, stopped.rc) == ("exited", "term", -15)
    assert stopped.seconds is not None
    assert stopped.seconds < 5
    assert not alive(info.pid)
    assert procs.stop(t, "ticker").stopped == "not running"
    pool.close()


def test_stop_kills_what_ignores_term(t: Transport) -> None:
    info = procs.start(t, "stubborn", [sys.executable, "-c", STUBBORN])
    wait_for(lambda: "ready" in procs.tail(t, "stubborn"))
    stopped = procs.stop(t, "stubborn", grace=0.5)
    assert stopped.stopped == "kill"
    assert stopped.state == "exited"
    assert stopped.rc == -9
    assert stopped.seconds is not None
    assert 0.5 <= stopped.seconds < 5
    assert not alive(info.pid)


def test_exit_code_env_and_cwd_are_recorded(t: Transport, tmp_path: Path) -> None:
    procs.start(t, "short.job", ["sh", "-c", 'echo "$GREETING"; pwd; exit 3'],
                env={"GREETING": "hello there"}, cwd=str(tmp_path))
    wait_for(lambda: procs.status(t, "short.job").rc is not None)
    done = procs.status(t, "short.job")
    assert (done.state, done.rc) == ("exited", 3)
    assert done.ended_at
    assert procs.tail(t, "short.job")[1:] == ["hello there", str(tmp_path), done_line(done)]
    lines, offset = procs.read_log(t, "short.job", 0)
    assert lines[0].startswith("--- start ")
    assert procs.read_log(t, "short.job", offset) == (
        [], offset)
    again = procs.start(t, "short.job", ["echo", "second"])  # an exited name can start again
    wait_for(lambda: procs.status(t, "short.job").rc == 0)
    assert procs.tail(t, "short.job")[-2:] == ["second", done_line(procs.status(t, "short.job"))]
    assert again.pid is not None


def done_line(info: ProcInfo) -> str:
    return f"--- exit {info.rc} {info.ended_at}"


def test_pid_reuse_is_detected(t: Transport, ssh_host: SshHost) -> None:
    info = procs.start(t, "sleeper", ["sleep", "60"])
    record = f"{ssh_host.workdir}/run/sleeper/proc.json"
    data = json.loads(t.read_text(record))
    data["start_ticks"] += 1  # as if the pid now belonged to a program started later
    t.write_text(record, json.dumps(data))
    assert procs.status(t, "sleeper").state == "reused"
    assert procs.stop(t, "sleeper", grace=2).stopped == "term"  # its own session is still ours
    assert not alive(info.pid)


def test_refusals(t: Transport, tmp_path: Path) -> None:
    procs.start(t, "srv-blue", ["sleep", "60"])
    with pytest.raises(ProcError, match="srv-blue is already running"):
        procs.start(t, "srv-blue", ["sleep", "60"])
    with pytest.raises(ProcError, match="cannot start no-such-program"):
        procs.start(t, "bad-prog", ["no-such-program", "x"])
    with pytest.raises(ProcError, match="does not exist"):
        procs.start(t, "bad-cwd", ["true"], cwd=str(tmp_path / "absent"))
    for name in ("Bad", "-x", "a/b", "a b", ""):
        with pytest.raises(ValueError, match="bad process name"):
            procs.status(t, name)
    assert procs.status(t, "never-started").state == "missing"
    assert procs.tail(t, "never-started") == []


def test_local_transport_runs_the_same_script(tmp_path: Path) -> None:
    local = LocalTransport(HostSpec(name="local", local=True, python=sys.executable,
                                    workdir=str(tmp_path / "work")))
    info = procs.start(local, "loop", [sys.executable, "-c", TICKER])
    assert info.running
    assert os.stat(tmp_path / "work" / "run" / "loop").st_mode & 0o777 == 0o700
    assert procs.stop(local, "loop", grace=2).stopped == "term"
    assert [p.state for p in procs.list_procs(local)] == ["exited"]
