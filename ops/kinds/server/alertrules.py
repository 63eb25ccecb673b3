"""A server's alert rules as pure functions over telemetry samples (issue 12): what each rule
reads in a sample, whether that sample breaches it, and the hysteresis that turns a run of
samples into one raise and one clear, so a flapping value alerts once.

Rules: `ttft_p95` (first-token p95 over the spec's target), `output_tps` (output tokens/s
under the floor, judged only under load: requests waiting, or two or more running, since one
client's pauses between requests are no verdict on the server), `kv_cache` (KV cache use over
`alert_kv_cache_pct`), `gpu_memory` (GPU memory over `alert_gpu_memory_pct`), `crash` (the
server does not answer and its process was last seen exited: a stop, a start or a restart in
progress is not a crash) and `restart_loop` (it came back up after being
down `restart_loop_count` times within `restart_loop_window_s`)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmops.ops.kinds.server.spec import ServerSpec
from llmops.ops.validate import ENV_REFERENCE, SECRET_KEYS, find_secrets

RULES = ("ttft_p95", "output_tps", "kv_cache", "gpu_memory", "crash", "restart_loop")
Verdict = Literal["bad", "good", "neutral"]
URL_USERINFO = re.compile(r"://[^/\s@]+@")
URL_QUERY = re.compile(r"[?&]([^=&#\s]+)=")


def credentials_in(argv: Sequence[str]) -> list[tuple[str, str]]:
    """Arguments of a command that carry a credential: (field, what it looks like)."""
    found = find_secrets({"command": list(argv)})
    for i, arg in enumerate(argv):
        if URL_USERINFO.search(arg):
            found.append((f"command[{i}]", "a URL with credentials (user@ or user:password@)"))
        for name in URL_QUERY.findall(arg):
            if SECRET_KEYS.search(name) or name.lower() in ("key", "sig", "signature"):
                found.append((f"command[{i}]", f"a URL whose query names {name!r}"))
    return found


class AlertConfig(BaseModel):
    """The lab's `alerts.toml`: hysteresis and the operator's command. The command is an argv
    list run without a shell, the alert as JSON on its stdin; it may not hold credentials (a
    webhook's secret URL goes in an environment variable, named by `command_env`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    raise_after: int = Field(default=3, ge=1, le=1000,
                             description="Breaching samples in a row that raise an alert.")
    clear_after: int = Field(default=3, ge=1, le=1000,
                             description="Good samples in a row that clear it.")
    clear_margin_pct: float = Field(
        default=5.0, ge=0, le=90,
        description="A sample counts as good only this far inside the threshold (%).")
    restart_loop_count: int = Field(default=3, ge=2, le=100)
    restart_loop_window_s: float = Field(default=600.0, gt=0, le=86_400)
    command: list[str] = Field(default_factory=list, max_length=64)
    command_env: str | None = Field(
        default=None, description="An environment variable holding the command (shell words).")
    command_timeout_s: float = Field(default=30.0, gt=0, le=600)
    on_clear: bool = Field(default=False, description="Run the command on a clear too.")

    @field_validator("command")
    @classmethod
    def _no_credentials(cls, v: list[str]) -> list[str]:
        found = credentials_in(v)
        if found:
            where, what = found[0]
            raise ValueError(f"{where} holds {what}: keep the URL in an environment variable "
                             "and name it with command_env")
        return v

    @field_validator("command_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_REFERENCE.match(v):
            raise ValueError(f"{v!r} is not an environment variable name (e.g. ALERT_HOOK)")
        return v

    @model_validator(mode="after")
    def _one_command(self) -> AlertConfig:
        if self.command and self.command_env:
            raise ValueError("give command or command_env, not both")
        return self

    def argv(self, environ: Mapping[str, str]) -> list[str]:
        """The command to run: `command`, or the words of `command_env`'s value (no shell);
        empty when none is configured or the variable is unset."""
        if self.command_env:
            return shlex.split(environ.get(self.command_env, ""))
        return list(self.command)


@dataclass(frozen=True)
class Reading:
    """One rule on one sample: the value, its threshold, which side breaches, and whether the
    sample says anything about it (no traffic: no word on throughput or TTFT)."""

    rule: str
    value: float | None
    threshold: float
    above: bool
    """True: breaching above the threshold; False: below it."""
    unit: str = ""
    evidence: bool = True
    margin: bool = True
    """Whether the clear margin applies (not to a yes/no rule such as crash)."""

    def verdict(self, margin_pct: float = 0.0) -> Verdict | None:
        """bad (breaching), good (inside the threshold by the margin), neutral (between), or
        None (no evidence)."""
        if not self.evidence or self.value is None:
            return None
        margin_pct = margin_pct if self.margin else 0.0
        if self.above:
            if self.value > self.threshold:
                return "bad"
            return "good" if self.value <= self.threshold * (1 - margin_pct / 100) else "neutral"
        if self.value < self.threshold:
            return "bad"
        return "good" if self.value >= self.threshold * (1 + margin_pct / 100) else "neutral"

    def cleared_message(self, name: str) -> str:
        if self.rule == "crash":
            return f"server {name} answers again"
        if self.rule == "restart_loop":
            return f"server {name} stopped restarting"
        return self.message(name).replace(" over ", " back within ").replace(
            " under ", " back within ")

    def message(self, name: str) -> str:
        what = {
            "ttft_p95": "TTFT p95", "output_tps": "output throughput", "kv_cache": "KV cache",
            "gpu_memory": "GPU memory", "crash": "answering", "restart_loop": "restarts",
        }[self.rule]
        if self.rule == "crash":
            return f"server {name} does not answer (crashed or stopped)"
        if self.rule == "restart_loop":
            return f"server {name} came back up {self.value:.0f} times: a restart loop"
        side = "over" if self.above else "under"
        return (f"server {name}: {what} {_fmt(self.value)} {self.unit} {side} "
                f"{'target' if self.rule in ('ttft_p95', 'output_tps') else 'threshold'} "
                f"{_fmt(self.threshold)} {self.unit}").replace("  ", " ")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.0f}"


def restarts(ups: Sequence[tuple[float, bool]], now: float, window_s: float) -> int:
    """How often the server came back up after being down, within the window (samples as
    (time, up), oldest first)."""
    count, was_up = 0, None
    for at, up in ups:
        if up and was_up is False and now - at <= window_s:
            count += 1
        was_up = up
    return count


def readings(spec: ServerSpec, up: bool, values: Mapping[str, float | None], *,
             state: str | None = None, gpu_total_bytes: float | None = None,
             ups: Sequence[tuple[float, bool]] = (), now: float = 0.0,
             config: AlertConfig | None = None) -> list[Reading]:
    """What every rule reads in one sample (pure). `state`: the server's last observed state
    (only "crashed ..." makes a server that does not answer count as crashed: one starting,
    stopped mid-restart or on an unreachable host is no verdict); `ups`: the recent samples'
    (time, up), for the restart loop."""
    config = config or AlertConfig()
    crashed = bool(state) and str(state).startswith("crashed")
    found = [Reading("crash", 1.0 if up else 0.0, 1.0, above=False,
                     evidence=up or crashed, margin=False)]
    found.append(Reading("restart_loop",
                         float(restarts(ups, now, config.restart_loop_window_s)),
                         config.restart_loop_count - 0.5, above=True, unit="restarts",
                         margin=False))
    if not up:
        return found
    busy = (values.get("waiting") or 0) > 0 or (values.get("running") or 0) >= 2
    ttft = values.get("ttft_p95")
    found.append(Reading("ttft_p95", ttft * 1000 if ttft is not None else None,
                         spec.target_ttft_p95_ms, above=True, unit="ms"))
    found.append(Reading("output_tps", values.get("generation_tps"), spec.target_output_tps,
                         above=False, unit="tok/s", evidence=busy))
    found.append(Reading("kv_cache", values.get("kv_cache_pct"), spec.alert_kv_cache_pct,
                         above=True, unit="%"))
    used = values.get("gpu_mem_used_bytes")
    pct = used / gpu_total_bytes * 100 if used is not None and gpu_total_bytes else None
    found.append(Reading("gpu_memory", pct, spec.alert_gpu_memory_pct, above=True, unit="%"))
    return found


@dataclass(frozen=True)
class RuleState:
    """Hysteresis of one rule of one server: breaching and good samples in a row."""

    active: bool = False
    bad: int = 0
    good: int = 0


Transition = Literal["raised", "cleared"]


def step(state: RuleState, verdict: Verdict | None, *, raise_after: int, clear_after: int
         ) -> tuple[RuleState, Transition | None]:
    """One sample's verdict through the hysteresis (pure): raised after `raise_after` bad
    samples in a row, cleared after `clear_after` good ones; a good or neutral sample breaks a
    bad run, a neutral one does not break a good run, and no evidence changes nothing."""
    if verdict is None:
        return state, None
    if verdict == "bad":
        state = replace(state, bad=state.bad + 1, good=0)
        if not state.active and state.bad >= raise_after:
            return replace(state, active=True), "raised"
        return state, None
    if not state.active:
        return RuleState(), None  # nothing to clear: a good or neutral sample ends a bad run
    if verdict == "neutral":
        return replace(state, bad=0), None
    state = replace(state, good=state.good + 1, bad=0)
    if state.active and state.good >= clear_after:
        return replace(state, active=False), "cleared"
    return state, None


def raise_after_for(rule: str, config: AlertConfig) -> int:
    """Samples in a row a rule needs: the restart loop already counts over its window."""
    return 1 if rule == "restart_loop" else config.raise_after
