"""A secret named by where it lives (ops/secretref.py): an environment variable or an OS
keyring entry. The keyring here is a real backend (keyrings.alt's file keyring in a tmp
folder: this box has no Secret Service), so the production calls are what run."""

from __future__ import annotations

import keyring
import pytest
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring

from llmops.ops.errors import SpecError
from llmops.ops.secretref import keyring_ref, one_place, resolve

FIELDS = {"env_field": "api_key_env", "keyring_field": "api_key_keyring"}


def test_names_are_checked_values_never_taken() -> None:
    assert keyring_ref("llmops/weaviate-prod") == "llmops/weaviate-prod"
    for bad in ("no-slash", "a/b/c", "/user", "svc/", "svc/us er", "svc/$(id)"):
        with pytest.raises(ValueError, match="SERVICE/USER") as said:
            keyring_ref(bad)
        assert bad not in str(said.value)
    with pytest.raises(ValueError, match="api_key_env or api_key_keyring, not both"):
        one_place("K", "svc/user", "api_key_env", "api_key_keyring")


def test_from_the_environment() -> None:
    assert resolve(env="K", ring=None, environ={"K": "v1"}, **FIELDS) == "v1"
    assert resolve(env=None, ring=None, environ={}, **FIELDS) is None
    with pytest.raises(SpecError) as unset:
        resolve(env="K", ring=None, environ={}, **FIELDS)
    assert unset.value.field == "api_key_env" and "export K=" in unset.value.fix


def test_from_the_keyring(ring: PlaintextKeyring) -> None:
    ring.set_password("llmops", "weaviate-prod", "s3cret-value")
    found = resolve(env=None, ring="llmops/weaviate-prod", **FIELDS)
    assert found == "s3cret-value"
    with pytest.raises(SpecError) as missing:
        resolve(env=None, ring="llmops/other", **FIELDS)
    assert missing.value.field == "api_key_keyring"
    assert "no entry llmops/other" in missing.value.message
    assert missing.value.fix == "store it first: keyring set llmops other"


def test_no_keyring_backend_is_a_clear_refusal() -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(SpecError) as none:
            resolve(env=None, ring="llmops/weaviate-prod", **FIELDS)
    finally:
        keyring.set_keyring(before)
    assert none.value.field == "api_key_keyring"
    assert "could not be read" in none.value.message and "PYTHON_KEYRING_BACKEND" in none.value.fix
