"""Wheelhouse mode, for hosts without a package index: this machine runs `pip download` for the
host's platform and Python (from envctl's `platform` on the host) into a local cache, then
pushes the wheels the host lacks by SFTP into <workdir>/envs/wheelhouse, which the build
installs from with `--no-index --find-links`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import platformdirs

from llmops.ops.kinds.base import Progress
from llmops.ops.kinds.env.hostcalls import EnvError, Layout, call
from llmops.ops.kinds.env.spec import EnvSpec
from llmops.ops.transport import Transport

SAVED = re.compile(r"^(?:Saved|File was already downloaded) (.+\.whl)\s*$")


def cache_dir() -> Path:
    """Where downloaded wheels are kept here (LLMOPS_WHEEL_CACHE overrides)."""
    found = os.environ.get("LLMOPS_WHEEL_CACHE")
    return Path(found) if found else Path(platformdirs.user_cache_dir("llmops")) / "wheels"


def download_argv(spec: EnvSpec, platform: dict[str, Any], dest: Path,
                  requirements: list[str] | None, manifest: Path | None) -> list[str]:
    """Pure: the `pip download` for the host's interpreter and platform."""
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--progress-bar", "off", "--dest", str(dest), "--only-binary=:all:",
            "--python-version", str(platform["python_version"]),
            "--implementation", str(platform["implementation"]),
            "--abi", str(platform["abi"])]
    for tag in platform["platforms"]:
        argv += ["--platform", str(tag)]
    if spec.index_url:
        argv += ["--index-url", spec.index_url]
    if spec.no_index:
        argv += ["--no-index"]
    for link in spec.find_links:
        argv += ["--find-links", link if "://" in link else os.path.expanduser(link)]
    if manifest is not None:
        argv += ["--no-deps", "-r", str(manifest)]
    else:
        argv += list(requirements or [])
    return argv


def download(spec: EnvSpec, platform: dict[str, Any], progress: Progress,
             requirements: list[str] | None = None,
             manifest_lines: list[str] | None = None) -> list[Path]:
    """The wheels the pins (or a manifest, exactly) need, downloaded into the cache; pip's own
    message on failure (an unknown package, a version that does not exist)."""
    dest = cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    manifest = None
    if manifest_lines is not None:
        manifest = dest / f".manifest-{os.getpid()}.txt"
        manifest.write_text("".join(f"{line}\n" for line in manifest_lines))
    argv = download_argv(spec, platform, dest, requirements, manifest)
    wheels: list[Path] = []
    tail: list[str] = []
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            progress(f"pip download: {line}"[:300])
            tail = [*tail[-39:], line]
            found = SAVED.match(line.strip())
            if found:
                wheels.append(Path(found.group(1)))
        rc = proc.wait(timeout=3600)
    finally:
        if manifest is not None:
            manifest.unlink(missing_ok=True)
    if rc != 0:
        errors = [x for x in tail if x.startswith("ERROR")] or tail[-5:]
        raise EnvError(f"pip download failed: {' | '.join(errors)}")
    return wheels


def push(t: Transport, where: Layout, wheels: list[Path], progress: Progress) -> dict[str, Any]:
    """Put the wheels the host's wheelhouse lacks (by name and size)."""
    have = call(t, where, "wheels", {"dir": where.wheelhouse})["wheels"]
    pushed, sent = 0, 0
    for wheel in wheels:
        size = wheel.stat().st_size
        if have.get(wheel.name) == size:
            continue
        t.put(wheel, f"{where.wheelhouse}/{wheel.name}", mode=0o644)
        pushed, sent = pushed + 1, sent + size
        progress(f"pushed {wheel.name} ({size} bytes) to {t.host}")
    progress(f"wheelhouse on {t.host}: {pushed} pushed, {len(wheels) - pushed} already there")
    return {"wheels": len(wheels), "pushed": pushed, "bytes": sent}
