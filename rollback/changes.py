"""What an action is made of, shared by the engine and the rollback side."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass

from llmops.ops.kinds.base import Spec
from llmops.rollback.lab import Ref


class ActionRefused(ValueError):
    """The action cannot start (nothing to roll back, a blocker); nothing was written."""


@dataclass(frozen=True)
class Change:
    """One resource's new desired spec; None removes it."""

    kind: str
    name: str
    spec: Spec | None

    @property
    def ref(self) -> Ref:
        return (self.kind, self.name)


def who() -> str:
    """Who acts, as the journal names them: user@machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
