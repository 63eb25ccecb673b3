"""Install LiteLLM into a gateway's venv on its host: `python -c <this> VENV VERSION`, run by
the gateway kind's install step as a detached process (ops/kinds/gateway/apply.py). Stdlib only.

Under an flock on `<venv>.lock` beside the venv: two installs into one venv at once (two
gateways sharing one, two test runs sharing the tests' cached venv) would race pip against pip.
The one that waited finds the marker the other wrote and installs nothing; the marker is removed
first and written last, so a killed install is redone."""

import fcntl
import os
import subprocess
import sys
import venv

MARKER = ".llmops-gateway-venv"  # apply.MARKER: the LiteLLM release a finished install holds


def main(path: str, version: str) -> int:
    marker = os.path.join(path, MARKER)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    lock = open(os.path.abspath(path) + ".lock", "a")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("waiting for another install into " + path, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        with open(marker) as fh:
            done = fh.read().strip() == version
    except OSError:
        done = False
    if done:
        print("installed litellm " + version + " (by another install)", flush=True)
        return 0
    if os.path.exists(marker):
        os.remove(marker)
    if not os.path.exists(os.path.join(path, "bin", "python")):
        print("creating venv " + path, flush=True)
        venv.create(path, with_pip=True)
    python = os.path.join(path, "bin", "python")
    rc = subprocess.call([python, "-m", "pip", "install", "--progress-bar", "off",
                          "litellm[proxy]==" + version, "gunicorn", "httptools"])
    if rc:
        return rc
    subprocess.check_call([python, "-c", "import litellm, gunicorn, uvicorn, httptools"])
    with open(marker, "w") as fh:
        fh.write(version)
    print("installed litellm " + version, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
