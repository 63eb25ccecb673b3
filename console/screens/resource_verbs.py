"""What the keys of a resource view do, for any kind: the form (new, edit), remove, the
presenter's spec toggles (a run's stop and resume) and screens (an index's query), poll now,
the detail screen, restart, logs, a load test and ctrl+z on the last action. Every change is
an action (or a journalled operation) run in a thread worker; its verdict comes back as a
message. `resource_view(presenter)` makes a kind's view class: its bindings are declared on
it, one per verb the presenter offers."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from textual import work

from llmops.console.messages import (
    ActionDone,
    ResourceOperated,
    ResourceProgress,
    RollbackPreviewed,
    SpecChecked,
)
from llmops.console.screens.acting import error_text, notify_done, start_action
from llmops.console.screens.dialogs import ConfirmScreen
from llmops.console.screens.logs import LogScreen
from llmops.console.screens.presenter import Presenter
from llmops.console.screens.resource_view import ResourceView
from llmops.console.screens.rollback_offer import confirm_rollback, preview_message
from llmops.console.screens.spec_form import SpecFormScreen
from llmops.ops.kinds.base import Spec
from llmops.rollback.engine import Change

Run = Callable[[Spec], tuple[str | None, str | None]]
"""Worker side: an operation on one resource; returns (error, report)."""
WHILE_BUSY = ("edit", "remove", "restart", "bench")
"""Verbs that wait while something is being done to the resource."""


class ResourceVerbs(ResourceView):
    """The actions behind a resource view's keys (`action_<verb>`)."""

    def can_run(self, action: str) -> bool | None:
        verb = self.verb_of.get(action, action)
        if verb not in self.presenter.verbs():
            return False  # offered by capability, as k9s does
        if verb == "new":
            return True
        row = self.selected
        if row is None:
            return None
        if (verb in WHILE_BUSY and row.busy) or (
                verb == "rollback" and row.name not in self.last_action):
            return None
        toggle = self.presenter.toggle(verb)
        if toggle is not None and (row.busy or getattr(row.spec, toggle.field) == toggle.value):
            return None  # it holds that value already: dimmed
        return True

    # -- actions on desired state -------------------------------------------------------
    def act(self, name: str, busy: str, changes: list[Change], summary: str,
            trust: dict[str, str] | None = None) -> None:
        if (row := self.rows.get(name)) is not None:
            row.busy, row.progress = busy, None
            self.update_row(name)
        self.acting[summary] = name
        start_action(self, self.context.engine, changes, summary, trust=trust)
        self.update_bindings()

    def act_on(self, spec: Spec, before: Spec | None, trust: dict[str, str] | None = None) -> None:
        presenter = self.presenter
        summary = (presenter.summary_new(spec) if before is None
                   else presenter.summary_edit(before, spec))
        self.act(spec.name, presenter.busy_words["new" if before is None else "edit"],
                 [Change(presenter.kind, spec.name, spec)], summary, trust)

    def submitted(self, spec: Spec | None, before: Spec | None) -> None:
        """A form's answer: an action, once the operator confirmed what the kind asks."""
        if spec is None:
            return
        if self.presenter.needs_confirm(spec, before):
            self.check_spec(spec, before)
        else:
            self.act_on(spec, before)

    @work(thread=True, exclusive=True, exit_on_error=False, group="spec-check",
          description="ask the host what the operator must confirm")
    def check_spec(self, spec: Spec, before: Spec | None) -> None:
        try:
            confirm = self.presenter.confirm(self.context, spec)
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            self.post_message(SpecChecked(spec, before, None, error_text(exc)))
            return
        self.post_message(SpecChecked(spec, before, confirm, None))

    def on_spec_checked(self, message: SpecChecked) -> None:
        if (confirm := message.confirm) is None:
            self.notify(message.error or "", severity="error", timeout=10,
                        title=f"cannot check {self.presenter.kind} {message.spec.name}")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.act_on(confirm.spec or message.spec, message.before, confirm.trust)

        self.app.push_screen(ConfirmScreen(confirm.title, confirm.body, yes=confirm.yes),
                             answered)

    def on_action_done(self, message: ActionDone) -> None:
        notify_done(self, message)
        if (name := self.acting.pop(message.summary, None)) is not None:
            self.finish(name)
        self.load()

    def finish(self, name: str) -> None:
        """An action or operation on `name` ended: observe it again at once."""
        if (row := self.rows.get(name)) is not None:
            row.busy, row.progress, row.observed_at = None, None, 0.0
            self.schedule_poll(name, 0.0)
            self.update_row(name)
            self.update_bindings()

    def form(self, spec: Spec | None = None,
             initial: dict[str, Any] | None = None) -> SpecFormScreen:
        presenter = self.presenter
        return SpecFormScreen(presenter.kind, presenter.spec_model, presenter.form,
                              names=self.names, spec=spec, initial=initial)

    def action_new(self, initial: dict[str, Any] | None = None) -> None:
        if initial is None:  # a field naming the lab's only host (say) starts on it
            initial = {field: found[0] for field, kind in self.presenter.form.refs.items()
                       if len(found := self.names.get(kind, [])) == 1}
            if type(self.presenter).form_initial is not Presenter.form_initial:
                self.prefill_new(initial)  # the presenter reads the lab: off the UI thread
                return
        self.open_new(initial)

    @work(thread=True, exclusive=True, exit_on_error=False, group="form-initial",
          description="prefill the New form from the lab")
    def prefill_new(self, initial: dict[str, Any]) -> None:
        try:
            initial = self.presenter.form_initial(self.context, dict(initial))
        except Exception as exc:  # noqa: BLE001 - the form opens as it was, the reason shown
            self.app.call_from_thread(self.notify, f"no prefill: {error_text(exc)}",
                                      severity="warning")
        self.app.call_from_thread(self.open_new, initial)

    def open_new(self, initial: dict[str, Any]) -> None:
        self.app.push_screen(self.form(initial=initial), partial(self.submitted, before=None))

    def action_edit(self) -> None:
        if (row := self.selected) is not None:
            self.app.push_screen(self.form(spec=row.spec), partial(self.submitted,
                                                                   before=row.spec))

    def action_remove(self) -> None:
        if (row := self.selected) is None:
            return
        presenter, name = self.presenter, row.name
        title, body, yes = presenter.confirm_remove(name)

        def answered(sure: bool | None) -> None:
            if sure:
                self.act(name, presenter.busy_words["remove"], [Change(presenter.kind, name, None)],
                         presenter.summary_remove(name))

        self.app.push_screen(ConfirmScreen(title, body, yes=yes), answered)

    def toggle(self, verb: str) -> None:
        """A presenter's toggle: the selected spec with one field set, as an action."""
        toggle, row = self.presenter.toggle(verb), self.selected
        if toggle is None or row is None or getattr(row.spec, toggle.field) == toggle.value:
            return
        presenter, name = self.presenter, row.name
        spec = type(row.spec).model_validate({**row.spec.model_dump(), toggle.field: toggle.value})

        def go(sure: bool | None = True) -> None:
            if sure:
                self.act(name, toggle.busy, [Change(presenter.kind, name, spec)],
                         f"{presenter.kind} {name} {toggle.done}")

        if toggle.confirm:
            word = toggle.key.description
            self.app.push_screen(ConfirmScreen(f"{word} {presenter.kind} {name}?",
                                               toggle.confirm, yes=word), go)
        else:
            go()

    def action_rollback(self) -> None:
        if (row := self.selected) is not None:
            self.preview_last(row.name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollback-preview",
          description="find and preview the last action on a resource")
    def preview_last(self, name: str) -> None:
        kind = self.presenter.kind
        record = self.context.engine.last_undoable(kind, name)
        if record is None:
            self.post_message(RollbackPreviewed(
                0, None, f"no succeeded action on {kind} {name} to roll back"))
            return
        self.post_message(preview_message(self.context.engine, record.id))

    def on_rollback_previewed(self, message: RollbackPreviewed) -> None:
        confirm_rollback(self, self.context, message)

    # -- looking ------------------------------------------------------------------------
    def action_open(self) -> None:
        if (row := self.selected) is not None:
            self.app.push_screen(self.presenter.detail_screen(self.context, row))

    def action_poll(self) -> None:
        if (row := self.selected) is not None and not row.in_flight:
            self.start_poll(row, now=True)

    def open_verb(self, verb: str) -> None:
        """One of the presenter's `opens`: its screen on the selected resource."""
        if (row := self.selected) is not None:
            self.app.push_screen(self.presenter.open_screen(verb, self.context, row))

    def action_logs(self) -> None:
        if (row := self.selected) is not None:
            self.app.push_screen(LogScreen(self.context, row.spec))

    # -- operations: journalled (restart) or not (a load test), never on desired state ---
    def action_restart(self) -> None:
        self.operate("restart", self.presenter.confirm_restart, self._restart)

    def action_bench(self) -> None:
        self.operate("bench", self.confirm_bench, self._bench)

    def operate(self, verb: str, confirm: Callable[[str], tuple[str, str, str]], run: Run) -> None:
        if (row := self.selected) is None:
            return
        spec, kind = row.spec, self.presenter.kind
        title, body, yes = confirm(spec.name)

        def answered(sure: bool | None) -> None:
            if sure and (current := self.rows.get(spec.name)) is not None:
                current.busy, current.progress = self.presenter.busy_words[verb], None
                self.update_row(spec.name)
                self.update_bindings()
                self.run_worker(partial(self._operate, verb, spec, run), thread=True,
                                exclusive=True, exit_on_error=False, group=f"{verb}-{spec.name}",
                                description=f"{verb} {kind} {spec.name}")

        self.app.push_screen(ConfirmScreen(title, body, yes=yes), answered)

    def _operate(self, verb: str, spec: Spec, run: Run) -> None:
        started = time.monotonic()
        try:
            error, report = run(spec)
        except Exception as exc:  # noqa: BLE001 - reported to the operator
            error, report = error_text(exc), None
        self.post_message(ResourceOperated(verb, spec.name, error, time.monotonic() - started,
                                           report))

    def _restart(self, spec: Spec) -> tuple[str | None, str | None]:
        """Journalled by the engine (who, when, the checklist); its progress lines come
        through the engine's listeners like an action's."""
        record = self.context.engine.restart(self.presenter.kind, spec.name)
        failed = [f"{c.name}: {c.detail}" for c in record.checks if not c.ok]
        return record.error or ("checks failed: " + "; ".join(failed) if failed else None), None

    def confirm_bench(self, name: str) -> tuple[str, str, str]:
        requests, concurrency, max_tokens = self.presenter.bench_load
        return (f"Load-test {self.presenter.kind} {name}?",
                f"{requests} requests, {concurrency} at once, up to {max_tokens} tokens each, "
                "through the host's tunnel; its clients share it meanwhile. Nothing in the lab "
                "changes.", "Bench")

    def _bench(self, spec: Spec) -> tuple[str | None, str | None]:
        requests, concurrency, max_tokens = self.presenter.bench_load

        def progress(done: int, total: int) -> None:
            self.post_message(ResourceProgress(spec.name, f"{done}/{total} requests"))

        result = self.context.engine.bench(spec, requests=requests, concurrency=concurrency,
                                           max_tokens=max_tokens, progress=progress)
        lines = [f"{k}: {'-' if v is None else v}" for k, v in result.summary().items()]
        return None, "\n".join(lines + [f"error: {e}" for e in result.error_samples[:3]])

    def on_resource_operated(self, message: ResourceOperated) -> None:
        self.finish(message.name)
        what = f"{self.presenter.kind} {message.name}"
        if message.error is not None:
            self.notify(message.error, title=f"{message.verb} of {message.name} failed",
                        severity="error", timeout=12)
        elif message.report is not None:
            self.notify(message.report, title=f"{message.verb} of {what}", timeout=30)
        else:
            self.notify(f"{message.verb}ed in {message.seconds:.1f}s", title=what)


def toggle_action(verb: str) -> Callable[[ResourceVerbs], None]:
    """The action method of a presenter's toggle (`action_stop` for a run's `s`)."""

    def action(self: ResourceVerbs) -> None:
        self.toggle(verb)

    action.__name__ = f"action_{verb}"
    action.__doc__ = f"The presenter's `{verb}` toggle on the selected resource."
    return action


def opens_action(verb: str) -> Callable[[ResourceVerbs], None]:
    """The action method of a presenter's `opens` key (`action_query` for an index's `q`)."""

    def action(self: ResourceVerbs) -> None:
        self.open_verb(verb)

    action.__name__ = f"action_{verb}"
    action.__doc__ = f"The presenter's `{verb}` screen on the selected resource."
    return action


def resource_view(presenter: Presenter) -> type[ResourceView]:
    """A kind's view class: the presenter, and the bindings it declares (an alias where the
    presenter names a verb's action otherwise: Hosts' `add` runs `new`)."""
    actions = {verb: presenter.key(verb).action for verb in presenter.verbs()}
    namespace: dict[str, Any] = {
        "__module__": type(presenter).__module__,
        "__doc__": f"The {presenter.title} view: {presenter.what or presenter.kind}",
        "presenter": presenter,
        "view_id": presenter.view_id,
        "title": presenter.title,
        "BINDINGS": presenter.bindings(),
        "CHANGING": frozenset(name for verb, action in actions.items()
                              if verb in presenter.changing() for name in (verb, action)),
        "verb_of": {action: verb for verb, action in actions.items()},
    }
    for verb, action in actions.items():
        if presenter.toggle(verb) is not None:
            namespace[f"action_{action}"] = toggle_action(verb)
        elif presenter.opener(verb) is not None:
            namespace[f"action_{action}"] = opens_action(verb)
        elif action != verb:
            namespace[f"action_{action}"] = getattr(ResourceVerbs, f"action_{verb}")
    return type(f"{presenter.title}View", (ResourceVerbs,), namespace)
