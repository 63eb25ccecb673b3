"""Hosts over real SSH (network-namespace sshd hosts), through the real CLI."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from labtools import git_log, llmops, llmops_json
from realparts import assert_probe_matches_machine
from sshhosts import SshHost, SshHostFactory


def add_args(host: SshHost, name: str | None = None) -> list[str]:
    return [
        "host",
        "add",
        name or host.name,
        "--address",
        host.address,
        "--user",
        host.user,
        "--key",
        str(host.key_path),
        "--python",
        host.spec().python,
        "--workdir",
        str(host.workdir),
    ]


def test_unknown_key_refused_then_trusted(ssh_host: SshHost, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "history")
    before = git_log(lab)
    refused = llmops(lab, *add_args(ssh_host), check=2)
    assert ssh_host.host_pub_fingerprint in refused.stderr and "--trust" in refused.stderr
    assert git_log(lab) == before and not (lab / "hosts").exists()

    wrong = "SHA256:" + "A" * 43
    refused = llmops(lab, *add_args(ssh_host), "--trust", wrong, check=2)
    assert "refusing" in refused.stderr and ssh_host.host_pub_fingerprint in refused.stderr
    assert git_log(lab) == before

    added = llmops_json(lab, *add_args(ssh_host), "--trust", ssh_host.host_pub_fingerprint)
    assert added["ok"], added
    assert ssh_host.address in (lab / "known_hosts").read_text()
    # trust is the operator's decision, not desired state: known_hosts stays out of git
    tracked = subprocess.run(["git", "-C", str(lab), "ls-files"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert "known_hosts" not in tracked
    host_key = ssh_host.host_key_path.with_suffix(".pub").read_text().split()[1]
    history = subprocess.run(["git", "-C", str(lab), "log", "-p", "--all"], capture_output=True,
                             text=True, check=True).stdout
    assert host_key not in history
    facts = llmops_json(lab, "host", "show", ssh_host.name)["facts"]
    assert facts["workdir"] == str(ssh_host.workdir)
    assert facts["packages"]["vllm"]  # the venv the namespace host shares has vLLM
    assert_probe_matches_machine(facts)  # the namespace shares this machine's cores and GPUs
    probe = llmops_json(lab, "host", "probe", ssh_host.name)
    assert probe["hostname"] and probe["python_version"].startswith("3.")


def test_add_remove_rollback_over_ssh(ssh_host: SshHost, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, *add_args(ssh_host), "--trust", ssh_host.host_pub_fingerprint)
    removed = llmops_json(lab, "host", "remove", ssh_host.name)
    assert removed["ok"]
    back = llmops_json(lab, "rollback", str(removed["action"]["id"]))
    assert back["ok"] and back["action"]["seconds"] < 60
    checks = {c["name"]: c["ok"] for c in back["action"]["checks"]}
    assert checks == {"reachable": True, "command start": True, "probe matches": True}
    assert llmops_json(lab, "host", "show", ssh_host.name)["spec"]["address"] == ssh_host.address
    again = llmops_json(lab, "rollback", str(back["action"]["id"]))  # rollback of the rollback
    assert again["ok"]
    assert llmops_json(lab, "host", "list") == []


def test_changed_key_refused_loudly(ssh_host_factory: SshHostFactory, tmp_path: Path) -> None:
    host = ssh_host_factory("rekeyed")
    lab = tmp_path / "lab"
    llmops(lab, *add_args(host), "--trust", host.host_pub_fingerprint)
    host.rekey()
    refused = llmops(
        lab,
        *add_args(host),
        "--workdir",
        str(host.workdir / "b"),
        "--trust",
        host.host_pub_fingerprint,
        check=2,
    )
    assert "CHANGED" in refused.stderr.upper()
    probe = llmops(lab, "host", "probe", host.name, check=None)
    assert probe.returncode != 0 and "CHANGED" in (probe.stderr + probe.stdout).upper()


def nothing_written(lab: Path, before: list[str]) -> None:
    """A refusal leaves no commit, no journal row and no host file."""
    assert git_log(lab) == before and not (lab / "hosts").exists()
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    assert rows == 0


def test_unreachable_address_or_port_is_bad_input(ssh_host: SshHost, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    llmops(lab, "history")
    before = git_log(lab)
    nowhere = ["host", "add", "nowhere", "--address", "no-such-host.invalid"]
    refused = llmops(lab, *nowhere, "--key", str(ssh_host.key_path), check=2)
    said = " ".join(refused.stderr.split())
    assert "address: cannot reach nowhere" in said and "cannot resolve" in said, said
    refused = llmops(lab, *add_args(ssh_host), "--port", "2222", check=2)
    said = " ".join(refused.stderr.split())
    assert "port: cannot reach" in said and "connection refused" in said, said
    assert "check --port" in said
    nothing_written(lab, before)


def test_sshd_without_sftp_is_refused_naming_the_setting(
    ssh_host_factory: SshHostFactory, tmp_path: Path
) -> None:
    host = ssh_host_factory("nosftp", sftp=False)
    lab = tmp_path / "lab"
    llmops(lab, "history")
    before = git_log(lab)
    refused = llmops(lab, *add_args(host), "--trust", host.host_pub_fingerprint, check=2)
    said = " ".join(refused.stderr.split())
    assert "offers no SFTP" in said and "Subsystem sftp internal-sftp" in said, said
    assert "Channel closed" not in said
    nothing_written(lab, before)


def test_forgotten_key_is_unknown_again(ssh_host: SshHost, tmp_path: Path) -> None:
    """Without the lab's known_hosts entry a known host is unknown again: a probe and a change
    are refused until the operator confirms the fingerprint (nothing written)."""
    lab = tmp_path / "lab"
    llmops(lab, *add_args(ssh_host), "--trust", ssh_host.host_pub_fingerprint)
    (lab / "known_hosts").unlink()
    before = git_log(lab)
    probe = llmops(lab, "host", "probe", ssh_host.name, check=2)
    assert ssh_host.host_pub_fingerprint in probe.stderr and "--trust" in probe.stderr
    change = llmops(lab, *add_args(ssh_host), "--cost-per-hour", "3", check=2)
    assert ssh_host.host_pub_fingerprint in change.stderr
    assert git_log(lab) == before
    assert not (lab / "known_hosts").exists() or ssh_host.address not in (
        lab / "known_hosts").read_text()
