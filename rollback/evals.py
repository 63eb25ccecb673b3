"""Quality beside speed: eval results stored per server and spec commit (issue 12).

A mixin of the Engine; filled in by the eval work."""

from __future__ import annotations


class Evals:
    """Eval runs on a server, stored per (server, commit) (a mixin of the Engine)."""
