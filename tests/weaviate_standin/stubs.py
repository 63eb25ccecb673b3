"""The weaviate-client's own generated protobuf and gRPC stubs. In-process (tests that use the
client anyway) they come from weaviate.proto.v1 exactly as the client imports them. The
standalone stand-in (see __main__.light) loads the same files without running the client
package's __init__, whose imports take seconds and which a server never needs."""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import version
from typing import Any

_NAMES = ("aggregate_pb2", "base_pb2", "base_search_pb2", "batch_delete_pb2", "batch_pb2",
          "health_weaviate_pb2", "properties_pb2", "search_get_pb2", "tenants_pb2",
          "weaviate_pb2_grpc")


def _number(text: str) -> tuple[int, ...]:
    return tuple(int("".join(ch for ch in part if ch.isdigit()) or 0)
                 for part in text.split(".")[:3])


def _flavour() -> str:
    """The stub generation the client picks for this protobuf (weaviate/proto/v1/__init__)."""
    pb = _number(version("protobuf"))
    if pb >= (6, 30, 0):
        return "v6300"
    if pb >= (5, 26, 1):
        return "v5261"
    return "v4216"


def _load() -> dict[str, Any]:
    package = sys.modules.get("weaviate")
    if package is not None and package.__dict__.get("__standin_light__"):
        base = f"weaviate.proto.v1.{_flavour()}.v1"
        return {n: importlib.import_module(f"{base}.{n}") for n in _NAMES}
    real = importlib.import_module("weaviate.proto.v1")
    return {n: getattr(real, n) if hasattr(real, n) else
            importlib.import_module(f"weaviate.proto.v1.{_flavour()}.v1.{n}") for n in _NAMES}


_MODULES = _load()
aggregate_pb2 = _MODULES["aggregate_pb2"]
base_pb2 = _MODULES["base_pb2"]
base_search_pb2 = _MODULES["base_search_pb2"]
batch_delete_pb2 = _MODULES["batch_delete_pb2"]
batch_pb2 = _MODULES["batch_pb2"]
health_weaviate_pb2 = _MODULES["health_weaviate_pb2"]
properties_pb2 = _MODULES["properties_pb2"]
search_get_pb2 = _MODULES["search_get_pb2"]
tenants_pb2 = _MODULES["tenants_pb2"]
weaviate_pb2_grpc = _MODULES["weaviate_pb2_grpc"]
