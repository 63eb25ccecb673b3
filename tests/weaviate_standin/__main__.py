"""Run the stand-in as a process, the way llmops runs a Weaviate binary on a host:
python -m weaviate_standin --http-port P --grpc-port G --backup-dir D [--data-dir D]
    [--api-key-env NAME] [--host 127.0.0.1]
or as the real binary is run (`weaviate --host H --port P --scheme http` with Weaviate's
environment variables; see write_binary). Prints "ready http=P grpc=G" once both listen;
SIGTERM or SIGINT stops it (saving the data dir)."""

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

VECTORIZERS = ("text2vec-openai",)
"""The vectorizer modules the stand-in runs (tests/weaviate_standin/modules.py)."""


def light() -> None:
    """Make the client's stub files importable without importing `weaviate` itself (its
    package __init__ pulls in httpx, pydantic and more: seconds a server does not need)."""
    if "weaviate" in sys.modules:
        return
    spec = importlib.util.find_spec("weaviate")
    if spec is None or spec.origin is None:
        raise ConfigError("weaviate-client is not installed (the stand-in uses its stubs)")
    root = Path(spec.origin).parent
    for name, path in (("weaviate", root), ("weaviate.proto", root / "proto"),
                       ("weaviate.proto.v1", root / "proto" / "v1")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        module.__dict__["__standin_light__"] = True
        sys.modules[name] = module


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="weaviate_standin", description=f"Weaviate {VERSION} stand-in for tests",
        epilog="Also takes the real binary's way: --host/--port/--scheme and the environment "
               "Weaviate reads (GRPC_PORT, PERSISTENCE_DATA_PATH, ENABLE_MODULES, "
               "BACKUP_FILESYSTEM_PATH, AUTHENTICATION_APIKEY_ENABLED / _ALLOWED_KEYS, "
               "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED, AUTOSCHEMA_ENABLED, "
               "QUERY_DEFAULTS_LIMIT, QUERY_MAXIMUM_RESULTS, CLUSTER_HOSTNAME); flags win.")
    parser.add_argument("--http-port", "--port", dest="http_port", type=int, default=None)
    parser.add_argument("--grpc-port", type=int, default=None)
    parser.add_argument("--backup-dir", default=None,
                        help="backup-filesystem's path: one folder per backup id")
    parser.add_argument("--data-dir", default=None,
                        help="loaded at start, written a few seconds after changes and on stop")
    parser.add_argument("--api-key-env", default=None,
                        help="NAME of an environment variable holding the API key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--scheme", default="http", choices=["http"])
    parser.add_argument("--backup-delay", type=float, default=0.0,
                        help="seconds per backup phase, to watch STARTED/TRANSFERRING")
    parser.add_argument("--verbose", action="store_true", help="log each HTTP request")
    return parser.parse_args(argv)


class ConfigError(Exception):
    """A configuration the stand-in cannot honour."""


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    return default if not value else value in ("true", "1", "on", "yes", "enabled")


def settings(args: argparse.Namespace, env: dict[str, str]) -> dict[str, object]:
    """start_standin's arguments from the flags and Weaviate's environment variables; a
    configuration the stand-in cannot honour is a ConfigError naming it."""
    modules = [m.strip() for m in env.get("ENABLE_MODULES", "").split(",") if m.strip()]
    vectorizer = env.get("DEFAULT_VECTORIZER_MODULE", "none") or "none"
    missing = [m for m in modules if m not in ("backup-filesystem", *VECTORIZERS)]
    if missing:
        raise ConfigError(f"modules not available in the stand-in: {', '.join(missing)} "
                         f"(it has backup-filesystem and {', '.join(VECTORIZERS)})")
    if vectorizer != "none" and vectorizer not in modules:
        raise ConfigError(f"DEFAULT_VECTORIZER_MODULE {vectorizer} is not in ENABLE_MODULES")
    backup_dir = args.backup_dir
    if backup_dir is None and "backup-filesystem" in modules:
        backup_dir = env.get("BACKUP_FILESYSTEM_PATH") or None
        if backup_dir is None:
            raise ConfigError("backup-filesystem needs BACKUP_FILESYSTEM_PATH")
    keys: list[str] = []
    if args.api_key_env:
        key = env.get(args.api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env names {args.api_key_env}, which is not set")
        keys = [key]
    elif _flag(env, "AUTHENTICATION_APIKEY_ENABLED", False):
        keys = [k.strip() for k in env.get("AUTHENTICATION_APIKEY_ALLOWED_KEYS", "").split(",")
                if k.strip()]
        if not keys:
            raise ConfigError("AUTHENTICATION_APIKEY_ENABLED needs at least one key in "
                             "AUTHENTICATION_APIKEY_ALLOWED_KEYS")
    anonymous = None
    if env.get("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"):
        anonymous = _flag(env, "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", True)
    return {
        "http_port": args.http_port if args.http_port is not None else 8080,
        "grpc_port": args.grpc_port if args.grpc_port is not None
        else int(env.get("GRPC_PORT") or 50051),
        "backup_dir": backup_dir, "api_keys": keys, "anonymous": anonymous, "host": args.host,
        "data_dir": args.data_dir or env.get("PERSISTENCE_DATA_PATH") or None,
        "backup_delay": args.backup_delay, "verbose": args.verbose,
        "autoschema": _flag(env, "AUTOSCHEMA_ENABLED", True),
        "defaults_limit": int(env.get("QUERY_DEFAULTS_LIMIT") or 10),
        "maximum_results": int(env.get("QUERY_MAXIMUM_RESULTS") or 10000),
        "node_name": env.get("CLUSTER_HOSTNAME") or "node1",
        "modules": [m for m in modules if m in VECTORIZERS],
        "module_env": {k: env[k] for k in ("OPENAI_APIKEY",) if env.get(k)},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        config = settings(args, dict(os.environ))
        light()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from .server import start_standin

    try:
        handle = start_standin(**config)  # type: ignore[arg-type]
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
