"""Load-test results stored per server and spec commit, compared before/after (issue 12).

A mixin of the Engine; filled in by the bench work."""

from __future__ import annotations


class Benches:
    """Bench results: run, store per (server, commit), compare (a mixin of the Engine)."""
