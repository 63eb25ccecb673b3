"""The session's shared server answers (and so is ready for the tests that read from it)."""

from __future__ import annotations

import pytest
from labtools import llmops_json
from sharedserver import SharedServer

pytestmark = [pytest.mark.vllm]


def test_shared_server_is_listed_running(shared_server: SharedServer) -> None:
    rows = {r["name"]: r for r in llmops_json(shared_server.lab, "server", "list")}
    assert rows["shared"]["state"] in ("running", "serving", "up"), rows
