"""Shared fixtures. Each section belongs to one area; add yours as a new section."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from realparts import require_netns, require_vllm
from sharedserver import SharedServer, start_shared_server, stop_shared_server
from sshhosts import SshHost, SshHostFactory

from llmops.ops.hostpool import HostPool

# --- SSH test hosts (network namespaces with a real sshd; see tests/sshhosts.py) -------------


@pytest.fixture(autouse=True)
def close_console_labs() -> Iterator[None]:
    """After each test: the labs of the consoles it ran (test_console_support.close_app_lab)."""
    yield
    support = sys.modules.get("test_console_support")
    if support is not None:
        support.close_apps_labs()


@pytest.fixture(scope="session")
def needs_root_netns() -> None:
    """Guard for tests that make namespaces themselves (`usefixtures("needs_root_netns")`):
    a reported skip here, a failure in CI."""
    require_netns()


@pytest.fixture(scope="session")
def ssh_host_factory(needs_root_netns: None,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHostFactory]:
    """Call it to get a fresh host (own namespace, sshd, keys, workdir); all removed at the end."""
    factory = SshHostFactory(tmp_path_factory.mktemp("sshhosts"))
    yield factory
    factory.teardown()


@pytest.fixture(scope="session")
def ssh_host(ssh_host_factory: SshHostFactory) -> SshHost:
    """One shared host for tests that leave its sshd and host key alone."""
    return ssh_host_factory("shared")


@pytest.fixture
def ssh_pool(ssh_host: SshHost, tmp_path: Path) -> Iterator[HostPool]:
    """A pool that knows ssh_host (and trusts its key) with a fresh known_hosts."""
    spec = ssh_host.spec()
    pool = HostPool({spec.name: spec}.get, tmp_path / "known_hosts",
                    trust={spec.name: ssh_host.host_pub_fingerprint})
    yield pool
    pool.close()


# --- One CPU vLLM server for the session (see tests/sharedserver.py) --------------------------


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    """The session's tiny-model vLLM server `shared` on host `local`; read-only use."""
    require_vllm(module=False)
    server = start_shared_server(tmp_path_factory.mktemp("shared-server"))
    yield server
    stop_shared_server(server)


# --- An OS keyring for secrets named by entry (ops/secretref.py) ------------------------------


@pytest.fixture
def ring(tmp_path: Path) -> Iterator[object]:
    """A real keyring backend (keyrings.alt's file keyring in a tmp folder: this box has no
    Secret Service) installed for the test, the previous one put back after."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    before = keyring.get_keyring()
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)
