"""A canary's gate (pure): the new colour's figures beside the live colour's over the window,
and the verdict that promotes it or rolls it back.

A server with `strategy = "canary"` starts a change in its idle colour like blue-green, but
does not switch: the gateway(s) on its host that route to it send `canary_share` of the
model's traffic to the new colour (ops/kinds/gateway/canaryrun.py). Each colour is its own
vLLM with its own /metrics, so the figures are each colour's histogram deltas over the window
(TTFT and inter-token latency p95, finished requests, mean e2e), and the error rate is
the gateway's: its usage lines name the deployment (api_base) that answered or failed.

Who decides what, and why here: the rule that says a colour still waits for its canary
(`pending_colour`) is read by the server's plan (hold, do not switch) and by the gateway's
observe (run the canary), so both agree without either importing the other's plan."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from llmops.ops.kinds.base import Context, SpecError
from llmops.ops.kinds.server.client import MetricsSnapshot, histogram_quantile
from llmops.ops.kinds.server.observed import ProcObserved, ServerObserved
from llmops.ops.kinds.server.spec import COLOURS

if TYPE_CHECKING:
    from llmops.ops.kinds.server.spec import ServerSpec

TTFT = "time_to_first_token_seconds"
ITL = "inter_token_latency_seconds"
ITL_OLD = "time_per_output_token_seconds"
"""vLLM before 0.11 named the inter-token histogram so."""
E2E = "e2e_request_latency_seconds"
FAMILIES = (TTFT, ITL, ITL_OLD, E2E)
"""The /metrics families a watch reads."""


@dataclass(frozen=True)
class Gates:
    """A canary's settings, the spec's `canary_*` fields with their defaults filled in."""

    share: float = 0.1
    window_s: float = 60.0
    min_requests: int = 10
    max_ttft_ratio: float = 1.2
    max_itl_ratio: float = 1.2
    floor_ms: float = 50.0
    """A ratio breach counts only when the canary is also this many ms slower: noise on
    tiny figures (a 4 ms TTFT against 3 ms) must not fail a change."""
    max_error_rate: float = 0.01


def gates_of(spec: ServerSpec) -> Gates:
    d = Gates()

    def given(value: float | None, default: float) -> float:
        return default if value is None else value

    return Gates(
        share=given(spec.canary_share, d.share),
        window_s=given(spec.canary_window_s, d.window_s),
        min_requests=int(given(spec.canary_min_requests, d.min_requests)),
        max_ttft_ratio=given(spec.canary_max_ttft_ratio, d.max_ttft_ratio),
        max_itl_ratio=given(spec.canary_max_itl_ratio, d.max_itl_ratio),
        floor_ms=given(spec.canary_floor_ms, d.floor_ms),
        max_error_rate=given(spec.canary_max_error_rate, d.max_error_rate),
    )


@dataclass(frozen=True)
class ColourFigures:
    """One colour over the window so far."""

    up: bool = True
    """Its /metrics answered at the last scrape."""
    requests: int = 0
    """Requests it finished (vLLM's e2e histogram count), from any client."""
    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    backend_ms: float | None = None
    """Mean e2e latency as vLLM measured it."""
    gateway_requests: int = 0
    """Requests the gateway sent it (its usage lines), answered or failed."""
    gateway_errors: int = 0
    gateway_ms: float | None = None
    """Mean latency as LiteLLM measured it (its response_time): beside backend_ms, what the
    gateway adds."""
    overhead_ms: float | None = None
    """LiteLLM's own overhead (its `litellm_overhead_time_ms`), where the usage lines carry it."""

    @property
    def error_rate(self) -> float:
        return self.gateway_errors / self.gateway_requests if self.gateway_requests else 0.0

    def line(self) -> str:
        if not self.up:
            return "DOWN (/metrics does not answer)"
        parts = [f"{self.requests} req", f"TTFT p95 {_ms(self.ttft_p95_ms)}",
                 f"ITL p95 {_ms(self.itl_p95_ms)}",
                 f"errors {self.gateway_errors}/{self.gateway_requests}",
                 f"e2e {_ms(self.backend_ms)} (via gateway {_ms(self.gateway_ms)}"
                 + (f", LiteLLM overhead {_ms(self.overhead_ms)})" if self.overhead_ms
                    is not None else ")")]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": round(self.error_rate, 4)}


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def _delta(after: MetricsSnapshot, before: MetricsSnapshot, name: str
           ) -> list[tuple[float, float]]:
    old = dict(before.histograms.get(name) or [])
    return [(b, max(0.0, c - old.get(b, 0.0))) for b, c in after.histograms.get(name) or []]


def _p95_ms(after: MetricsSnapshot, before: MetricsSnapshot, *names: str) -> float | None:
    for name in names:
        if name in after.histograms:
            q = histogram_quantile(_delta(after, before, name), 0.95)
            return None if q is None else round(q * 1000, 2)
    return None


def _count(snap: MetricsSnapshot, name: str) -> float:
    return snap.counters.get(f"{name}_count", 0.0)


def port_of_base(api_base: str) -> int | None:
    """`http://127.0.0.1:28601/v1` (or a longer URL LiteLLM logs) -> 28601."""
    rest = api_base.split("://", 1)[-1]
    host_port = rest.split("/", 1)[0]
    _, colon, port = host_port.rpartition(":")
    return int(port) if colon and port.isdigit() else None


def figures(before: MetricsSnapshot, after: MetricsSnapshot | None,
            usage: list[dict[str, Any]], port: int) -> ColourFigures:
    """A colour's figures between two scrapes (`after` None: it did not answer), with the
    gateway's usage lines of requests it sent to `port` (the colour's deployment)."""
    mine = [r for r in usage if r.get("event") in (None, "request")
            and port_of_base(str(r.get("api_base") or "")) == port]
    errors = sum(1 for r in mine if not r.get("ok", True))
    answered = [float(r.get("seconds") or 0.0) for r in mine if r.get("ok", True)]
    overheads = [float(r["overhead_ms"]) for r in mine if r.get("overhead_ms") is not None]
    gateway = {
        "gateway_requests": len(mine),
        "gateway_errors": errors,
        "gateway_ms": round(1000 * sum(answered) / len(answered), 2) if answered else None,
        "overhead_ms": round(sum(overheads) / len(overheads), 2) if overheads else None,
    }
    if after is None:
        return ColourFigures(up=False, **gateway)  # type: ignore[arg-type]
    n = _count(after, E2E) - _count(before, E2E)
    seconds = after.counters.get(f"{E2E}_sum", 0.0) - before.counters.get(f"{E2E}_sum", 0.0)
    return ColourFigures(
        up=True,
        requests=int(round(n)),
        ttft_p95_ms=_p95_ms(after, before, TTFT),
        itl_p95_ms=_p95_ms(after, before, ITL, ITL_OLD),
        backend_ms=round(1000 * seconds / n, 2) if n > 0 else None,
        **gateway,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reasons: tuple[str, ...]

    @property
    def text(self) -> str:
        word = "PROMOTE" if self.promote else "ROLL BACK"
        return f"canary gate: {word}: " + "; ".join(self.reasons)


def _slower(what: str, new: float | None, live: float | None, ratio: float, floor: float
            ) -> tuple[bool, str]:
    if new is None or live is None:
        return True, f"{what} p95 not compared (canary {_ms(new)}, live {_ms(live)})"
    bad = new > live * ratio and new - live > floor
    verb = "above" if bad else "within"
    return not bad, (f"{what} p95 {_ms(new)} vs live {_ms(live)}: {verb} {ratio:g}x "
                     f"(+{floor:g} ms floor)")


def decide(gates: Gates, live: ColourFigures, new: ColourFigures) -> Verdict:
    """At the end of the window: every gate must pass for a promotion; a canary that got
    too little traffic to judge is rolled back (no figure is no pass)."""
    if not new.up:
        return Verdict(False, ("the canary's /metrics does not answer (stopped or crashed)",))
    fails: list[str] = []
    passes: list[str] = []
    rate = new.error_rate
    line = (f"error rate {new.gateway_errors}/{new.gateway_requests} = {rate:.1%} "
            f"(live {live.gateway_errors}/{live.gateway_requests})")
    if rate > gates.max_error_rate:
        fails.append(f"{line} > {gates.max_error_rate:.1%}")
    else:
        passes.append(f"{line} <= {gates.max_error_rate:.1%}")
    if new.requests < gates.min_requests:
        fails.append(f"inconclusive: {new.requests} requests reached the canary, "
                     f"canary_min_requests is {gates.min_requests} (send traffic through the "
                     "gateway, raise canary_share or canary_window_s)")
    for what, n, lv, ratio in (("TTFT", new.ttft_p95_ms, live.ttft_p95_ms, gates.max_ttft_ratio),
                               ("ITL", new.itl_p95_ms, live.itl_p95_ms, gates.max_itl_ratio)):
        ok, said = _slower(what, n, lv, ratio, gates.floor_ms)
        (passes if ok else fails).append(said)
    return Verdict(not fails, tuple(fails or passes))


def early(gates: Gates, new: ColourFigures, down_scrapes: int) -> Verdict | None:
    """Stop the window early: the canary is down (two scrapes in a row), or its errors
    already break the gate over at least canary_min_requests of the gateway's requests."""
    if down_scrapes >= 2:
        return decide(gates, ColourFigures(), new)
    if (new.gateway_requests >= max(1, gates.min_requests)
            and new.error_rate > gates.max_error_rate):
        return Verdict(False, (f"error rate {new.gateway_errors}/{new.gateway_requests} = "
                               f"{new.error_rate:.1%} > {gates.max_error_rate:.1%}",))
    return None


# -- which colour waits for its canary ------------------------------------------------------
def newer(proc: ProcObserved, than: ProcObserved) -> bool:
    """Started after `than`: a new version, not the previous one kept warm for its grace (a
    rollback within the grace switches back to that one at once, no canary)."""
    return (proc.started or 0.0) > (than.started or 0.0)


def pending_colour(spec: ServerSpec, observed: ServerObserved, want: str) -> str | None:
    """The colour that runs the wanted launch hash but is not live yet, newer than the live
    colour that runs another: it waits for its gateways' canary. None otherwise."""
    if spec.strategy != "canary" or observed.live is None:
        return None
    if not observed.proc(f"{spec.name}-live").running:
        return None
    live = observed.proc(f"{spec.name}-{observed.live}")
    other = COLOURS[1 - COLOURS.index(observed.live)]
    new = observed.proc(f"{spec.name}-{other}")
    if not live.running or live.hash == want or not new.running or new.hash != want:
        return None
    return other if newer(new, live) else None


def admit_canary(spec: ServerSpec, context: Context) -> None:
    """A canary needs a gateway on the server's host that routes to it: the colours listen on
    that host's loopback only, and the share of traffic is the gateway's."""
    if spec.strategy != "canary":
        return
    routing = [(name, other) for (kind, name), other in context.desired.items()
               if kind == "gateway" and spec.name in _servers_of(other)]
    if not routing:
        raise SpecError("strategy", f"no gateway routes to server {spec.name}; a canary sends "
                        "a share of a gateway's traffic to the new version",
                        "use strategy = 'blue-green', or route a gateway to it first "
                        f"(llmops gateway up NAME --host {spec.host} --model M={spec.name})")
    if not any(getattr(other, "host", None) == spec.host for _, other in routing):
        names = ", ".join(name for name, _ in routing)
        raise SpecError("strategy", f"gateway {names} routes to server {spec.name} from "
                        f"another host; the new colour listens on the loopback of "
                        f"{spec.host} only", f"run a gateway on {spec.host}, or use "
                        "strategy = 'blue-green'")


def _servers_of(gateway: object) -> list[str]:
    servers = getattr(gateway, "servers", None)
    return list(servers()) if callable(servers) else []
