"""The host kind's package: `spec` (where and how to log in), `probe` (facts), `kind`."""

from llmops.ops.kinds.host.kind import HostKind
from llmops.ops.kinds.host.probe import probe
from llmops.ops.kinds.host.spec import HostSpec

__all__ = ["HostKind", "HostSpec", "probe"]
