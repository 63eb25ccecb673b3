"""A kind package's exports, imported on first use (PEP 562): importing the package's `spec`
(the CLI's options, the console's forms) must not import its apply and their SSH and HTTP
libraries, or `llmops --help` pays for every kind."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """The package's module `__getattr__`: `where` maps each exported name to the module of
    the package that defines it; a name, once imported, is kept on the package."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
