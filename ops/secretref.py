"""Where a secret lives, by name: an environment variable or an entry of the OS keyring.

A spec names the place (`api_key_env = "WEAVIATE_KEY"`, `api_key_keyring = "weaviate/prod"`),
never the value, so git and lab.db only ever hold names. The value is read on the operator's
machine right before it is needed (a connection, a process's stdin) through `keyring`, which
speaks to the OS's own store (Secret Service, macOS Keychain, Windows Credential Locker, or
a backend the operator configures with PYTHON_KEYRING_BACKEND).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from llmops.ops.errors import SpecError

KEYRING_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}/[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$")
"""`SERVICE/USER`: the two names `keyring.get_password(service, user)` takes."""


def keyring_ref(v: str) -> str:
    """A spec's `*_keyring` field: `SERVICE/USER` of an OS keyring entry, never a value."""
    if not KEYRING_REF.fullmatch(v):  # not echoed: it may be the key itself, pasted here
        raise ValueError(
            "that is not a keyring entry: give SERVICE/USER (letters, digits and . _ : @ -), "
            "e.g. llmops/weaviate-prod, never the secret"
        )
    return v


def split_ref(ref: str) -> tuple[str, str]:
    service, _, user = ref.partition("/")
    return service, user


def from_keyring(ref: str, field: str) -> str:
    """The value of keyring entry `ref`; SpecError naming `field` and the fix when the OS keyring
    has no such entry or no keyring backend answers."""
    import keyring
    from keyring.errors import KeyringError

    service, user = split_ref(ref)
    try:
        value = keyring.get_password(service, user)
    except KeyringError as exc:  # no backend on this machine, or it refused
        raise SpecError(
            field, f"the OS keyring could not be read for {ref}: {exc}",
            "run llmops where a keyring backend answers (or set PYTHON_KEYRING_BACKEND), or "
            "name an environment variable instead",
        ) from exc
    if not value:
        raise SpecError(
            field, f"the OS keyring has no entry {ref}",
            f"store it first: keyring set {service} {user}",
        )
    return value


def resolve(
    *,
    env_field: str,
    env: str | None,
    keyring_field: str,
    ring: str | None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The secret's value from the one place the spec names (None when it names none): the
    variable `env` of this machine's environment, or the keyring entry `ring`. A named place
    that holds nothing is refused naming its field and the fix."""
    if env is not None:
        value = (environ if environ is not None else os.environ).get(env)
        if not value:
            raise SpecError(
                env_field, f"the environment variable {env} is not set here",
                f"export {env}=<the key> before running llmops",
            )
        return value
    if ring is not None:
        return from_keyring(ring, keyring_field)
    return None


def one_place(env: str | None, ring: str | None, env_field: str, keyring_field: str) -> None:
    """A secret lives in one place: naming both is refused (which one would win is a surprise)."""
    if env is not None and ring is not None:
        raise ValueError(f"give {env_field} or {keyring_field}, not both")
