"""Real sshd test hosts, each in its own network namespace, made and removed by the tests.

A namespace shares this machine's filesystem and pids but has its own network: the host's
address is reachable from here, and its 127.0.0.1 only through an SSH tunnel. Namespaces
are named after this test run's pid, so a crashed run never collides with the next one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmops.ops.kinds.host import HostSpec

SSHD = "/usr/sbin/sshd"
SUBNET = ipaddress.ip_network("10.213.0.0/16")  # only addresses the tests make are targets
LOCK = Path("/tmp/llmops-sshhosts.lock")



def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def quiet_shell_rc(root: Path, content: str = "") -> list[str]:
    """argv prefix: sshd in a private mount namespace where root's ~/.bashrc is `content`
    (empty by default).

    bash sources ~/.bashrc for every SSH command. This machine's runs pyenv's rehash, which
    takes a lock file; a session the tests SIGKILL mid-rehash (a host "going away") leaves
    the lock behind and every later SSH command then stalls 60 s on it. A test host is a
    clean server: its root has no shell rc, and nothing the tests kill touches this one. A
    host made to have a slow rc (`sleep 3`) gets it the same way; where this machine has no
    ~/.bashrc to bind over, an empty one is made (bash reads an empty rc as none).
    """
    rc = Path.home() / ".bashrc"
    if not rc.exists():
        if not content:
            return []
        rc.touch()
    bound = root / "shell_rc"
    bound.write_text(content)
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
            'mount --bind "$1" "$2"; shift 2; exec "$@"', "sh", str(bound), str(rc)]


def fingerprint_file(path: Path) -> str:
    """The fingerprint `ssh-keygen -lf` prints, e.g. SHA256:abc..."""
    return sh("ssh-keygen", "-lf", str(path)).stdout.split()[1]


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (sshd's per-connection children setsid away)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class SshHost:
    """One namespace with sshd on its own address, an authorized client key and a workdir."""

    name: str
    namespace: str
    veth: str
    address: str
    gateway: str
    root: Path
    port: int = 22
    user: str = "root"
    sftp: bool = True
    """False: sshd_config has no `Subsystem sftp` line (as some locked-down hosts)."""
    shell_rc: str = ""
    """The login user's ~/.bashrc as every SSH command sees it (e.g. `sleep 3`: a slow one)."""
    sshd: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def key_path(self) -> Path:
        return self.root / "client_key"

    @property
    def host_key_path(self) -> Path:
        return self.root / "host_key"

    @property
    def host_pub_fingerprint(self) -> str:
        return fingerprint_file(self.host_key_path.with_suffix(".pub"))

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def sshd_pid(self) -> int | None:
        return self.sshd.pid if self.sshd and self.sshd.poll() is None else None

    def spec(self, **changes: object) -> HostSpec:
        """A HostSpec for this host; its python is this venv's (the filesystem is shared)."""
        fields: dict[str, object] = {
            "name": self.name, "address": self.address, "port": self.port, "user": self.user,
            "key": str(self.key_path), "python": sys.executable, "workdir": str(self.workdir)}
        return HostSpec.model_validate(fields | changes)

    def netns(self, *argv: str, **popen: object) -> subprocess.Popen[bytes]:
        """Start a process inside the namespace (e.g. a server on its 127.0.0.1)."""
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, *argv], **popen)  # type: ignore[call-overload]

    def rekey(self) -> None:
        """Give the host a new host key (as a reinstall would); restarts sshd."""
        for path in (self.host_key_path, self.host_key_path.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name,
           "-f", str(self.host_key_path))
        self.restart()

    def start(self) -> None:
        """Start sshd and wait until it answers on port 22."""
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {self.address}", f"Port {self.port}",
            f"HostKey {self.host_key_path}", f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "PermitRootLogin yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", "AllowTcpForwarding yes", "MaxSessions 100",
            "Subsystem sftp internal-sftp" if self.sftp else "", "LogLevel ERROR", ""]))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.sshd = self.netns(*quiet_shell_rc(self.root, self.shell_rc), SSHD, "-D",
                               "-f", str(config), "-E", str(self.root / "sshd.log"),
                               stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.sshd.poll() is not None:
                raise RuntimeError(f"sshd of {self.name} exited: "
                                   f"{(self.root / 'sshd.log').read_text(errors='replace')}")
            try:
                socket.create_connection((self.address, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"sshd of {self.name} did not answer on {self.address}:{self.port}")

    def kill(self) -> None:
        """sshd and every connection it serves die, as if the host went away."""
        if self.sshd is None:
            return
        for pid in [self.sshd.pid, *descendants(self.sshd.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.sshd.wait()
        self.sshd = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def teardown(self) -> None:
        self.kill()
        remove_namespace(self.namespace)


def remove_namespace(namespace: str) -> None:
    """Deleting a namespace also deletes the veth pair that had one end in it."""
    if Path("/run/netns", namespace).exists():
        for pid in sh("ip", "netns", "pids", namespace, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", namespace, check=False)


def remove_stale_namespaces() -> None:
    """Namespaces left by crashed runs (their pid is gone) would keep their addresses."""
    for entry in Path("/run/netns").glob("llmops-*-*") if Path("/run/netns").exists() else []:
        pid = entry.name.split("-")[1]
        if pid.isdigit() and not Path("/proc", pid).exists():
            remove_namespace(entry.name)


def used_addresses() -> set[ipaddress.IPv4Address]:
    out = sh("ip", "-4", "-o", "addr", "show").stdout
    return {ipaddress.ip_interface(word).ip for word in out.split() if word.startswith("10.213.")}


class SshHostFactory:
    """Makes hosts on demand and removes them all at the end of the run."""

    def __init__(self, base: Path) -> None:
        self.base, self.hosts, self.run_id = base, [], os.getpid()

    def __call__(self, name: str | None = None, port: int = 22, *, sftp: bool = True,
                 shell_rc: str = "") -> SshHost:
        n = len(self.hosts) + 1
        name = name or f"h{n}"
        namespace, veth = f"llmops-{self.run_id}-{n}", f"llm{self.run_id % 100000}h{n}"
        remove_namespace(namespace)
        sh("ip", "link", "del", veth, check=False)
        root = self.base / f"{name}-{n}"
        root.mkdir(parents=True)
        with LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            remove_stale_namespaces()
            used = used_addresses()
            block = next(b for b in SUBNET.subnets(new_prefix=30)
                         if not {b[1], b[2]} & used)
            gateway, address = str(block[1]), str(block[2])
            sh("ip", "netns", "add", namespace)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p")
            sh("ip", "link", "set", veth + "p", "netns", namespace)
            sh("ip", "addr", "add", f"{gateway}/30", "dev", veth)
            sh("ip", "link", "set", veth, "up")
        host = SshHost(name, namespace, veth, address, gateway, root, port, sftp=sftp,
                       shell_rc=shell_rc)
        self.hosts.append(host)
        ns = ("ip", "netns", "exec", namespace, "ip")
        sh(*ns, "addr", "add", f"{address}/30", "dev", veth + "p")
        sh(*ns, "link", "set", veth + "p", "up")
        sh(*ns, "link", "set", "lo", "up")
        for path in (host.host_key_path, host.key_path):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path))
        shutil.copyfile(host.key_path.with_suffix(".pub"), root / "authorized_keys")
        host.workdir.mkdir(mode=0o700)
        host.start()
        return host

    def teardown(self) -> None:
        for host in self.hosts:
            host.teardown()
        self.hosts.clear()
