"""Run spec -> where its files live on the host, the trainer's config, argv and environment:
pure functions, so the plan, the checklist and `llmops run command` build them alike.

Everything of a run is under `<workdir>/runs/<name>/`: one folder per training config
(`cfg`, RunSpec.cfg_hash) and `current`, the cfg in use (see DESIGN "Runs as built")."""

from __future__ import annotations

from typing import Any

from llmops.ops.kinds.hoststate import has_gpus
from llmops.ops.kinds.run.spec import RunSpec

FOLDER = "runs"
SCRIPTS = (
    "trainer.py", "trainer_rows.py", "trainer_state.py", "dataset.py", "datascreen.py",
    "injection_rules.py", "adapter_tools.py",
)
"""Host-side scripts copied to <workdir>/bin/ together (trainer.py imports the others;
datascreen.py the injection rules it shares with the gateway's guardrail)."""


def python(facts: dict[str, Any]) -> str:
    return str(facts.get("python") or "python3")


def run_dir(facts: dict[str, Any], name: str) -> str:
    return f"{facts['workdir']}/{FOLDER}/{name}"


def cfg_dir(facts: dict[str, Any], name: str, cfg: str) -> str:
    return f"{run_dir(facts, name)}/{cfg}"


def bin_path(facts: dict[str, Any], script: str) -> str:
    return f"{facts['workdir']}/bin/{script}"


def screen_proc(spec: RunSpec) -> str:
    """The detached screening of the run's data (procctl name)."""
    return f"{spec.proc_name()}.screen"


def proc_names(spec: RunSpec) -> tuple[str, str]:
    return spec.proc_name(), screen_proc(spec)


def has_eval(spec: RunSpec) -> bool:
    return bool(spec.validation or spec.eval_split)


def trainer_config(spec: RunSpec, facts: dict[str, Any]) -> dict[str, Any]:
    """What trainer.py reads (<cfg>/config.json): only screened data, never the raw file."""
    cfg = spec.cfg_hash()
    out = cfg_dir(facts, spec.name, cfg)
    return {
        "base": spec.base,
        **({"revision": spec.revision} if spec.revision else {}),
        "train_file": f"{out}/data/train.jsonl",
        "eval_file": f"{out}/data/eval.jsonl" if has_eval(spec) else None,
        "format": spec.data_format(),
        "text_field": spec.text_field,
        "prompt_field": spec.prompt_field,
        "completion_field": spec.completion_field,
        "messages_field": spec.messages_field,
        "r": spec.r,
        "alpha": spec.alpha,
        "dropout": spec.dropout,
        "target_modules": list(spec.target_modules),
        "qlora": spec.qlora,
        "lr": spec.lr,
        "epochs": spec.epochs,
        "max_steps": spec.max_steps,
        "batch_size": spec.batch_size,
        "grad_accum": spec.grad_accum,
        "max_seq_len": spec.max_seq_len,
        "eval_steps": spec.eval_steps,
        "save_steps": spec.save_steps,
        "logging_steps": spec.logging_steps,
        "early_stopping_patience": spec.early_stopping_patience,
        "seed": spec.seed,
        "output_dir": out,
        "use_cpu": not has_gpus(facts),
        "spec_hash": cfg,
    }


def config_path(facts: dict[str, Any], spec: RunSpec) -> str:
    return f"{cfg_dir(facts, spec.name, spec.cfg_hash())}/config.json"


def trainer_argv(spec: RunSpec, facts: dict[str, Any]) -> list[str]:
    return [python(facts), bin_path(facts, "trainer.py"), "train", config_path(facts, spec)]


def dry_run_argv(spec: RunSpec, facts: dict[str, Any], steps: int = 2) -> list[str]:
    return [
        python(facts),
        bin_path(facts, "trainer.py"),
        "dry-run",
        config_path(facts, spec),
        "--steps",
        str(steps),
    ]


def trainer_env(spec: RunSpec, facts: dict[str, Any]) -> dict[str, str]:
    """Offline always (a hub base is fetched by the plan's first step, so a start or a resume
    never waits on the hub); the spec's GPUs on a GPU host."""
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if has_gpus(facts) and spec.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpus)
    return env


def inspect_request(spec: RunSpec, path: str, data_dirs: list[str]) -> dict[str, Any]:
    """dataset.py inspect's request for one data file (the dataset or the validation file)."""
    return {
        "path": path,
        "data_dirs": list(data_dirs),
        "format": spec.data_format(),
        "text_field": spec.text_field,
        "prompt_field": spec.prompt_field,
        "completion_field": spec.completion_field,
        "messages_field": spec.messages_field,
        "base": spec.base,
        **({"revision": spec.revision} if spec.revision else {}),
    }


def screen_request(spec: RunSpec, facts: dict[str, Any], data_dirs: list[str]) -> dict[str, Any]:
    """dataset.py screen's request: the rules' choices from the spec, out into the cfg folder."""
    return {
        **inspect_request(spec, spec.dataset, data_dirs),
        "validation": spec.validation,
        "eval_split": spec.eval_split,
        "seed": spec.seed,
        "screening": dict(spec.screening),
        "out_dir": cfg_dir(facts, spec.name, spec.cfg_hash()),
    }
