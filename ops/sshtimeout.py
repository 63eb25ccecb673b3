"""What an SSH command's timeout tells the operator to check: one line, pure (ops/ssh.py)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from llmops.ops.transport import SHELL_STARTUP, SLOW_START_S, CommandTimeout, shown_command


def timeout_error(argv: Sequence[str], host: str, timeout: float, heard: bool, *,
                  login: list[str], user: str, start_seconds: float | None) -> CommandTimeout:
    """A command that printed nothing at all may never have started: the login shell sources
    ~/.bashrc first, and a stalled one stalls every command (`login`: the ssh argv that times
    it; `start_seconds`: the last measured start, cited when it was slow)."""
    head = (f"`{shown_command(argv)}` on {host} timed out after {timeout:g}s"
            f"{'' if heard else ' without printing anything'}; its channel was closed")
    if heard:
        return CommandTimeout(f"{head}. It had started: check what it waits on (the host's "
                              "load, its disk or network, a lock)")
    measured = (f" (each took {start_seconds:.1f}s to start when last measured)"
                if start_seconds is not None and start_seconds > SLOW_START_S else "")
    return CommandTimeout(
        f"{head}. It may never have started: time `{shlex.join([*login, 'true'])}`, which "
        f"should come back at once; if it does not, the shell startup of {user} "
        f"{SHELL_STARTUP} stalls every command on {host}{measured}. Else check the host's load")
