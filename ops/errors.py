"""The error every layer raises for bad input: apart from the kinds, so that modules the kinds
use (ops/secretref.py) can raise it without an import loop inside ops."""

from __future__ import annotations


class SpecError(ValueError):
    """Bad input, named by field, with the fix; raised before anything is written."""

    def __init__(self, field: str, message: str, fix: str = "") -> None:
        self.field = field
        self.message = message
        self.fix = fix
        super().__init__(f"{field}: {message}" + (f" ({fix})" if fix else ""))
