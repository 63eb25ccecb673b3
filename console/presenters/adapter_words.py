"""An adapter's source and versions in words: pure, and free of Textual, so the CLI
(`llmops adapter ...`) prints them without loading the console's widgets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Spec, SpecError
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.rollback.lab import Lab

STAND_IN_SHA = "0" * 64
"""What the form validates with until the host says the adapter's sha256."""


def adapter_spec(spec: Spec) -> AdapterSpec:
    assert isinstance(spec, AdapterSpec)
    return spec


def source_text(spec: AdapterSpec) -> str:
    return f"run {spec.run}" if spec.run else f"path {spec.path}"


def source_host(lab: Lab, spec: AdapterSpec) -> str | None:
    """Where a path adapter's files are: its host, else its server's host (a run's adapter
    is found through the run)."""
    if spec.run or spec.host:
        return spec.host
    server = lab.read_spec("server", spec.server) if spec.server else None
    if not isinstance(server, ServerSpec):
        raise SpecError("server", f"there is no server named {spec.server}",
                        "name a server of the lab, or give host")
    return server.host


def adapter_versions(history: Sequence[dict[str, Any]],
                     current: AdapterSpec | None) -> list[dict[str, Any]]:
    """Pure: the door's history (one entry per commit that changed the adapter's file, newest
    first) grouped by version: each sha256 once, newest first, with the servers it was
    deployed to, its source, the commits that named it, and whether it is desired now."""
    found: dict[str, dict[str, Any]] = {}
    for entry in history:
        sha = entry.get("sha256")
        if not sha:
            continue  # a commit that removed it
        seen = found.setdefault(sha, {
            "sha256": sha, "short": sha[:12], "servers": [], "source": entry.get("source"),
            "commits": [], "current": current is not None and current.sha256 == sha})
        if entry.get("server") and entry["server"] not in seen["servers"]:
            seen["servers"].append(entry["server"])
        seen["commits"].append({"commit": entry.get("commit"), "when": entry.get("when"),
                                "summary": entry.get("summary")})
    return list(found.values())


def versions_text(versions: list[dict[str, Any]], state: str | None = None) -> Text:
    """The versions in words; the one desired now is marked, with its state."""
    text = Text("versions", style="bold")
    text.append(" (newest first; ctrl+z goes back one action)\n", style="grey50")
    if not versions:
        text.append("  none in the lab's history yet", style="grey50")
    for version in versions:
        now = version["current"]
        text.append("  ● " if now else "    ", style="green" if now else "")
        text.append(version["short"], style="bold" if now else "")
        where = ", ".join(version["servers"]) or "no server (kept)"
        text.append(f"  on {where}", style="" if now else "grey50")
        if now and state:
            text.append(f" ({state} now)", style="green" if state == "deployed" else "yellow")
        newest = version["commits"][0]["summary"] if version["commits"] else ""
        text.append(f"  · {version['source'] or '?'} · {newest}\n", style="grey50")
    return text
