"""launch = docker: the container llmops runs Weaviate in, seen and stopped through docker
itself. `docker run` (launch.weaviate_argv) runs in the foreground under procctl, so the key's
value reaches it on procctl's stdin as an environment variable named by `-e` (never in argv);
but a container outlives its CLI (a SIGKILLed `docker run` leaves it running), so whether it
runs is asked of docker (`docker inspect`), and it is stopped with `docker stop`, then
removed. Argv builders and the parse of docker's answer are pure (tested from data).

No docker engine runs on the machines this was built on: only these argv and the plan that
uses them are tested; a real run is not (DESIGN.md says so)."""

from __future__ import annotations

from dataclasses import dataclass

from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.transport import Transport

STOP_GRACE_S = 30
"""Seconds `docker stop` gives Weaviate to flush before SIGKILL (its default is 10)."""
INSPECT_FORMAT = "{{.State.Running}} {{.State.ExitCode}} {{.Id}}"


def container(spec: IndexSpec) -> str:
    """The container's name: one per index, so `docker run --name` refuses a second."""
    return f"llmops-{spec.name}"


def inspect_argv(spec: IndexSpec) -> list[str]:
    return ["docker", "inspect", "--type", "container", "--format", INSPECT_FORMAT,
            container(spec)]


def stop_argv(spec: IndexSpec) -> list[str]:
    return ["docker", "stop", "-t", str(STOP_GRACE_S), container(spec)]  # --time: deprecated


def remove_argv(spec: IndexSpec) -> list[str]:
    """After a stop: `--rm` removes it, unless its CLI died first (then this does)."""
    return ["docker", "rm", "--force", container(spec)]


def logs_argv(spec: IndexSpec, lines: int) -> list[str]:
    return ["docker", "logs", "--tail", str(lines), container(spec)]


@dataclass(frozen=True)
class ContainerState:
    """What docker says of the index's container."""

    exists: bool
    running: bool
    exit_code: int | None = None
    id: str | None = None
    error: str | None = None
    """Why docker could not say (not installed, daemon down); None when it answered."""


def parse_inspect(returncode: int, stdout: str, stderr: str) -> ContainerState:
    """Pure: `docker inspect --format INSPECT_FORMAT` -> the container's state. "No such
    container" is an answer (absent); anything else failing is an error (docker missing,
    daemon unreachable), which observe reports rather than taking as "stopped"."""
    if returncode == 0:
        parts = stdout.strip().split()
        if len(parts) == 3 and parts[0] in ("true", "false"):
            return ContainerState(True, parts[0] == "true", int(parts[1]), parts[2][:12])
        return ContainerState(False, False, error=f"docker inspect said {stdout.strip()!r}")
    text = (stderr or stdout).strip()
    if "no such container" in text.lower() or "no such object" in text.lower():
        return ContainerState(False, False)
    return ContainerState(False, False, error=text[-300:] or f"docker exited {returncode}")


def state(t: Transport, spec: IndexSpec) -> ContainerState:
    done = t.run(inspect_argv(spec), timeout=30)
    return parse_inspect(done.returncode, done.stdout, done.stderr)


def stop(t: Transport, spec: IndexSpec) -> str:
    """Stop and remove the container; what happened, in words."""
    stopped = t.run(stop_argv(spec), timeout=STOP_GRACE_S + 30)
    t.run(remove_argv(spec), timeout=60)
    gone = state(t, spec)
    if gone.exists:
        raise RuntimeError(f"container {container(spec)} is still there after docker stop: "
                           f"{(stopped.stderr or stopped.stdout).strip()[-200:]}")
    return "docker stop" if stopped.returncode == 0 else "not running"


def logs(t: Transport, spec: IndexSpec, lines: int = 20) -> list[str]:
    done = t.run(logs_argv(spec, lines), timeout=30)
    return (done.stdout + done.stderr).strip().splitlines()[-lines:]
