"""What an operator reads when a start fails: the cause and where the whole log is, never
a host-side script's source or vLLM's usage text (those go to the progress stream / log)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmops.ops import procs
from llmops.ops.kinds.host import HostSpec
from llmops.ops.kinds.server import ServerSpec
from llmops.ops.kinds.server.apply import ServerStartError, wait_ready
from llmops.ops.transport import CommandFailed, LocalTransport

USAGE_THEN_ERROR = (
    "import sys\n"
    "print('usage: api_server.py [-h] [--model MODEL] [--tokenizer-mode {auto,slow}]')\n"
    "for i in range(30): print(f'                     [--flag-{i} FLAG_{i}]')\n"
    "print(\"api_server.py: error: argument --tokenizer-mode: invalid choice: '--api-key=x'\")\n"
    "sys.exit(2)\n"
)


def local(tmp_path: Path) -> LocalTransport:
    return LocalTransport(HostSpec(name="local", local=True, python=sys.executable,
                                   workdir=str(tmp_path / "work")))


def test_a_failed_script_is_named_not_quoted(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed) as failed:
        local(tmp_path).python_script("import sys  # MARKER-OF-THE-SOURCE\nsys.exit(3)",
                                      []).check()
    assert "MARKER-OF-THE-SOURCE" not in str(failed.value)
    assert "-c '<script>'" in str(failed.value) or "-c <script>" in str(failed.value)


def test_a_failed_start_says_the_cause_in_one_line(tmp_path: Path) -> None:
    t = local(tmp_path)
    spec = ServerSpec(name="bad", host="local", model="/m", port=18391)
    procs.start(t, "bad", [sys.executable, "-c", USAGE_THEN_ERROR])
    shown: list[str] = []
    with pytest.raises(ServerStartError) as failed:
        wait_ready(t, spec, "bad", spec.port, shown.append, timeout=30)
    message = str(failed.value)
    assert "\n" not in message and "usage:" not in message and "--flag-" not in message
    assert "invalid choice: '--api-key=x'" in message
    assert "run/bad/log" in message  # where the whole log is
    assert any("usage: api_server.py" in line for line in shown)  # the tail went to progress


def test_a_crashed_weights_script_gives_its_last_line() -> None:
    """The script's traceback went to progress; the error keeps only the cause."""
    from llmops.ops.kinds.server.weights import _result_line

    traceback = ["Traceback (most recent call last):", '  File "/x/hub.py", line 9, in get',
                 "    raise OSError(f'cache at {path} unreadable')", "OSError: cache unreadable"]
    assert _result_line(traceback) == {"error": "OSError: cache unreadable"}


STUCK = (
    "import time\n"
    "print('(APIServer pid=1) WARNING 11-25 22:00:00 [x.py:1] ulimit: OSError: too many files',"
    " flush=True)\n"
    "print('(Worker pid=2) INFO 11-25 22:00:01 [x.py:2] Warming up model', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_stuck_start_says_where_it_got_to(tmp_path: Path) -> None:
    """Not healthy in time: the last line is the news, not a warning that mentions an error."""
    t = local(tmp_path)
    spec = ServerSpec(name="stuck", host="local", model="/m", port=18393)
    procs.start(t, "stuck", [sys.executable, "-c", STUCK])
    try:
        with pytest.raises(ServerStartError) as failed:
            wait_ready(t, spec, "stuck", spec.port, [].append, timeout=3)
    finally:
        procs.stop(t, "stuck", grace=1)
    assert "not healthy after 3s: Worker: Warming up model" in str(failed.value)
