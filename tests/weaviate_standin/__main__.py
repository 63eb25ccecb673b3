"""Run the stand-in as a process, the way llmops runs a Weaviate binary on a host:
python -m weaviate_standin --http-port P --grpc-port G --backup-dir D [--data-dir D]
    [--api-key-env NAME] [--host 127.0.0.1]
Prints "ready http=P grpc=G" once both listen; SIGTERM or SIGINT stops it (saving --data-dir)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
import types
from pathlib import Path

from . import VERSION


def light() -> None:
    """Make the client's stub files importable without importing `weaviate` itself (its
    package __init__ pulls in httpx, pydantic and more: seconds a server does not need)."""
    if "weaviate" in sys.modules:
        return
    spec = importlib.util.find_spec("weaviate")
    if spec is None or spec.origin is None:
        raise SystemExit("error: weaviate-client is not installed (the stand-in uses its stubs)")
    root = Path(spec.origin).parent
    for name, path in (("weaviate", root), ("weaviate.proto", root / "proto"),
                       ("weaviate.proto.v1", root / "proto" / "v1")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        module.__dict__["__standin_light__"] = True
        sys.modules[name] = module


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="weaviate_standin",
                                     description=f"Weaviate {VERSION} stand-in for tests")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, default=50051)
    parser.add_argument("--backup-dir", required=True,
                        help="backup-filesystem's path: one folder per backup id")
    parser.add_argument("--data-dir", default=None,
                        help="loaded at start, written on stop and after each backup")
    parser.add_argument("--api-key-env", default=None,
                        help="NAME of an environment variable holding the API key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--backup-delay", type=float, default=0.0,
                        help="seconds per backup phase, to watch STARTED/TRANSFERRING")
    parser.add_argument("--verbose", action="store_true", help="log each HTTP request")
    parser.epilog = ("Environment as Weaviate reads it: AUTOSCHEMA_ENABLED=false turns off "
                     "auto-schema (unknown properties and collections are then refused).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(f"error: --api-key-env names {args.api_key_env}, which is not set",
                  file=sys.stderr)
            return 2
    light()
    from .server import start_standin

    try:
        handle = start_standin(args.http_port, args.grpc_port, args.backup_dir, api_key,
                               host=args.host, data_dir=args.data_dir,
                               backup_delay=args.backup_delay, verbose=args.verbose,
                               autoschema=os.environ.get("AUTOSCHEMA_ENABLED", "true").lower()
                               not in ("false", "0", "off"))
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(f"ready http={handle.http_port} grpc={handle.grpc_port}", flush=True)
    done.wait()
    handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
