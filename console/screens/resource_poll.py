"""What a resource view knows about each row (event loop side), and how one poll of one
resource collects what it shows (worker side): pure enough to test without a UI."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.worker import NoActiveWorker, get_current_worker

from llmops.console.messages import ResourcePolled
from llmops.console.screens.acting import error_text
from llmops.ops.kinds.base import (
    HasLogs,
    HasProgress,
    HasReport,
    HasTelemetry,
    Kind,
    Sample,
    Spec,
    Summarizes,
)
from llmops.rollback.engine import Engine
from llmops.rollback.telemetry import TelemetryPoller, ref_of

SPARK_POINTS = 90
LOG_TAIL = 20
UNREACHABLE = "unreachable"
ALERT_TOAST_S = 30.0
"""Seconds an alert's notification stays up (a clear's goes with the default)."""


def backoff(failures: int) -> float:
    """Seconds to the next poll of a resource whose host did not answer: 5, 10, 20, 40, 60..."""
    return min(60.0, 5.0 * 2 ** max(0, failures - 1))


@dataclass
class RowState:
    """What the view knows about one resource (event loop only)."""

    spec: Spec
    state: str = "observing"
    reason: str | None = None
    """Why, when the state is `unreachable`."""
    facts: dict[str, Any] | None = None
    """The last facts observed (a host's probe), or the journal's cached ones."""
    sample: Sample | None = None
    recent: list[Sample] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    observed_at: float = 0.0
    failures: int = 0
    """Polls in a row that did not reach it: the back-off grows with them."""
    next_poll_at: float | None = None
    in_flight: bool = False
    busy: str | None = None
    """What this console is doing to it (an action, a restart, a load test), shown in its row."""
    progress: str | None = None
    points: list[dict[str, Any]] = field(default_factory=list)
    """Its progress records, oldest first (a kind with HasProgress: a run's steps and loss)."""
    report: dict[str, Any] | None = None
    """Its kind's report (HasReport: a run's screening), once there is one."""
    summary: dict[str, Any] | None = None
    """Its row as `llmops KIND list` prints it (a kind that Summarizes), when observed."""
    notes: Text | None = None
    """The presenter's own lines for the detail pane (Presenter.notes)."""
    timer: int = 0
    """Bumped by every schedule, so an older timer finds itself replaced and does nothing."""

    @property
    def name(self) -> str:
        return self.spec.name


def poll_by_capability(kind: Kind, engine: Engine, poller: TelemetryPoller | None, spec: Spec,
                       observe: bool, was_up: bool | None,
                       serving: tuple[str, ...], *, always_tail: bool = False) -> ResourcePolled:
    """Worker side, for any kind: a telemetry sample where it has telemetry, and its progress
    records where it keeps them (every poll: a chart that moves); its state where it
    summarizes, when due or when it just stopped (or started) answering, which is how a crash
    shows within one poll; then its report, and the log tail of one that is not serving (or
    always, `always_tail`). Never raises: a failure degrades this row only."""
    sample = None
    if poller is not None and isinstance(kind, HasTelemetry):
        try:
            sample = poller.poll(spec)
        except Exception:  # noqa: BLE001 - this row degrades, polling goes on
            sample = Sample(ref_of(kind.name, spec.name), time.time(), up=False)
    points = None
    if isinstance(kind, HasProgress):
        try:
            points = engine.progress(spec)
        except Exception:  # noqa: BLE001 - no progress is no reason to stop polling
            points = None
    answering = sample.up if sample is not None else None
    if not (observe or answering != was_up):
        raise_alerts(engine, spec, sample, None)
        return ResourcePolled(spec, None, sample=sample, recent=recent(poller, sample),
                              points=points)
    state, reason, tail, report, row = "listed", None, None, None, None
    if isinstance(kind, Summarizes):
        try:
            state = engine.status(spec, answering)  # starting until it answers
            row = kind.summary(spec, state, sample)  # pure: the row `KIND list` prints
        except Exception as exc:  # noqa: BLE001 - shown in its row
            state, reason = UNREACHABLE, error_text(exc)
    reachable = state != UNREACHABLE
    if reachable and isinstance(kind, HasReport):
        try:
            report = engine.report(spec)
        except Exception:  # noqa: BLE001 - shown without its report
            report = None
    if reachable and (always_tail or state not in serving) and isinstance(kind, HasLogs):
        try:
            tail = engine.logs(spec, LOG_TAIL)
        except Exception:  # noqa: BLE001 - no log is no reason to stop polling
            tail = None
    raise_alerts(engine, spec, sample, state if state != "listed" else None)
    return ResourcePolled(spec, state, reason, sample=sample, recent=recent(poller, sample),
                          log_tail=tail, points=points, report=report, summary=row)


def raise_alerts(engine: Engine, spec: Spec, sample: Sample | None, state: str | None) -> None:
    """Worker side: the sample through the resource's alert rules (rollback/alerts.py); a raise
    or a clear becomes a notification on the app whose worker polled. A read-only console
    keeps the hysteresis in memory and only notifies: nothing journalled, no command run."""
    if sample is None or not engine.has_alert_rules(spec):
        return
    try:
        app = get_current_worker().node.app
    except NoActiveWorker:
        app = None
    act = not getattr(app, "read_only", False)
    try:
        config, problem = engine.alert_config_told()
        events = engine.observe_alerts(spec, sample, state, act=act, config=config)
    except Exception:  # noqa: BLE001 - alerting never stops polling
        return
    if app is None:
        return
    if problem:
        app.call_from_thread(app.notify, f"{problem}; alerting with the defaults, no command",
                             title="alerts.toml", severity="warning")
    for event in events:
        raised = event.transition == "raised"
        app.call_from_thread(app.notify, event.message,
                             title="alert" if raised else "alert cleared",
                             severity="error" if raised else "information",
                             timeout=ALERT_TOAST_S if raised else None)


def recent(poller: TelemetryPoller | None, sample: Sample | None) -> list[Sample]:
    """The sparkline's samples, oldest first (just this one when the store cannot say)."""
    if poller is None or sample is None:
        return []
    try:
        return poller.store.recent(sample.ref, SPARK_POINTS)
    except Exception:  # noqa: BLE001 - no history is no reason to stop polling
        return [sample]
