"""A missing real part is a reported skip on a developer's box and a failure in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
NEEDS_A_PART = (
    "from realparts import missing\n"
    "def test_needs_it():\n"
    "    missing('the frobnicator', 'install it')\n"
)


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_part.py").write_text(NEEDS_A_PART)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_part.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


@pytest.mark.parametrize(("ci", "rc", "says"), [
    (None, 0, "SKIPPED [1]"),
    ("true", 1, "the frobnicator is missing and this run requires it"),
], ids=["dev-box-skips-visibly", "ci-fails"])
def test_missing_part(tmp_path: Path, ci: str | None, rc: int, says: str) -> None:
    done = run_pytest(tmp_path, ci)
    assert done.returncode == rc and says in done.stdout, done.stdout + done.stderr
    assert "the frobnicator is missing" in done.stdout
