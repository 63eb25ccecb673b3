"""The env kind end to end on a real host in a network namespace (sshd, no route to any
package index: wheelhouse mode) and on host `local` (index mode, a file:// index): create,
upgrade, roll back by symlink switch, roll back the rollback, a failing upgrade that changes
nothing, rollback by rebuilding from the recorded manifest, and bad specs refused with nothing
written. `pip freeze` is read independently of llmops (the venv's own python) and compared
with the manifest the lab's journal recorded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops
from sshhosts import SshHost, SshHostFactory
from test_env_wheels import DEP, PKG, make_wheels

from llmops.rollback.lab import Lab

PIN1, PIN2 = f"{PKG}==1.0", f"{PKG}==2.0"
FREEZE1 = [PIN1]
FREEZE2 = [f"{DEP}==1.0", PIN2]


@dataclass
class EnvLab:
    lab: Path
    host: SshHost
    wheels: Path
    env: dict[str, str]

    def run(self, *args: str, check: int | None = 0) -> Any:
        done = llmops(self.lab, *args, "--json", check=check, timeout=600, env=self.env)
        return json.loads(done.stdout)

    def venv(self, name: str) -> Path:
        return self.host.workdir / "envs" / name / "venv"


def freeze_of(venv: Path) -> list[str]:
    """`pip freeze` of a venv, asked of pip directly (not through llmops)."""
    site = next((venv / "lib").glob("python*/site-packages"))
    done = subprocess.run([sys.executable, "-m", "pip", "freeze", "--path", str(site),
                           "--disable-pip-version-check"], capture_output=True, text=True,
                          check=True, timeout=300)
    return sorted(done.stdout.split())


def content_sha(lines: list[str]) -> str:
    """A manifest's name: the sha256 of its text (a freeze line each)."""
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def steps(answer: dict[str, Any]) -> list[str]:
    return [s["verb"] for s in answer["action"]["steps"] if s.get("phase") != "revert"]


def checks_ok(answer: dict[str, Any]) -> None:
    checks = answer["action"]["checks"]
    assert checks and all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]


@pytest.fixture(scope="module")
def envlab(ssh_host_factory: SshHostFactory, tmp_path_factory: pytest.TempPathFactory
           ) -> EnvLab:
    root = tmp_path_factory.mktemp("env-kind")
    host = ssh_host_factory("envbox")
    wheels = make_wheels(root / "wheels")
    env = {"LLMOPS_WHEEL_CACHE": str(root / "cache")}
    found = EnvLab(root / "lab", host, wheels, env)
    llmops(found.lab, "host", "add", "envbox", "--address", host.address, "--user", host.user,
           "--key", str(host.key_path), "--python", sys.executable, "--workdir",
           str(host.workdir), "--trust", host.host_pub_fingerprint, env=env)
    return found


def test_wheelhouse_upgrade_rollback_and_failures(envlab: EnvLab) -> None:
    """On a host with no index: wheels are downloaded here and pushed; upgrade, rollback
    (switch), rollback of the rollback, a failing upgrade (reverted, nothing changed), and a
    rollback that rebuilds from the recorded manifest (its venv was pruned)."""
    venv = envlab.venv("e1")
    added = envlab.run("env", "add", "e1", "--host", "envbox", "--mode", "wheelhouse",
                       "--no-index", "--find-links", str(envlab.wheels), "--packages", PIN1)
    assert steps(added) == ["fetch", "build", "switch"]
    checks_ok(added)
    assert freeze_of(venv) == FREEZE1
    pushed = envlab.host.workdir / "envs" / "wheelhouse"
    assert sorted(p.name for p in pushed.iterdir()) == ["llmops_tinypkg-1.0-py3-none-any.whl"]

    up = envlab.run("env", "up", "e1", "--packages", PIN2)
    assert steps(up) == ["snapshot", "fetch", "build", "switch"]
    checks_ok(up)
    assert freeze_of(venv) == FREEZE2
    snap = next(s for s in up["action"]["steps"] if s["verb"] == "snapshot")
    assert snap["facts"]["before_freeze"] == FREEZE1  # the before-state, in the journal
    before_manifest = snap["facts"]["before_manifest"]
    assert content_sha(FREEZE1) == before_manifest  # content-addressed: the lab holds it
    built = next(s for s in up["action"]["steps"] if s["verb"] == "build")["facts"]
    assert built["manifest_lines"] == FREEZE2  # and the new set's, as it was built
    assert content_sha(FREEZE2) == built["manifest"]
    old_target = os.readlink(venv)

    back = envlab.run("rollback", "--last", "env/e1")
    assert steps(back) == ["snapshot", "switch"]  # the old venv was kept
    checks_ok(back)
    assert freeze_of(venv) == FREEZE1
    manifest = envlab.host.workdir / "envs" / "e1" / "manifests" / f"{before_manifest}.txt"
    assert manifest.read_text().split() == freeze_of(venv)  # == the recorded manifest

    again = envlab.run("rollback", str(back["action"]["id"]))  # rollback of the rollback
    checks_ok(again)
    assert freeze_of(venv) == FREEZE2 and os.readlink(venv) == old_target

    commits = git_log(envlab.lab)
    failed = envlab.run("env", "up", "e1", "--packages", f"{PKG}==3.0", check=1)
    assert not failed["ok"] and failed["action"]["status"] == "failed, reverted"
    assert f"No matching distribution found for {PKG}==3.0" in failed["action"]["error"]
    assert freeze_of(venv) == FREEZE2 and os.readlink(venv) == old_target
    assert all(c["ok"] for c in failed["action"]["checks"])  # the revert's checklist
    assert len(git_log(envlab.lab)) == len(commits) + 2  # the action and its revert

    # keep_previous off: the switch to 1.0 prunes the 2.0 venv; rolling that back must
    # rebuild 2.0 exactly from its recorded manifest (the reinstall path)
    pruned = envlab.run("env", "up", "e1", "--packages", PIN1, "--no-keep-previous")
    assert steps(pruned) == ["snapshot", "switch", "prune"]
    assert freeze_of(venv) == FREEZE1
    restored = envlab.run("rollback", "--last", "env/e1")
    assert steps(restored) == ["snapshot", "fetch", "restore", "switch"]
    checks_ok(restored)
    assert freeze_of(venv) == FREEZE2
    shown = envlab.run("env", "show", "e1")
    assert shown["state"] == "ready" and shown["freeze"] == FREEZE2
    assert not shown["extra"] and not shown["missing"] and not shown["pin_drift"]


def test_drift_is_seen_and_repaired(envlab: EnvLab) -> None:
    """A hand `pip uninstall` in the venv shows as drift (exit 1), the list says so, and
    `rollback --last-good` (a reconcile to the last state whose checks all passed) puts the
    venv back in place to its manifest."""
    venv = envlab.venv("e1")
    if not venv.exists():
        pytest.skip("needs the env of the test before")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "uninstall", "-y", "--disable-pip-version-check", DEP], check=True,
                   capture_output=True, timeout=300)
    drift = envlab.run("env", "drift", "e1", check=1)
    assert drift["drifted"] and drift["missing"] == [f"{DEP}==1.0"]
    rows = envlab.run("env", "list")
    row = next(r for r in rows if r["name"] == "e1")
    assert row["state"] == "drifted" and row["versions"] == {}
    assert any(DEP in d for d in row["drift"])
    target = os.readlink(venv)
    good = envlab.run("rollback", "--last-good", "env/e1")
    assert steps(good) == ["snapshot", "fetch", "repair"]
    checks_ok(good)
    assert freeze_of(venv) == FREEZE2 and os.readlink(venv) == target


def test_a_lost_manifests_folder_is_restored_from_the_journal(envlab: EnvLab) -> None:
    """The host loses its manifests folder (a disk cleaned by hand) after the 2.0 venv was
    pruned: the rollback to 2.0 finds the manifest in the lab's journal, verified by its
    sha256, puts it back on the host and restores the venv exactly from it (no resolve from
    the pins), checked; the manifest file is on the host again, under its sha."""
    venv = envlab.venv("e1")
    if not venv.exists():
        pytest.skip("needs the env of the tests before")
    assert freeze_of(venv) == FREEZE2
    pruned = envlab.run("env", "up", "e1", "--packages", PIN1, "--no-keep-previous")
    assert steps(pruned)[-1] == "prune" and freeze_of(venv) == FREEZE1
    manifests = envlab.host.workdir / "envs" / "e1" / "manifests"
    shutil.rmtree(manifests)
    restored = envlab.run("rollback", "--last", "env/e1")
    assert steps(restored) == ["snapshot", "manifest", "fetch", "restore", "switch"]
    checks_ok(restored)
    assert freeze_of(venv) == FREEZE2
    put = next(s for s in restored["action"]["steps"] if s["verb"] == "manifest")
    assert put["facts"]["manifest_from_journal"] == content_sha(FREEZE2)
    assert "from the journal" in put["detail"]
    rebuilt = next(s for s in restored["action"]["steps"] if s["verb"] == "restore")["facts"]
    assert rebuilt["restored"] and rebuilt["manifest"] == content_sha(FREEZE2)
    assert (manifests / f"{content_sha(FREEZE2)}.txt").read_text().split() == FREEZE2


@pytest.mark.parametrize(("args", "field"), [
    (["--packages", f"{PKG}>=1.0"], "packages"),
    (["--packages", f"{PKG}==1.0;touch /tmp/x"], "packages"),
    (["--packages", "--index-url=https://evil.example/simple"], "packages"),
    (["--packages", f"{PKG} @ https://example.org/x.whl"], "packages"),
    (["--index-url", "ftp://x/"], "index_url"),
    (["--venv", "../../etc"], "venv"),
])
def test_bad_specs_write_nothing(envlab: EnvLab, args: list[str], field: str) -> None:
    commits = git_log(envlab.lab)
    done = llmops(envlab.lab, "env", "add", "bad", "--host", "envbox", *args, check=2,
                  env=envlab.env)
    assert field in done.stderr + done.stdout
    assert git_log(envlab.lab) == commits
    lab = Lab(envlab.lab, create=False)
    try:
        assert lab.read_spec("env", "bad") is None
    finally:
        lab.close()


def test_index_mode_on_local(tmp_path: Path) -> None:
    """Index mode on host `local` with a file:// index; removal and its rollback (the venv was
    kept: a switch back); an unknown package name fails with pip's own message and changes
    nothing. (`env propose` on this machine: test_env_propose.py.)"""
    wheels = make_wheels(tmp_path / "wheels")
    lab = tmp_path / "lab"
    llmops(lab, "host", "add", "local", "--local", "--python", sys.executable, "--workdir",
           str(tmp_path / "work"))

    def run(*args: str, check: int = 0) -> dict[str, Any]:
        return dict(json.loads(llmops(lab, *args, "--json", check=check, timeout=600).stdout))

    added = run("env", "add", "ix", "--host", "local", "--packages", PIN2,
                "--index-url", (wheels / "simple").as_uri())
    assert steps(added) == ["build", "switch"]
    checks_ok(added)
    venv = tmp_path / "work" / "envs" / "ix" / "venv"
    assert freeze_of(venv) == FREEZE2
    removed = run("env", "remove", "ix")
    assert steps(removed) == ["snapshot", "unlink"] and not venv.exists()
    back = run("rollback", "--last", "env/ix")
    assert steps(back) == ["switch"]
    checks_ok(back)
    assert freeze_of(venv) == FREEZE2

    # an unknown package name: the host's pip says so, the action fails and is reverted,
    # the live venv is untouched (the failed build's own folder is gone)
    target = os.readlink(venv)
    failed = run("env", "up", "ix", "--packages", f"{PIN2},llmops-no-such-pkg==1.0", check=1)
    assert failed["action"]["status"] == "failed, reverted"
    assert "No matching distribution found for llmops-no-such-pkg==1.0" in \
        failed["action"]["error"], failed["action"]["error"]
    assert freeze_of(venv) == FREEZE2 and os.readlink(venv) == target
    assert all(c["ok"] for c in failed["action"]["checks"])  # the revert's checklist
    venvs = sorted(p.name for p in (venv.parent / "venvs").iterdir())
    assert venvs == [Path(target).name]
