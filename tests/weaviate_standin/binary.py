"""An executable that stands where the `weaviate` binary would, for llmops's launch = binary:
a small shell script running this package with the Python that runs the tests."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def write_binary(path: str | Path, python: str = sys.executable) -> Path:
    """Write `path` (mode 755): `path --host H --port P --scheme http` with Weaviate's
    environment variables starts the stand-in, as it would start Weaviate."""
    target = Path(path)
    target.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(TESTS))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f"exec {shlex.quote(python)} -m weaviate_standin \"$@\"\n")
    target.chmod(0o755)
    return target
