"""A slow shell startup on a host is measured and named, not left to a silent timeout.

Over SSH every command starts with the login shell, and bash sources ~/.bashrc first: a slow
one (conda, pyenv or nvm init; the last CI's stale pyenv lock took 60 s) is paid by every
command. The host here is a real namespace sshd whose root ~/.bashrc is `sleep 3`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labtools import llmops, llmops_json
from sshhosts import SshHost, SshHostFactory

from llmops.ops.hostpool import HostPool
from llmops.ops.transport import CommandTimeout

RC_SLEEP_S = 3.0


@pytest.fixture(scope="module")
def slow_host(ssh_host_factory: SshHostFactory) -> SshHost:
    return ssh_host_factory("slow", shell_rc=f"sleep {RC_SLEEP_S:g}\n")


def pool_for(host: SshHost, folder: Path) -> HostPool:
    spec = host.spec()
    return HostPool({spec.name: spec}.get, folder / "known_hosts",
                    trust={spec.name: host.host_pub_fingerprint})


@pytest.fixture
def slow_pool(slow_host: SshHost, tmp_path: Path) -> Iterator[HostPool]:
    pool = pool_for(slow_host, tmp_path)
    yield pool
    pool.close()


def test_host_add_names_the_slow_start_with_its_figure(slow_host: SshHost,
                                                       tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    added = llmops(lab, "host", "add", slow_host.name, "--address", slow_host.address,
                   "--user", slow_host.user, "--key", str(slow_host.key_path),
                   "--python", slow_host.spec().python, "--workdir", str(slow_host.workdir),
                   "--trust", slow_host.host_pub_fingerprint)  # succeeds: slow is not failed
    facts = llmops_json(lab, "host", "list")[0]["facts"]
    start = facts["command_start_s"]
    assert start >= RC_SLEEP_S  # `true` cannot come back before the rc's sleep ends
    note = facts["command_start_note"]
    assert note.startswith(f"each command on slow takes {start:.1f}s to start: the shell "
                           "startup of root there (~/.bashrc, ~/.profile")
    assert "every action on it pays this" in note
    said = " ".join(added.stderr.split())  # the progress line, as rich wrapped it
    assert " ".join(f"host/slow: {note}".split()) in said, added.stderr
    action = llmops_json(lab, "history", "1")  # the step's facts in the journal say it too
    probed = next(s for s in action["steps"] if s["verb"] == "probe")
    assert probed["ok"] and probed["facts"]["command_start_note"] == note


def test_a_timeout_before_any_output_names_the_shell_startup(slow_host: SshHost,
                                                             slow_pool: HostPool) -> None:
    transport = slow_pool.transport("slow")
    start = transport.measure_start()
    assert start >= RC_SLEEP_S
    with pytest.raises(CommandTimeout) as timed_out:
        transport.run(["true"], timeout=1.5)
    said = str(timed_out.value)
    assert "\n" not in said
    assert "`true` on slow timed out after 1.5s without printing anything" in said
    assert "time `ssh -i " in said and f"root@{slow_host.address} true`" in said
    assert "the shell startup of root (~/.bashrc, ~/.profile" in said
    assert f"(each took {start:.1f}s to start when last measured)" in said


def test_a_timeout_after_output_says_the_command_had_started(ssh_host: SshHost,
                                                             tmp_path: Path) -> None:
    pool = pool_for(ssh_host, tmp_path)
    try:
        with pytest.raises(CommandTimeout) as timed_out:
            # 4 s: the echo must come out before the timeout even on a loaded CI box
            pool.transport(ssh_host.name).run(["sh", "-c", "echo begun; sleep 30"], timeout=4.0)
    finally:
        pool.close()
    said = str(timed_out.value)
    assert "timed out after 4s; its channel was closed. It had started" in said
    assert "shell startup" not in said
