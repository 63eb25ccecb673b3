"""Runs ON a host: LoRA / QLoRA fine-tuning with transformers.Trainer + peft, no trl, no datasets.

    python trainer.py train CONFIG_JSON             (detached, as procctl's run.<name>)
    python trainer.py dry-run CONFIG_JSON [--steps N]

`train` reads only the screened rows (config train_file / eval_file, jsonl), writes one JSON
object per line to <output_dir>/progress.jsonl (and stdout, the process log), checkpoints
every save_steps into <output_dir>/checkpoints (three kept, plus the best one when early
stopping), and at the end adapter/ (peft adapter + tokenizer files), result.json and a done
line. Started again with the same config it resumes from the newest *complete* checkpoint
(trainer_state.json readable, weights and optimizer present; a half-written one from a
SIGKILL is removed), so a killed run ends with the same total steps. SIGTERM is graceful: the
step in flight finishes, a checkpoint is saved, {"event":"stopped"} is written, exit 0.

`dry-run` loads the base (proves it loads), runs N steps on a few rows (the train file's when
it exists, else made-up ones) in a temporary folder and writes nothing into output_dir; its
one stdout line is {"ok":true,"steps","loss","seconds","base_params"}.

Stdlib at import time (the console may read this file); torch, transformers and peft are
imported inside functions. Its parts beside it in <workdir>/bin/ (copied together, see
ops/kinds/run/layout.py SCRIPTS): trainer_rows.py (rows -> token ids and labels),
trainer_state.py (checkpoints, atomic writes), adapter_tools.py (the adapter's sha256). The
last stdout line is always one JSON object.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(globals().get("__file__") or "./trainer.py"))
"""<workdir>/bin/ on a host, where this file's parts are (ops/hostside/ when tests import it)."""
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from trainer_rows import (  # noqa: E402 - beside this file
    Refused,
    encode_rows,
    make_collator,
    probe_prompt,
    read_jsonl,
)
from trainer_state import (  # noqa: E402 - beside this file
    KEEP_CHECKPOINTS,
    checkpoint_step,
    newest_checkpoint,
    save_adapter,
    write_json,
)

DEFAULTS: dict[str, Any] = {
    "eval_file": None, "format": "text", "text_field": "text", "prompt_field": "prompt",
    "completion_field": "completion", "messages_field": "messages", "r": 8, "alpha": 16,
    "dropout": 0.05, "target_modules": ["q_proj", "v_proj"], "qlora": False, "lr": 2e-4,
    "epochs": 1.0, "max_steps": None, "batch_size": 4, "grad_accum": 1, "max_seq_len": 512,
    "eval_steps": 50, "save_steps": 50, "logging_steps": 5, "early_stopping_patience": None,
    "seed": 0, "use_cpu": False, "spec_hash": None,
}


class Progress:
    """progress.jsonl and stdout, one JSON object per line, each with "at" (unix time)."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"event": event, **fields, "at": round(time.time(), 3)}
        line = json.dumps(record) + "\n"
        if self.path:
            with open(self.path, "a") as fh:
                fh.write(line)
        sys.stdout.write(line)
        sys.stdout.flush()
        return record


def load_config(path: str) -> dict[str, Any]:
    with open(path) as fh:
        cfg = {**DEFAULTS, **json.load(fh)}
    for key in ("base", "train_file", "output_dir"):
        if not cfg.get(key):
            raise Refused(f"config {path} has no {key}")
    return cfg


# ---- model -----------------------------------------------------------------------------------


def on_cuda(cfg: dict[str, Any]) -> bool:
    import torch

    return bool(torch.cuda.is_available() and not cfg["use_cpu"])


def load_tokenizer(cfg: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cfg["base"], revision=cfg.get("revision"))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(cfg: dict[str, Any]) -> Any:
    """The base (bf16 on a GPU that has it, 4-bit nf4 for QLoRA, float32 on the CPU) + LoRA."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, set_seed

    cuda = on_cuda(cfg)
    if cfg["qlora"]:
        if not cuda:
            raise Refused("QLoRA needs a CUDA GPU (4-bit bitsandbytes kernels); this run is on "
                          "the CPU: set qlora false, or run on a GPU host")
        try:
            import bitsandbytes  # noqa: F401 - only proves it is installed
        except ImportError as exc:
            raise Refused("QLoRA needs bitsandbytes in the host's python: pip install "
                          f"bitsandbytes (or set qlora false) [{exc}]") from None
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(
            cfg["base"], revision=cfg.get("revision"), quantization_config=quant,
            dtype=torch.bfloat16,
            device_map={"": torch.cuda.current_device()})
        model = prepare_model_for_kbit_training(model)
    else:
        bf16 = cuda and torch.cuda.is_bf16_supported()
        model = AutoModelForCausalLM.from_pretrained(
            cfg["base"], revision=cfg.get("revision"),
            dtype=torch.bfloat16 if bf16 else torch.float32)
    model.config.use_cache = False
    set_seed(int(cfg["seed"]))
    lora = LoraConfig(r=int(cfg["r"]), lora_alpha=int(cfg["alpha"]),
                      lora_dropout=float(cfg["dropout"]),
                      target_modules=list(cfg["target_modules"]), bias="none",
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def training_args(cfg: dict[str, Any], out: str, has_eval: bool, **overrides: Any) -> Any:
    import torch
    from transformers import TrainingArguments

    cuda = on_cuda(cfg)
    bf16 = cuda and torch.cuda.is_bf16_supported()
    early = bool(cfg["early_stopping_patience"]) and has_eval
    save_steps = int(cfg["save_steps"])
    if early and save_steps % int(cfg["eval_steps"]):
        # load_best_model_at_end needs a checkpoint at evaluations: the next multiple
        save_steps = int(cfg["eval_steps"]) * math.ceil(save_steps / int(cfg["eval_steps"]))
    kwargs: dict[str, Any] = {
        "output_dir": out, "per_device_train_batch_size": int(cfg["batch_size"]),
        "per_device_eval_batch_size": int(cfg["batch_size"]),
        "gradient_accumulation_steps": int(cfg["grad_accum"]), "learning_rate": float(cfg["lr"]),
        "num_train_epochs": float(cfg["epochs"]),
        "max_steps": int(cfg["max_steps"]) if cfg["max_steps"] else -1,
        "logging_steps": int(cfg["logging_steps"]),
        "eval_strategy": "steps" if has_eval else "no", "eval_steps": int(cfg["eval_steps"]),
        "save_strategy": "steps", "save_steps": save_steps, "save_total_limit": KEEP_CHECKPOINTS,
        "load_best_model_at_end": early,
        "metric_for_best_model": "eval_loss" if early else None, "greater_is_better": False,
        "report_to": [], "use_cpu": not cuda, "bf16": bf16, "fp16": cuda and not bf16,
        "seed": int(cfg["seed"]), "remove_unused_columns": False, "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding", "dataloader_num_workers": 0,
    }
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


# ---- train -----------------------------------------------------------------------------------


def callbacks(progress: Progress, stop: dict[str, bool], counts: dict[str, Any]) -> list[Any]:
    from transformers import TrainerCallback

    class Report(TrainerCallback):  # type: ignore[misc, valid-type]
        """progress.jsonl lines: start, log, eval, checkpoint."""

        began = 0.0
        step0 = 0
        tokens0 = 0

        def rates(self, state: Any) -> tuple[float | None, float | None]:
            elapsed = max(time.monotonic() - self.began, 1e-9)
            tokens = (state.num_input_tokens_seen - self.tokens0) / elapsed
            done = state.global_step - self.step0
            eta = (state.max_steps - state.global_step) * elapsed / done if done > 0 else None
            return round(tokens, 1), None if eta is None else round(eta, 1)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.began, self.step0 = time.monotonic(), state.global_step
            self.tokens0 = state.num_input_tokens_seen
            counts["began"], counts["tokens0"] = self.began, self.tokens0
            progress.emit("start", max_steps=state.max_steps, resumed_from=counts["resumed_from"],
                          train_rows=counts["train_rows"], eval_rows=counts["eval_rows"])

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            logs = logs or {}
            if "eval_loss" in logs:
                progress.emit("eval", step=state.global_step, eval_loss=logs["eval_loss"])
            elif "loss" in logs:
                tokens_per_s, eta_s = self.rates(state)
                progress.emit("log", step=state.global_step, max_steps=state.max_steps,
                              epoch=logs.get("epoch", state.epoch), loss=logs["loss"],
                              learning_rate=logs.get("learning_rate"),
                              grad_norm=logs.get("grad_norm"), tokens_per_s=tokens_per_s,
                              eta_s=eta_s)

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            progress.emit("checkpoint", step=state.global_step, path=path)

    class StopOnSignal(TrainerCallback):  # type: ignore[misc, valid-type]
        """After SIGTERM: save at the end of the step in flight, then stop."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if stop["requested"]:
                control.should_save = True
                control.should_training_stop = True

    return [Report(), StopOnSignal()]


def adapter_sha(folder: str) -> str:
    from adapter_tools import adapter_sha256  # beside this file, in <workdir>/bin/

    return str(adapter_sha256(folder))


def train(cfg: dict[str, Any], progress: Progress, stop: dict[str, bool]) -> dict[str, Any]:
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer

    out = cfg["output_dir"]
    ckpt_dir = os.path.join(out, "checkpoints")
    os.makedirs(ckpt_dir, exist_ok=True)
    train_rows = read_jsonl(cfg["train_file"])
    eval_rows = read_jsonl(cfg["eval_file"]) if cfg.get("eval_file") and \
        os.path.exists(cfg["eval_file"]) else []
    if not train_rows:
        raise Refused(f"{cfg['train_file']} has no rows to train on")
    tok = load_tokenizer(cfg)
    train_set = encode_rows(train_rows, cfg, tok)
    eval_set = encode_rows(eval_rows, cfg, tok)
    if not train_set:
        raise Refused(f"no row of {cfg['train_file']} has a token to learn within max_seq_len")
    model = load_model(cfg)
    resume = newest_checkpoint(ckpt_dir)
    counts = {"resumed_from": checkpoint_step(resume) if resume else None,
              "train_rows": len(train_set), "eval_rows": len(eval_set)}
    extra = callbacks(progress, stop, counts)
    early = None
    if cfg["early_stopping_patience"] and eval_set:
        early = EarlyStoppingCallback(early_stopping_patience=int(cfg["early_stopping_patience"]))
        extra.append(early)
    trainer = Trainer(model=model, args=training_args(cfg, ckpt_dir, bool(eval_set)),
                      train_dataset=train_set, eval_dataset=eval_set or None,
                      data_collator=make_collator(tok.pad_token_id), processing_class=tok,
                      callbacks=extra)
    trainer.remove_callback(PrinterCallback)  # our lines go to stdout instead of its dicts
    cuda = on_cuda(cfg)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    stop["training"] = True
    trainer.train(resume_from_checkpoint=resume)
    state = trainer.state
    if stop["requested"] and state.global_step < state.max_steps:
        return progress.emit("stopped", step=state.global_step)
    # a SIGTERM from here on is ignored: saving the adapter takes seconds, and a stop now
    # would throw away a finished run
    seconds = time.monotonic() - counts["began"]
    tokens = int(state.num_input_tokens_seen)
    tokens_per_s = round((tokens - counts["tokens0"]) / max(seconds, 1e-9), 1)
    peak = int(torch.cuda.max_memory_allocated()) if cuda else None
    adapter = save_adapter(trainer.model, tok, out)
    sha = adapter_sha(adapter)
    stopped_early = bool(early and early.early_stopping_patience_counter >= early.
                         early_stopping_patience)
    report: dict[str, Any] = {}
    try:
        with open(os.path.join(out, "report.json")) as fh:
            report = json.load(fh)
    except (OSError, ValueError):
        pass
    write_json(os.path.join(out, "result.json"), {
        "sha256": sha, "steps": state.global_step, "max_steps": state.max_steps,
        "stopped_early": stopped_early, "base": cfg["base"],
        "dataset_sha256": report.get("dataset_sha256"), "spec_hash": cfg["spec_hash"],
        "train_rows": len(train_set), "eval_rows": len(eval_set), "tokens": tokens,
        "seconds": round(seconds, 3), "tokens_per_s": tokens_per_s, "peak_gpu_mem_bytes": peak,
        "best_eval_loss": state.best_metric, "resumed_from": counts["resumed_from"],
        "probe_prompt": probe_prompt(train_rows, cfg), "adapter": adapter,
    })
    return progress.emit("done", step=state.global_step, adapter_sha256=sha,
                         stopped_early=stopped_early, seconds=round(seconds, 3),
                         tokens_per_s=tokens_per_s, peak_gpu_mem_bytes=peak)


def run_train(config_path: str) -> int:
    cfg = load_config(config_path)
    os.makedirs(cfg["output_dir"], exist_ok=True)
    progress = Progress(os.path.join(cfg["output_dir"], "progress.jsonl"))
    stop = {"requested": False, "training": False}

    def on_term(signum: int, frame: Any) -> None:
        if stop["requested"]:
            return  # procctl repeats SIGTERM until the process is gone
        stop["requested"] = True
        if not stop["training"]:  # still loading the model: nothing to save yet
            progress.emit("stopped", step=None)
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    try:
        train(cfg, progress, stop)
    except Exception as exc:  # noqa: BLE001 - the console shows this line, the log the traceback
        traceback.print_exc()
        progress.emit("error", message=f"{type(exc).__name__}: {exc}"[:1000])
        return 1
    return 0


# ---- dry-run ---------------------------------------------------------------------------------


def sample_rows(cfg: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The first rows of the train file, or made-up rows in the config's format."""
    if os.path.exists(cfg["train_file"]):
        rows = read_jsonl(cfg["train_file"])[:n]
        if rows:
            return rows
    text = "The operator starts a run and watches the loss go down."
    if cfg["format"] == "prompt-completion":
        return [{cfg["prompt_field"]: "Q: what runs?", cfg["completion_field"]: text}] * n
    if cfg["format"] == "chat":
        return [{cfg["messages_field"]: [{"role": "user", "content": "what runs?"},
                                         {"role": "assistant", "content": text}]}] * n
    return [{cfg["text_field"]: text}] * n


def dry_run(cfg: dict[str, Any], steps: int) -> dict[str, Any]:
    from transformers import PrinterCallback, Trainer

    began = time.monotonic()
    tok = load_tokenizer(cfg)
    rows = encode_rows(sample_rows(cfg, int(cfg["batch_size"]) * steps), cfg, tok)
    if not rows:
        raise Refused("no sample row has a token to learn within max_seq_len")
    model = load_model(cfg)
    trainable, total = model.get_nb_trainable_parameters()
    tmp = tempfile.mkdtemp(prefix="llmops-dry-run-")
    try:
        args = training_args(cfg, tmp, False, max_steps=steps, save_strategy="no",
                             logging_steps=1, include_num_input_tokens_seen="no")
        trainer = Trainer(model=model, args=args, train_dataset=rows,
                          data_collator=make_collator(tok.pad_token_id), processing_class=tok)
        trainer.remove_callback(PrinterCallback)
        result = trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"ok": True, "steps": trainer.state.global_step,
            "loss": losses[-1] if losses else result.training_loss,
            "seconds": round(time.monotonic() - began, 3), "base_params": int(total - trainable)}


def main(argv: list[str]) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if len(argv) >= 3 and argv[1] == "train":
        return run_train(argv[2])
    if len(argv) >= 3 and argv[1] == "dry-run":
        steps = int(argv[argv.index("--steps") + 1]) if "--steps" in argv else 2
        try:
            print(json.dumps(dry_run(load_config(argv[2]), steps)), flush=True)
            return 0
        except Exception as exc:  # noqa: BLE001 - the caller reads the reason from the line
            traceback.print_exc()
            print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}),
                  flush=True)
            return 1
    print(json.dumps({"ok": False, "error": "usage: trainer.py train|dry-run CONFIG_JSON "
                                            "[--steps N]"}), flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
