"""Cost per million tokens from a bench's measured throughput and what the server holds of its
host: its share of the host's hourly price (its GPUs over the host's; the whole box on a
CPU-only host), plus energy at the host's $/kWh — measured by NVML for the server's GPUs
while the bench ran where the host reports power, else the host's stated power draw, shared
the same way. Pure except `PowerSampler`, which asks the host's NVML during a bench."""

from __future__ import annotations

import json
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

from llmops.ops.transport import TransportError

if TYPE_CHECKING:
    from llmops.ops.transport import Transport


def gpu_share(server_gpus: int, host_gpus: int) -> float:
    """The part of the host a server holds: its GPUs over the host's; all of a CPU host."""
    if host_gpus <= 0:
        return 1.0
    return min(1.0, max(server_gpus, 1) / host_gpus)


def hourly(host: Any, share: float, measured_watts: float | None) -> dict[str, Any] | None:
    """The server's cost per hour and how it was made up; None when the host has no price."""
    price = getattr(host, "cost_per_hour", None)
    per_kwh = getattr(host, "price_per_kwh", None)
    stated = getattr(host, "power_watts", None)
    box = price * share if price is not None else None
    watts, source = None, None
    if per_kwh is not None:
        if measured_watts is not None:
            watts, source = measured_watts, "nvml"
        elif stated is not None:
            watts, source = stated * share, "power_watts"
    energy = watts / 1000 * per_kwh if watts is not None and per_kwh is not None else None
    if box is None and energy is None:
        return None
    return {"per_hour": round((box or 0.0) + (energy or 0.0), 6), "share": round(share, 4),
            "box_per_hour": None if box is None else round(box, 6),
            "energy_per_hour": None if energy is None else round(energy, 6),
            "watts": None if watts is None else round(watts, 1), "watts_from": source}


def per_million(per_hour: float, tokens_per_s: float) -> float | None:
    """What a million tokens cost at this rate (None: no tokens, no figure)."""
    if tokens_per_s <= 0:
        return None
    return round(per_hour / (tokens_per_s * 3600) * 1_000_000, 6)


def token_costs(cost: dict[str, Any] | None, fig: dict[str, Any]) -> dict[str, Any] | None:
    """Cost per 1M input, output and all tokens, each as if the server's whole hour went to
    that kind of token at the measured rate (how hosted price lists read)."""
    if cost is None:
        return None
    per_hour = cost["per_hour"]
    return {**cost,
            "per_1m_input": per_million(per_hour, fig.get("input_throughput", 0.0)),
            "per_1m_output": per_million(per_hour, fig.get("output_throughput", 0.0)),
            "per_1m_tokens": per_million(per_hour, fig.get("total_token_throughput", 0.0))}


class PowerSampler:
    """NVML power of a server's GPUs, sampled on the host every `every` s during a bench (a
    thread); `watts` is the mean, None where the host reports no power."""

    def __init__(self, t: Transport, gpus: list[int] | None, every: float = 2.0) -> None:
        self.t, self.gpus, self.every = t, gpus, every
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="llmops-power", daemon=True)
        self.source = resources.files("llmops.ops.hostside").joinpath("gpustat.py").read_text()

    def __enter__(self) -> PowerSampler:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        while not self.stop.is_set():
            if (w := self.sample()) is not None:
                self.samples.append(w)
            self.stop.wait(self.every)

    def sample(self) -> float | None:
        try:
            found = json.loads(self.t.python_script(self.source, [], timeout=15).stdout or "[]")
        except (TransportError, ValueError):
            return None
        mine = [g for g in found if self.gpus is None or g.get("index") in self.gpus]
        watts = [g["power_watts"] for g in mine if g.get("power_watts") is not None]
        return float(sum(watts)) if mine and len(watts) == len(mine) else None

    @property
    def watts(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None
