"""The gateway's master key from the OS keyring by name (issue 15 item 1: "the name of the
environment variable or keyring entry that holds the master key"). The keyring is a real
backend (keyrings.alt's file keyring in a tmp folder; this box has no Secret Service); the
proxy on the host still reads the key from `master_key_env`, given on procctl's stdin."""

from __future__ import annotations

import pytest
from keyrings.alt.file import PlaintextKeyring
from pydantic import ValidationError

from llmops.ops.kinds.base import SpecError
from llmops.ops.kinds.gateway.client import key_source, master_key
from llmops.ops.kinds.gateway.spec import GatewaySpec

KEY = "sk-gw-4f1d2c9a7e"


def gateway(**extra: object) -> GatewaySpec:
    return GatewaySpec(name="gw", host="local", models={"chat": ["a"]}, **extra)  # type: ignore[arg-type]


def test_the_key_is_read_from_the_keyring_entry_the_spec_names(
        ring: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    ring.set_password("llmops", "gw-prod", KEY)
    spec = gateway(master_key_keyring="llmops/gw-prod")
    assert master_key(spec) == KEY
    assert key_source(spec) == "<from the keyring entry llmops/gw-prod>"
    assert KEY not in spec.model_dump_json()  # what the lab's TOML and journal hold


def test_a_missing_entry_is_refused_naming_the_field(ring: PlaintextKeyring) -> None:
    with pytest.raises(SpecError) as missing:
        master_key(gateway(master_key_keyring="llmops/none"))
    assert missing.value.field == "master_key_keyring"
    assert missing.value.fix == "store it first: keyring set llmops none"


def test_without_an_entry_the_variable_is_read_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_KEY", KEY)
    spec = gateway(master_key_env="GW_KEY")
    assert master_key(spec) == KEY and key_source(spec) == "<from $GW_KEY>"


def test_an_entry_is_a_name_never_a_key() -> None:
    for bad in ("sk-live-abcdef0123456789", "llmops/gw prod", "/gw"):
        with pytest.raises(ValidationError, match="SERVICE/USER"):
            gateway(master_key_keyring=bad)
