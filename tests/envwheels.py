"""A stand-in for a vLLM install, as tiny real wheels, for the tests of servers on an env
(no 2.5 GB vLLM copy per test): `llmops-test-vllm-path` 1.0 and 2.0 install a `.pth` that
puts this test run's own site-packages (where vLLM is installed) on the path of the processes
that run vLLM; 3.0 does the same and also ships a `vllm` package that refuses to import, so
vLLM cannot start from an env at 3.0 (an upgrade that installs fine and then breaks serving).

The `.pth` only fires in a process whose environment has a `VLLM_` variable (every server
launch on a CPU host sets VLLM_CPU_KVCACHE_SPACE; vLLM's own children inherit it): pip,
`pip check` and the env kind's metadata reads then see only what the env installed, so its
freeze, manifest and checklist stay the env's own. The env's site-packages comes first on
sys.path, so 3.0's `vllm` shadows the real one. Wheels are written like test_env_wheels.py's
(METADATA, WHEEL, top_level.txt, RECORD with sha256s) plus a PEP 503 `simple/` index."""

from __future__ import annotations

import base64
import hashlib
import sysconfig
import zipfile
from pathlib import Path

PATH_PKG = "llmops-test-vllm-path"
MODULE = "llmops_test_vllm_path"
GOOD, GOOD2, BROKEN = "1.0", "2.0", "3.0"
BROKEN_WORDS = "broken by test-vllm-path 3.0"


def pth_line(site: str) -> str:
    return ("import os, site; any(k.startswith('VLLM_') for k in os.environ) and "
            f"site.addsitedir({site!r})\n")


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_path_wheel(folder: Path, version: str, site: str) -> Path:
    dist = f"{MODULE}-{version}"
    files: dict[str, bytes] = {
        f"{MODULE}/__init__.py": f'VERSION = "{version}"\n'.encode(),
        f"{MODULE}.pth": pth_line(site).encode(),
    }
    if version == BROKEN:
        files["vllm/__init__.py"] = f"raise ImportError({BROKEN_WORDS!r})\n".encode()
    files.update({
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PATH_PKG}\nVersion: {version}\n").encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: llmops-tests\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}.dist-info/top_level.txt": f"{MODULE}\n".encode(),
    })
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist}.dist-info/RECORD,,"]
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def make_path_wheels(folder: Path, site: str | None = None) -> Path:
    """The three wheels into `folder` and its `simple/` index; returns the index's folder
    (give `simple.as_uri()` as index_url). `site`: default this interpreter's purelib."""
    site = site or sysconfig.get_paths()["purelib"]
    project = folder / "simple" / PATH_PKG
    project.mkdir(parents=True, exist_ok=True)
    links = []
    for version in (GOOD, GOOD2, BROKEN):
        wheel = write_path_wheel(folder, version, site)
        links.append(f'<a href="../../{wheel.name}">{wheel.name}</a><br/>')
    (project / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")
    (folder / "simple" / "index.html").write_text(
        f'<html><body><a href="{PATH_PKG}/">{PATH_PKG}</a></body></html>')
    return folder / "simple"
