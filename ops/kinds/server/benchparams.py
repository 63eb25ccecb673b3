"""What a load test is asked to do, validated before a request is sent: the same knobs as
`vllm bench serve` (request rate with burstiness, max concurrency, fixed or dataset lengths,
warm-up), so the two can be run with the same settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmops.ops.kinds.base import SpecError

MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 1024


class BenchParams(BaseModel):
    """A load test's settings; a request count or a duration (or both: whichever ends first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int | None = Field(
        default=None, ge=1, le=MAX_REQUESTS,
        description="Measured requests (default 32 without a duration).")
    duration_s: float | None = Field(
        default=None, gt=0, le=86_400, description="Send requests for this many seconds.")
    rate: float | None = Field(
        default=None, gt=0, le=100_000,
        description="Requests per second, Poisson arrivals (none: all at once).")
    burstiness: float = Field(
        default=1.0, gt=0, le=1000,
        description="Gamma shape of the arrivals: 1 is Poisson, below 1 burstier.")
    concurrency: int | None = Field(
        default=4, ge=1, le=MAX_CONCURRENCY, description="Most requests in flight at once.")
    input_len: int = Field(default=32, ge=1, le=1_000_000, description="Prompt tokens.")
    output_len: int = Field(default=32, ge=1, le=1_000_000, description="Output tokens.")
    dataset: str | None = Field(
        default=None,
        description="JSONL of {\"prompt\": ..., \"output_len\"?: n}, sampled (not input_len).")
    warmup: int = Field(default=1, ge=0, le=1000, description="Requests sent first, not counted.")
    ignore_eos: bool = Field(default=True, description="Generate output_len tokens every time.")
    seed: int = Field(default=0, ge=0, description="Seed of the arrivals and the sampling.")
    timeout_s: float = Field(default=300.0, gt=0, le=3600, description="Per request.")
    slo_tpot_ms: float | None = Field(
        default=None, gt=0, description="Goodput also needs TPOT below this (ms).")
    slo_e2el_ms: float | None = Field(
        default=None, gt=0, description="Goodput also needs e2e latency below this (ms).")

    @model_validator(mode="after")
    def _count_or_time(self) -> BenchParams:
        if self.requests is None and self.duration_s is None:
            object.__setattr__(self, "requests", 32)
        return self

    def rows(self) -> list[dict[str, Any]]:
        """The dataset's rows, checked: a missing file or a bad line names the field."""
        if self.dataset is None:
            return []
        path = Path(self.dataset).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise SpecError("dataset", f"cannot read {path}: {exc.strerror}",
                            "give a JSONL file of {\"prompt\": ...} lines") from exc
        rows: list[dict[str, Any]] = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise SpecError("dataset", f"{path}:{i} is not JSON ({exc})",
                                "one JSON object per line") from exc
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise SpecError("dataset", f"{path}:{i} has no \"prompt\" string",
                                "each line is {\"prompt\": \"...\", \"output_len\": 32}")
            out = row.get("output_len", self.output_len)
            if not isinstance(out, int) or out < 1:
                raise SpecError("dataset", f"{path}:{i}: output_len {out!r}",
                                "a positive whole number of tokens")
            rows.append({"prompt": row["prompt"], "output_len": out})
        if not rows:
            raise SpecError("dataset", f"{path} has no prompts", "one {\"prompt\": ...} per line")
        return rows

    def slo_ms(self, ttft_ms: float) -> dict[str, float]:
        """The per-request SLOs goodput counts against: the server's TTFT target and any
        TPOT / e2e bound given here."""
        slo = {"ttft": ttft_ms}
        if self.slo_tpot_ms is not None:
            slo["tpot"] = self.slo_tpot_ms
        if self.slo_e2el_ms is not None:
            slo["e2el"] = self.slo_e2el_ms
        return slo

    def words(self) -> str:
        """One line an operator reads: what was asked."""
        count = (f"{self.requests} requests" if self.requests is not None else "")
        if self.duration_s is not None:
            count += (" or " if count else "") + f"{self.duration_s:g} s"
        rate = f"{self.rate:g}/s" if self.rate else "all at once"
        if self.rate and self.burstiness != 1:
            rate += f" (burstiness {self.burstiness:g})"
        lengths = (f"prompts from {Path(self.dataset).name}" if self.dataset
                   else f"{self.input_len} in")
        return (f"{count}, {rate}, ≤{self.concurrency or '∞'} in flight, {lengths}, "
                f"{self.output_len} out, {self.warmup} warm-up")
