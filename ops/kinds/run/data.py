"""A run's data on its host: the data-dir rule, inspection (fields, rows, tokens) and the
detached screening whose report and screened rows land in the cfg folder. The rules are
applied on the host by ops/hostside/dataset.py (realpath, so a symlink out is refused)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from llmops.ops import procs
from llmops.ops.kinds.base import Progress, SpecError
from llmops.ops.kinds.host.spec import DEFAULT_DATA_DIRS, HostSpec
from llmops.ops.kinds.run import layout
from llmops.ops.kinds.run.hostcalls import RunError, cause, install_scripts, last_json, one_shot
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.transport import Transport

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

SCREEN_TIMEOUT = 6 * 3600.0


def data_dirs(hosts: HostPool, host: str) -> list[str]:
    """Where the host's spec lets runs read data from."""
    spec = hosts.lookup(host)
    if isinstance(spec, HostSpec):
        return list(spec.data_dirs)
    return list(DEFAULT_DATA_DIRS)


def inspect(
    t: Transport, spec: RunSpec, path: str, dirs: list[str], *, tokens: bool = True
) -> dict[str, Any]:
    """dataset.py inspect on the host: the data-dir rule (realpath), readable, fields, rows,
    and tokens by the base's tokenizer (`tokens` off: estimated, without loading one)."""
    request = layout.inspect_request(spec, path, dirs)
    if not tokens:
        request["base"] = None
    found, _err = one_shot(t, "dataset.py", ["inspect", json.dumps(request)])
    return found


def data_files(spec: RunSpec) -> list[tuple[str, str]]:
    """(spec field, path) of every data file the run reads."""
    return [("dataset", spec.dataset)] + ([("validation", spec.validation)] if spec.validation
                                          else [])


def refused_data(field: str, answer: dict[str, Any], host: str, dirs: list[str]) -> SpecError:
    rule = str(answer.get("rule") or "unreadable")
    message = str(answer.get("message") or answer.get("error") or "not readable")
    fixes = {
        "outside-data-dirs": f"put the file under one of {host}'s data dirs: {', '.join(dirs)}",
        "symlink-escape": f"copy the file itself into one of {', '.join(dirs)} (a symlink "
        "pointing out of them is refused)",
        "dotdot": "give the path without '..'",
        "missing-field": "name the field the rows have (text_field, prompt_field + "
        "completion_field, or messages_field)",
    }
    fix = fixes.get(rule, f"check the file on {host} (data dirs: {', '.join(dirs)})")
    return SpecError(field, f"{rule}: {message}", fix)


def inspect_all(
    spec: RunSpec, t: Transport, dirs: list[str], progress: Progress
) -> dict[str, Any]:
    """The plan's inspect step: every data file, or the step fails naming the rule."""
    facts: dict[str, Any] = {}
    for field, path in data_files(spec):
        answer = inspect(t, spec, path, dirs)
        if not answer.get("ok"):
            raise RunError(str(refused_data(field, answer, spec.host, dirs)))
        progress(f"{field} {answer.get('realpath')}: {answer.get('rows')} rows, "
                 f"{answer.get('tokens')} tokens")
        facts[f"{field}_rows"] = answer.get("rows")
        facts[f"{field}_tokens"] = answer.get("tokens")
    return facts


def screen(
    spec: RunSpec,
    t: Transport,
    facts: dict[str, Any],
    dirs: list[str],
    proc: str,
    cfg: str,
    progress: Progress,
) -> dict[str, Any]:
    """Detached (a big file takes a while and outlives the console); followed to its end. A
    screening already running for this cfg (the console died mid-way) is followed, not
    started twice."""
    folder = layout.cfg_dir(facts, spec.name, cfg)
    _lines, offset = procs.read_log(t, proc, 1 << 62)  # past the end: just the offset
    if not procs.status(t, proc).running:
        install_scripts(t, facts)
        request = layout.screen_request(spec, facts, dirs)
        t.write_text(f"{folder}/screen-request.json", json.dumps(request, indent=1))
        argv = [
            layout.python(facts),
            layout.bin_path(facts, "dataset.py"),
            "screen",
            f"{folder}/screen-request.json",
        ]
        procs.start(t, proc, argv, env={"HF_HUB_OFFLINE": "1"}, cwd=folder)
    began = time.monotonic()
    while True:
        lines, offset = procs.read_log(t, proc, offset)
        for line in lines:
            if not line.startswith(("{", "--- ")):  # the report comes below; procctl's marks
                progress(line[:300])
        info = procs.status(t, proc)
        if not info.running:
            break
        if time.monotonic() - began > SCREEN_TIMEOUT:
            procs.stop(t, proc)
            raise RunError(f"screening of {spec.dataset} ran past {SCREEN_TIMEOUT:.0f}s")
        time.sleep(0.5)
    tail = procs.tail(t, proc, 40)
    starts = [i for i, line in enumerate(tail) if line.startswith("--- start ")]
    this_run = tail[starts[-1] :] if starts else tail
    report = next((found for line in reversed(this_run) if (found := last_json(line))), {})
    if not report.get("ok"):
        why = f"{report.get('rule')}: {report.get('message')}" if report else cause(t, proc)
        raise RunError(
            f"screening of {spec.dataset} failed (exit {info.rc}): {why} "
            f"(whole log: {info.log} on {t.host})"
        )
    rules = report.get("rules") or {}
    progress(
        f"screened {report.get('rows_in')} rows -> {report.get('rows_out')} "
        f"({report.get('train_rows')} train, {report.get('eval_rows')} eval); "
        + ", ".join(f"{rule}: {r.get('rows')} ({r.get('action')})" for rule, r in rules.items())
    )
    return {
        "rows_in": report.get("rows_in"),
        "rows_out": report.get("rows_out"),
        "flagged": {rule: r.get("rows") for rule, r in rules.items()},
    }
