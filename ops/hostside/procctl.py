"""Detached processes on a host, run as `python -c <this> OP` with a JSON request on stdin.

Stdlib only: it runs in whatever Python the host has. It prints one JSON object. `start`
returns at once while the program keeps running in its own session (no `nohup ... &`
over SSH, which hangs); a small waiter process stays as the session leader to record the
exit code. Records live in <workdir>/run/<name>/: proc.json, log, rc.json.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 - hosts may run 3.8


def stat(pid):
    """(state, start ticks, session id) of a live pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except (OSError, ValueError):
        return None
    return fields[0], int(fields[19]), int(fields[3])  # fields 3, 22 and 6 of proc(5)


def session_members(sid):
    """Live (non-zombie) processes of the session the waiter leads."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = stat(entry)
            if info and info[2] == sid and info[0] not in "ZX":
                found.append(int(entry))
    return found


def boot_id():
    """This boot's id: a record from another boot names processes that are all gone."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return None


def read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def write_json(path, data):
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def run_dir(req, name=None):
    return os.path.join(os.path.expanduser(req["workdir"]), "run", name or req["name"])


def status(req, name=None):
    folder = run_dir(req, name)
    rec = read_json(os.path.join(folder, "proc.json"))
    if rec is None:
        return {"name": name or req["name"], "state": "missing"}
    info = stat(rec["pid"])
    if rec.get("boot_id") and rec["boot_id"] != boot_id():
        rec["state"] = "exited"  # the host rebooted since: its pid numbers mean other programs
    elif info is None or info[0] in "ZX":
        rec["state"] = "exited"
    elif info[1] != rec["start_ticks"]:
        rec["state"] = "reused"
    else:
        rec["state"] = "running"
    ended = read_json(os.path.join(folder, "rc.json")) or {}
    rec.update(rc=ended.get("rc"), ended_at=ended.get("ended_at"))
    return rec


def waiter(argv, env, cwd, folder, log_fd, report_fd):
    """The forked session leader: start the program, report its pid, wait, record the rc."""
    os.setsid()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: None)  # caught, so the program gets the default back
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        proc = subprocess.Popen(argv, stdin=0, stdout=1, stderr=2, env=env, cwd=cwd)
    except OSError as exc:
        os.write(report_fd, json.dumps({"error": f"cannot start {argv[0]}: {exc}"}).encode())
        return
    info, leader = stat(proc.pid), stat(os.getpid())
    os.write(report_fd, json.dumps({"pid": proc.pid, "start_ticks": info and info[1],
                                    "sid_ticks": leader and leader[1]}).encode())
    os.close(report_fd)
    # the same pid (still the program's parent) becomes a short program, readable in `ps`
    os.execv(sys.executable, [sys.executable, "-c", WAIT, "llmops-wait", str(proc.pid), folder])


WAIT = """import json, os, signal, sys, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda *_: None)
st = os.waitpid(int(sys.argv[2]), 0)[1]
rc = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
with open(sys.argv[3] + "/rc.json.tmp", "w") as fh:
    json.dump({"rc": rc, "ended_at": at}, fh)
os.replace(sys.argv[3] + "/rc.json.tmp", sys.argv[3] + "/rc.json")
print("--- exit", rc, at, flush=True)
"""


def start(req):
    folder, argv = run_dir(req), req["argv"]
    current = status(req)
    if current["state"] == "running":
        return {"error": f"{req['name']} is already running (pid {current['pid']} since "
                         f"{current['started_at']}): stop it first"}
    cwd = os.path.expanduser(req.get("cwd") or "~")
    if not os.path.isdir(cwd):
        return {"error": f"working directory {cwd} does not exist"}
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    if os.path.exists(os.path.join(folder, "rc.json")):
        os.unlink(os.path.join(folder, "rc.json"))
    log_fd = os.open(os.path.join(folder, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    started_at = now()
    os.write(log_fd, f"--- start {started_at} {shlex.join(argv)}\n".encode())
    env = dict(os.environ, **req.get("env", {}))
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sid = os.fork()
    if sid == 0:
        try:
            os.close(read_end)
            waiter(argv, env, cwd, folder, log_fd, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.close(log_fd)
    with os.fdopen(read_end, "rb") as fh:
        reply = json.loads(fh.read() or b'{"error": "the waiter died before starting it"}')
    if "error" in reply:
        return reply
    rec = {"name": req["name"], "pid": reply["pid"], "start_ticks": reply["start_ticks"],
           "sid": sid, "sid_ticks": reply.get("sid_ticks"), "boot_id": boot_id(),
           "argv": argv, "env_keys": sorted(req.get("env", {})), "cwd": cwd,
           "started_at": started_at, "log": os.path.join(folder, "log")}
    write_json(os.path.join(folder, "proc.json"), rec)
    return status(req)


def session_is_ours(rec):
    """False when the session number now belongs to another program: the host rebooted, or
    the waiter died and its pid went to a new session leader (the kernel reuses a session's
    number only when none of its processes is left, so a live leader with other start ticks
    means ours are all gone). Old records without the ticks keep the session as found."""
    if rec.get("boot_id") and rec["boot_id"] != boot_id():
        return False
    leader = stat(rec["sid"])
    return not (leader and rec.get("sid_ticks") and leader[1] != rec["sid_ticks"])


def stop(req):
    began, grace = time.monotonic(), float(req.get("grace", 10.0))
    current = status(req)
    if current["state"] == "missing":
        return current
    sid = current["sid"]
    how = "not running"
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        members = session_members(sid) if session_is_ours(current) else []
        if not members:
            break
        how = "term" if signum == signal.SIGTERM else "kill"
        deadline = time.monotonic() + wait
        while members and time.monotonic() < deadline:
            for pid in members:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
            members = session_members(sid)
    rc_path = os.path.join(run_dir(req), "rc.json")
    deadline = time.monotonic() + 1.0
    while how != "not running" and not os.path.exists(rc_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    if how == "kill" and not os.path.exists(rc_path):
        write_json(rc_path, {"rc": -signal.SIGKILL, "ended_at": now()})
    result = status(req)
    result.update(stopped=how, seconds=round(time.monotonic() - began, 3))
    return result


def tail(req):
    path, lines = os.path.join(run_dir(req), "log"), int(req.get("lines", 50))
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            offset = req.get("offset")
            following = offset is not None and 0 <= offset <= size
            if not following:
                start_at = size
                while start_at > 0:
                    start_at = max(0, start_at - 65536)
                    fh.seek(start_at)
                    if fh.read(size - start_at).count(b"\n") > lines:
                        break
            else:
                start_at = offset
            fh.seek(start_at)
            data = fh.read(min(size - start_at, 4 << 20))
    except FileNotFoundError:
        return {"lines": [], "offset": 0, "missing": True}
    text = data.decode("utf-8", "replace").splitlines()
    return {"lines": text if following else text[-lines:],
            "offset": start_at + len(data)}


def list_all(req):
    root = os.path.join(os.path.expanduser(req["workdir"]), "run")
    names = sorted(os.listdir(root)) if os.path.isdir(root) else []
    return {"procs": [status(req, name) for name in names
                      if os.path.exists(os.path.join(root, name, "proc.json"))]}


def main():
    ops = {"start": start, "status": status, "stop": stop, "tail": tail, "list": list_all}
    req = json.loads(sys.argv[2] if len(sys.argv) > 2 else sys.stdin.read() or "{}")
    result = ops[sys.argv[1]](req)
    print(json.dumps(result))
    return 2 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
