"""What an operator asks of a LoRA / QLoRA fine-tuning run: the spec, validated before
anything is written. Paths are checked against the host's data dirs twice: here for their
shape (no `..`, a data file's suffix), and on the host (symlinks, readability) in preflight."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from llmops.ops.kinds.base import NAME_PATTERN, Spec
from llmops.ops.kinds.server.spec import model_id, model_ref, pinned, split_revision

DATA_SUFFIXES = (".jsonl", ".parquet", ".csv")
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")
MAX_GPUS = 8

Rule = Literal["injection", "secret", "email", "phone", "card"]
"""What dataset screening looks for in every row (see ops/hostside/dataset.py)."""
RULES: tuple[str, ...] = ("injection", "secret", "email", "phone", "card")
Choice = Literal["drop", "keep", "redact"]
DEFAULT_SCREENING: dict[Rule, Choice] = {
    "injection": "drop",
    "secret": "drop",
    "email": "redact",
    "phone": "redact",
    "card": "drop",
}


def _data_path(v: str, what: str) -> str:
    """A host path: absolute or under ~, no `..`, a data file's suffix."""
    if not (v.startswith("/") or v.startswith("~/")):
        raise ValueError(f"{what} must be an absolute path or start with ~/")
    if "\x00" in v or ".." in v.split("/") or "//" in v:
        raise ValueError(f"{what} must be a plain path (no '..', no '//')")
    if not v.endswith(DATA_SUFFIXES):
        raise ValueError(f"{what} must be a {', '.join(DATA_SUFFIXES)} file")
    return v


class RunSpec(Spec):
    """One fine-tuning run: a base model, a dataset on the host, LoRA settings, and whether
    it should be training (`state`). Its outputs are kept per training config (see DESIGN)."""

    host: str = Field(pattern=NAME_PATTERN, description="Host to train on.")
    base: str = Field(description="Base model: hub id org/name or an absolute path on the host.")
    revision: str | None = Field(
        default=None,
        description="Hub revision of the base (tag, branch or commit); base org/name:TAG sets it.",
    )
    dataset: str = Field(
        description="Training data on the host (.jsonl, .parquet, .csv) under its data dirs."
    )
    validation: str | None = Field(
        default=None, description="Validation file on the host (else eval_split of the data)."
    )
    eval_split: float = Field(
        default=0.0, ge=0.0, le=0.5, description="Share of rows held out for eval loss."
    )
    text_field: str | None = Field(
        default=None, pattern=FIELD_PATTERN, description="Field with plain text to learn."
    )
    prompt_field: str | None = Field(
        default=None, pattern=FIELD_PATTERN, description="Field with the prompt (loss masked)."
    )
    completion_field: str | None = Field(
        default=None, pattern=FIELD_PATTERN, description="Field with the completion to learn."
    )
    messages_field: str | None = Field(
        default=None, pattern=FIELD_PATTERN, description="Field with chat messages (template)."
    )
    r: int = Field(default=8, ge=1, le=512, description="LoRA rank.")
    alpha: int = Field(default=16, ge=1, le=4096, description="LoRA alpha.")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="LoRA dropout.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"],
        min_length=1,
        max_length=32,
        description="Modules LoRA adapts, e.g. q_proj,v_proj.",
    )
    qlora: bool = Field(default=False, description="4-bit base (bitsandbytes; CUDA GPU only).")
    lr: float = Field(default=2e-4, gt=0.0, le=1.0, description="Learning rate.")
    epochs: float = Field(default=1.0, gt=0.0, le=1000.0, description="Epochs over the data.")
    max_steps: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Stop after this many steps."
    )
    batch_size: int = Field(default=4, ge=1, le=1024, description="Rows per device step.")
    grad_accum: int = Field(default=1, ge=1, le=1024, description="Gradient accumulation.")
    max_seq_len: int = Field(default=512, ge=8, le=131_072, description="Tokens per row.")
    eval_steps: int = Field(default=50, ge=1, le=1_000_000, description="Evaluate every N steps.")
    save_steps: int = Field(default=50, ge=1, le=1_000_000, description="Checkpoint every N.")
    logging_steps: int = Field(default=5, ge=1, le=100_000, description="Progress every N.")
    early_stopping_patience: int | None = Field(
        default=None, ge=1, le=1000, description="Stop after N evals without better eval loss."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Random seed.")
    gpus: list[int] | None = Field(
        default=None, max_length=MAX_GPUS, description="GPU ids, e.g. 0 (CUDA_VISIBLE_DEVICES)."
    )
    screening: dict[Rule, Choice] = Field(
        default_factory=lambda: dict(DEFAULT_SCREENING),
        description="Per rule: drop, keep or redact rows, e.g. secret=drop,email=redact.",
    )
    state: Literal["running", "stopped"] = Field(
        default="running", description="Whether it should be training."
    )

    @model_validator(mode="before")
    @classmethod
    def _pinned_base(cls, data: Any) -> Any:
        """`base = "org/name:TAG"` is the hub model at revision TAG, as a server's model is:
        kept as base = org/name and revision = TAG; the TAG replaces any other revision, so the
        id given is the version trained on."""
        if not isinstance(data, dict) or not isinstance(data.get("base"), str):
            return data
        repo, tag = split_revision(data["base"])
        return data if tag is None else {**data, "base": repo, "revision": tag}

    @field_validator("base")
    @classmethod
    def _base(cls, v: str) -> str:
        return model_ref(v)

    @field_validator("revision")
    @classmethod
    def _revision(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if not pinned(v):
            raise ValueError(
                f"{v!r} is not a hub revision: a tag, branch or commit of letters, digits and"
                " . _ - (e.g. 1.2, main, a commit sha)")
        if str(info.data.get("base", "")).startswith("/"):
            raise ValueError(
                "a revision goes with a hub id base (org/name), not a path: drop revision, or "
                "give the base as org/name")
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return _data_path(v, "dataset")

    @field_validator("validation")
    @classmethod
    def _validation(cls, v: str | None) -> str | None:
        return None if v is None else _data_path(v, "validation")

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not MODULE_RE.match(m)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a module name (letters, digits, '_', '.')")
        return v

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(set(v)) != len(v) or any(g < 0 for g in v)):
            raise ValueError("GPU ids must be distinct and >= 0")
        return v

    @field_validator("screening")
    @classmethod
    def _screening(cls, v: dict[Rule, Choice]) -> dict[Rule, Choice]:
        return {**DEFAULT_SCREENING, **v}

    @model_validator(mode="after")
    def _format(self) -> RunSpec:
        given = [
            name
            for name, value in (
                ("text_field", self.text_field),
                ("prompt_field", self.prompt_field),
                ("messages_field", self.messages_field),
            )
            if value
        ]
        if (self.prompt_field is None) != (self.completion_field is None):
            raise ValueError("prompt_field and completion_field go together: give both")
        if len(given) > 1:
            raise ValueError(f"give one data format, not {' and '.join(given)}")
        if not given:
            object.__setattr__(self, "text_field", "text")
        if self.early_stopping_patience and not (self.validation or self.eval_split):
            raise ValueError(
                "early_stopping_patience needs eval loss: give validation or eval_split"
            )
        return self

    def data_format(self) -> Literal["text", "prompt-completion", "chat"]:
        if self.messages_field:
            return "chat"
        if self.prompt_field:
            return "prompt-completion"
        return "text"

    def model_id(self) -> str:
        """The base as a registry names it: org/name:TAG when pinned (what the policy's
        `models.allowed` matches)."""
        return model_id(self.base, self.revision)

    def proc_name(self) -> str:
        """The trainer's detached process on the host (servers use bare names)."""
        return f"run.{self.name}"

    def cfg_hash(self) -> str:
        """The training config's folder name on the host: what shapes the training (not the
        name, state, host or GPU ids), so a hyper-parameter change is a new folder and its
        rollback the old one. Fields at their defaults are left out, so a field added to the
        spec later does not move every existing run to a new folder (and retrain it)."""
        blob = json.dumps(
            self.model_dump(
                mode="json", exclude={"name", "state", "host", "gpus"}, exclude_defaults=True
            ),
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]
