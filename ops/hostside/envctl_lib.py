"""envctl's shared parts (run ON a host, stdlib only): paths, JSON files, the venv symlink,
the host's pip pointed at a venv, `pip freeze` and the content-addressed manifests. Sent beside
envctl.py (ops/kinds/env/hostcalls.py puts every envctl*.py in <workdir>/bin)."""

import glob
import hashlib
import json
import os
import re
import subprocess
import sys

MARK = ".llmops-complete"
NOT_FROZEN = {"pip", "setuptools", "wheel", "distribute"}
PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1"}


def expand(path):
    return os.path.abspath(os.path.expanduser(path))


def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def read_json(path, default=None):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return default


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def link_set(root, venv):
    """(the set the venv symlink points at or None, whether the path is something else)."""
    if os.path.islink(venv):
        target = os.path.realpath(venv)
        parent = os.path.realpath(os.path.join(root, "venvs"))
        if os.path.dirname(target) == parent:
            return os.path.basename(target), False
        return None, True
    return None, os.path.lexists(venv)


# -- pip ----------------------------------------------------------------------------------
def host_pip_ok():
    """The host python's own pip can work on another environment (pip >= 22.3, --python)."""
    done = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                          text=True)
    found = re.match(r"pip (\d+)\.(\d+)", done.stdout or "")
    return done.returncode == 0 and found is not None and \
        (int(found.group(1)), int(found.group(2))) >= (22, 3)


def pip_argv(venv_dir):
    """pip for the venv: the host's pip pointed at it, or the venv's own when it has one."""
    own = os.path.join(venv_dir, "bin", "pip")
    if os.path.exists(own):
        return [os.path.join(venv_dir, "bin", "python"), "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", os.path.join(venv_dir, "bin", "python")]


def pip_env():
    """pip's environment: a PYTHONPATH of the login's (module systems set one) would lend the
    venv its packages, so pip would skip installing them and pip check would judge them."""
    env = dict(os.environ, **PIP_ENV)
    env.pop("PYTHONPATH", None)
    return env


def site_packages(venv_dir):
    found = sorted(glob.glob(os.path.join(venv_dir, "lib", "python*", "site-packages")))
    return found[0] if found else None


def freeze_argv(venv_dir):
    """`pip freeze` of the venv: the host's pip reading its site-packages (one process),
    else the venv's pip."""
    site = site_packages(venv_dir)
    if site and not os.path.exists(os.path.join(venv_dir, "bin", "pip")):
        return [sys.executable, "-m", "pip", "freeze", "--path", site]
    return [*pip_argv(venv_dir), "freeze"]


def freeze_lines(stdout):
    return sorted((line.strip() for line in stdout.splitlines() if line.strip()),
                  key=lambda line: canon(re.split(r"[=@ ]", line, maxsplit=1)[0]))


def freeze(venv_dir):
    """`pip freeze` of the venv: sorted lines; raises on failure."""
    done = subprocess.run(freeze_argv(venv_dir), capture_output=True, text=True,
                          env=pip_env(), timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"pip freeze failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return freeze_lines(done.stdout)


def manifest_text(lines):
    return "".join(f"{line}\n" for line in lines)


def store_manifest(root, lines):
    text = manifest_text(lines)
    sha = hashlib.sha256(text.encode()).hexdigest()
    path = os.path.join(root, "manifests", f"{sha}.txt")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return sha


def read_manifest(root, sha):
    with open(os.path.join(root, "manifests", f"{sha}.txt")) as fh:
        return [line.strip() for line in fh if line.strip()]


def as_pins(lines):
    """name -> version of freeze lines (`name==version`; others keep the whole line)."""
    found = {}
    for line in lines:
        name, sep, version = line.partition("==")
        found[canon(name)] = version if sep else line
    return found


def run_pip(args, venv_dir, tail):
    """Run pip, its lines going to this process's stdout (the build's log) and `tail`."""
    argv = [*pip_argv(venv_dir), *args]
    print("$ pip " + " ".join(args), flush=True)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=pip_env())
    for line in proc.stdout:
        line = line.rstrip("\n")
        print(line, flush=True)
        tail.append(line)
        del tail[:-40]
    return proc.wait()


def pip_error(tail):
    errors = [line for line in tail if line.startswith("ERROR")]
    return " | ".join(errors or tail[-5:]) or "pip failed without a message"
