"""Tiny real wheels for the env tests (no network here): a pure-Python `llmops-tinypkg` at 1.0
and 2.0 (2.0 depends on `llmops-tinydep`), written as proper wheels (METADATA, WHEEL,
top_level.txt, RECORD with sha256s) into a folder pip reads with `--find-links`, plus a
PEP 503 `simple/` index of the same files for index mode (`file://` URL)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

PKG, DEP = "llmops-tinypkg", "llmops-tinydep"
VERSIONS = {PKG: ("1.0", "2.0"), DEP: ("1.0",)}
REQUIRES = {(PKG, "2.0"): [f"{DEP}==1.0"]}


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    files = {
        f"{module}/__init__.py": f'"""{name} {version}, made by the env tests."""\n'
                                 f'VERSION = "{version}"\n'.encode(),
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: llmops-tests\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}.dist-info/top_level.txt": f"{module}\n".encode(),
    }
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist}.dist-info/RECORD,,"]
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name_in_zip, data in files.items():
            zf.writestr(name_in_zip, data)
    return path


def make_wheels(folder: Path) -> Path:
    """Every wheel into `folder`, and `folder/simple/` (a PEP 503 index); returns folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, versions in VERSIONS.items():
        project = folder / "simple" / name
        project.mkdir(parents=True, exist_ok=True)
        links = []
        for version in versions:
            wheel = write_wheel(folder, name, version, REQUIRES.get((name, version), []))
            links.append(f'<a href="../../{wheel.name}">{wheel.name}</a><br/>')
        (project / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")
    (folder / "simple" / "index.html").write_text(
        "<html><body>" + "".join(f'<a href="{n}/">{n}</a>' for n in VERSIONS) + "</body></html>")
    return folder


def test_wheels_install_with_pip(tmp_path: Path) -> None:
    """The generated wheels are real: pip installs 2.0 with its dependency from them."""
    wheels = make_wheels(tmp_path / "wheels")
    target = tmp_path / "target"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index",
         "--find-links", str(wheels), "--target", str(target), f"{PKG}==2.0"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "llmops_tinypkg" / "__init__.py").read_text().endswith('"2.0"\n')
    assert (target / "llmops_tinydep").is_dir()
