"""`python -m llmops.ops.kinds.index.worker_main DIR`: the ingest worker's process (see
worker.py), started detached by the ingest step."""

from __future__ import annotations

import sys

from llmops.ops.kinds.index.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
