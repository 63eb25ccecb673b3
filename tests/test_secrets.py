"""No private key, API key or token ever reaches the lab's git history or lab.db (issue 13
item 6).

A scenario on real parts — a namespace sshd host added with `--key` (a private key file), this
machine as host `local`, changes, a rollback and a rollback of it, a probe, and attempts to
put secrets into specs — runs with API keys and tokens in the CLI's environment (so in every
host command's environment on `local`). Then every git object of the lab (all objects, not
only reachable ones: `git cat-file --batch-all-objects`), `git log -p --all`, every row of
every table of lab.db and the raw bytes of lab.db and its WAL are searched for each secret.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from labtools import llmops, llmops_json
from sshhosts import SshHost

SECRETS = {
    "HF_TOKEN": "hf_" + "Q7xLm2Pz9Rt4Vw8Ks1Nd5Fg3Hj6Bc0Ya2Ee",
    "OPENAI_API_KEY": "sk-" + "proj4Tq9Lz2Wx7Rv5Nm1Kc8Jd3Hs6Fb0Gp",
    "WEAVIATE_API_KEY": "wv-" + "9f2c7e1a5b3d8f6e4c2a0b9d7f5e3c1a",
    "LLMOPS_TEST_PASSWORD": "correct-horse-battery-staple-42",
}


def key_material(path: Path) -> list[str]:
    """The private key's body: each base64 line long enough to be unmistakable."""
    lines = path.read_text().splitlines()
    return [line for line in lines if not line.startswith("-----") and len(line) >= 24]


def lab_texts(lab: Path) -> dict[str, bytes]:
    """Everything the lab keeps, as bytes, by where it came from."""
    git = ["git", "-C", str(lab)]
    found = {
        "git objects": subprocess.run([*git, "cat-file", "--batch-all-objects", "--batch"],
                                      capture_output=True, check=True).stdout,
        "git log -p --all": subprocess.run([*git, "log", "-p", "--all"], capture_output=True,
                                           check=True).stdout,
        "git refs": subprocess.run([*git, "for-each-ref"], capture_output=True,
                                   check=True).stdout,
    }
    for name in ("lab.db", "lab.db-wal", "lab.db-journal"):
        if (lab / name).is_file():
            found[f"{name} bytes"] = (lab / name).read_bytes()
    db = sqlite3.connect(lab / "lab.db")
    tables = [r[0] for r in db.execute("select name from sqlite_master where type = 'table'")]
    assert "events" in tables
    for table in tables:
        rows = db.execute(f'select * from "{table}"').fetchall()  # noqa: S608 - our own names
        found[f"lab.db table {table}"] = repr(rows).encode()
    db.close()
    return found


def test_no_secret_reaches_git_or_the_journal(ssh_host: SshHost, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)  # the CLI subprocesses and their hosts inherit them
    lab = tmp_path / "lab"
    work = tmp_path / "work"
    remote = ["host", "add", ssh_host.name, "--address", ssh_host.address, "--user",
              ssh_host.user, "--key", str(ssh_host.key_path), "--python", sys.executable,
              "--workdir", str(ssh_host.workdir), "--trust", ssh_host.host_pub_fingerprint]
    assert llmops_json(lab, *remote)["ok"]
    assert llmops_json(lab, "host", "add", "local", "--local", "--python", sys.executable,
                       "--workdir", str(work))["ok"]
    changed = llmops_json(lab, "host", "add", "local", "--local", "--python", sys.executable,
                          "--workdir", str(work), "--cost-per-hour", "2.5")
    assert changed["ok"]
    back = llmops_json(lab, "rollback", str(changed["action"]["id"]))
    assert back["ok"]
    assert llmops_json(lab, "rollback", str(back["action"]["id"]))["ok"]
    assert llmops_json(lab, "host", "probe", ssh_host.name)["hostname"]
    assert llmops_json(lab, "host", "probe", "local")["hostname"]

    # secrets given where a spec field is: refused, naming the field, nothing written
    key_text = ssh_host.key_path.read_text()
    refusals = [
        (["host", "add", "h3", "--address", ssh_host.address, "--key", key_text], "key"),
        (["server", "up", "s", "--host", "local", "--model", "org/m", "--arg",
          f"api-key={SECRETS['OPENAI_API_KEY']}"], "args"),
        (["index", "create", "i", "--host", "local", "--collection", "Docs", "--vectorizer",
          "text2vec-transformers", "--api-key-env", SECRETS["WEAVIATE_API_KEY"]],
         "api_key_env"),
        (["server", "up", "s", "--host", "local", "--model", "/models/" + SECRETS["HF_TOKEN"]],
         "model"),
        (["host", "add", "h4", "--local", "--workdir", f"~/{SECRETS['OPENAI_API_KEY']}"],
         "workdir"),
    ]
    for argv, field in refusals:
        done = llmops(lab, *argv, check=2)
        assert field in done.stderr, done.stderr
        for value in [*SECRETS.values(), *key_material(ssh_host.key_path)]:
            assert value not in done.stderr, f"the refusal repeats a secret: {done.stderr}"
    assert llmops_json(lab, "history")  # the journal reads, with every action above

    secrets = {**SECRETS, **{f"private key line {i}": line for i, line in
                             enumerate(key_material(ssh_host.key_path))}}
    assert len(secrets) > len(SECRETS)  # the key file has a body to look for
    leaks = [f"{what} in {where}" for where, blob in lab_texts(lab).items()
             for what, value in secrets.items() if value.encode() in blob]
    assert leaks == []
    # and what should be there is: the key's path, the names of the variables
    assert str(ssh_host.key_path).encode() in lab_texts(lab)["git log -p --all"]
