"""ops/hostside/trainer.py and adapter_tools.py, run as a host runs them: copied into a bin/
folder and started with the venv's python on the tiny model (CPU, a few seconds each)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from finetune_fixtures import (
    host_bin,
    read_lines,
    text_rows,
    tiny_model_dir,
    trainer_config,
    wait_for_line,
    write_rows,
)

from llmops.ops.hostside import trainer as trainer_script
from llmops.ops.hostside import trainer_rows, trainer_state


@pytest.fixture(scope="session")
def tiny() -> Path:
    return tiny_model_dir()


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    return host_bin(tmp_path)


def run(bin_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(bin_dir / args[0]), *args[1:]],
                          capture_output=True, text=True, timeout=timeout)


def start(bin_dir: Path, config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(bin_dir / "trainer.py"), "train", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def last_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-2000:]
    return dict(json.loads(lines[-1]))


def events(out: Path, event: str) -> list[dict[str, Any]]:
    return [line for line in read_lines(out / "progress.jsonl") if line["event"] == event]


def test_run_to_completion_sha_and_merge(tiny: Path, bin_dir: Path, tmp_path: Path) -> None:
    """60 rows, eval loss goes down, adapter + result.json; adapter_tools agrees on the sha
    and merges the adapter into a plain model whose adapted weights moved."""
    out = tmp_path / "cfg"
    config = trainer_config(out, write_rows(out / "data/train.jsonl", text_rows(60)),
                            write_rows(out / "data/eval.jsonl", text_rows(8)))
    (out / "report.json").write_text(json.dumps({"dataset_sha256": "d" * 64}))
    done = run(bin_dir, "trainer.py", "train", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    final = last_json(done)
    assert final["event"] == "done" and final["step"] == 20 and not final["stopped_early"]
    assert final["tokens_per_s"] > 0 and final["peak_gpu_mem_bytes"] is None
    start_line = events(out, "start")[0]
    assert start_line["max_steps"] == 20 and start_line["resumed_from"] is None
    assert (start_line["train_rows"], start_line["eval_rows"]) == (60, 8)
    evals = events(out, "eval")
    assert len(evals) == 4 and evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    logs = events(out, "log")
    assert [line["step"] for line in logs] == [5, 10, 15, 20]
    assert all(line["tokens_per_s"] > 0 and line["eta_s"] >= 0 for line in logs)
    assert [c["step"] for c in events(out, "checkpoint")] == [5, 10, 15, 20]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "checkpoint-10", "checkpoint-15", "checkpoint-20"]  # save_total_limit 3
    result = json.loads((out / "result.json").read_text())
    assert result["sha256"] == final["adapter_sha256"] and result["steps"] == 20
    assert result["dataset_sha256"] == "d" * 64 and result["spec_hash"] == "test"
    assert result["probe_prompt"] and "The operator".startswith(result["probe_prompt"][:12])
    assert (out / "adapter/adapter_model.safetensors").is_file()

    sha = last_json(run(bin_dir, "adapter_tools.py", "sha", str(out / "adapter")))
    assert sha == {"ok": True, "sha256": result["sha256"]}
    (out / "adapter/README.md").write_text("edited")  # not part of what the adapter does
    assert last_json(run(bin_dir, "adapter_tools.py", "sha", str(out / "adapter")))[
        "sha256"] == result["sha256"]

    merged = tmp_path / "merged"
    answer = last_json(run(bin_dir, "adapter_tools.py", "merge", str(tiny),
                           str(out / "adapter"), str(merged)))
    assert answer["ok"], answer
    from safetensors.torch import load_file

    before, after = load_file(tiny / "model.safetensors"), load_file(merged / "model.safetensors")
    q, k = "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"
    assert not (before[q] == after[q]).all() and (before[k] == after[k]).all()
    assert (merged / "tokenizer.json").is_file()
    again = last_json(run(bin_dir, "adapter_tools.py", "merge", str(tiny),
                          str(out / "adapter"), str(merged)))
    assert not again["ok"] and "never overwritten" in again["error"]


def test_early_stopping(tiny: Path, bin_dir: Path, tmp_path: Path) -> None:
    """Validation rows unlike the training rows stop improving: stopped early, < max steps."""
    out = tmp_path / "cfg"
    unlike = [{"text": "zq xv 0917 QWXZ kjh ;;; 5 5 5 !? " * 3} for _ in range(8)]
    config = trainer_config(out, write_rows(out / "data/train.jsonl", text_rows(60)),
                            write_rows(out / "data/eval.jsonl", unlike), lr=5e-2,
                            max_steps=60, eval_steps=2, save_steps=2, logging_steps=2,
                            early_stopping_patience=1)
    done = run(bin_dir, "trainer.py", "train", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    final = last_json(done)
    assert final["event"] == "done" and final["stopped_early"] is True
    assert final["step"] < 60
    evals = [e["eval_loss"] for e in events(out, "eval")]
    assert evals[-1] >= min(evals)
    result = json.loads((out / "result.json").read_text())
    assert result["best_eval_loss"] == pytest.approx(min(evals))


def test_sigkill_then_resume_ends_at_max_steps(tiny: Path, bin_dir: Path,
                                               tmp_path: Path) -> None:
    """Killed after its first checkpoint, started again with the same config: resumes from
    the newest complete checkpoint (a half-written one is removed) and ends at max_steps."""
    out = tmp_path / "cfg"
    config = trainer_config(out, write_rows(out / "data/train.jsonl", text_rows(60)),
                            max_steps=40, save_steps=5, logging_steps=5)
    proc = start(bin_dir, config)
    first = wait_for_line(out / "progress.jsonl", "checkpoint", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not events(out, "done"), "the run finished before the kill: make it longer"
    kept = max(int(p.name.split("-")[1]) for p in (out / "checkpoints").iterdir())
    assert kept >= first["step"]
    partial = out / "checkpoints" / f"checkpoint-{kept + 1}"
    partial.mkdir()
    (partial / "trainer_state.json").write_text('{"global_st')  # killed mid-save

    done = run(bin_dir, "trainer.py", "train", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    starts = events(out, "start")
    assert len(starts) == 2 and starts[1]["resumed_from"] == kept
    assert starts[1]["max_steps"] == 40
    final = last_json(done)
    assert final["event"] == "done" and final["step"] == 40
    assert json.loads((out / "result.json").read_text())["resumed_from"] == kept
    logged = [line["step"] for line in events(out, "log")]
    assert logged[-1] == 40 and len(set(logged)) == 8  # every step 5..40 logged once at least


def test_sigterm_saves_a_checkpoint_and_says_stopped(tiny: Path, bin_dir: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    config = trainer_config(out, write_rows(out / "data/train.jsonl", text_rows(60)),
                            max_steps=5000, save_steps=1000, logging_steps=1)
    proc = start(bin_dir, config)
    wait_for_line(out / "progress.jsonl", "log", proc)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    stopped = events(out, "stopped")
    assert len(stopped) == 1 and 1 <= stopped[0]["step"] < 5000
    step = stopped[0]["step"]
    assert [c["step"] for c in events(out, "checkpoint")] == [step]
    assert trainer_state.complete(str(out / "checkpoints" / f"checkpoint-{step}"))
    assert not events(out, "done") and not (out / "adapter").exists()


def test_dry_run_writes_nothing(tiny: Path, bin_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    config = trainer_config(out, out / "data/train.jsonl")  # not screened yet: made-up rows
    before = sorted(p.name for p in out.rglob("*"))
    answer = last_json(run(bin_dir, "trainer.py", "dry-run", str(config), "--steps", "3"))
    assert answer["ok"] and answer["steps"] == 3 and answer["loss"] > 0
    assert answer["base_params"] > 100_000 and answer["seconds"] > 0
    assert sorted(p.name for p in out.rglob("*")) == before == ["config.json"]


def test_qlora_refused_on_the_cpu(tiny: Path, bin_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    config = trainer_config(out, write_rows(out / "data/train.jsonl", text_rows(8)), qlora=True)
    done = run(bin_dir, "trainer.py", "train", str(config))
    assert done.returncode == 1
    error = last_json(done)
    assert error["event"] == "error" and "QLoRA needs a CUDA GPU" in error["message"]
    assert events(out, "error") == [error]


def chat_rows(n: int) -> list[dict[str, Any]]:
    return [{"messages": [{"role": "system", "content": "You run the lab."},
                          {"role": "user", "content": f"What happens on rollback {i}?"},
                          {"role": "assistant", "content": "The lab goes back to before."}]}
            for i in range(n)]


def test_chat_rows_train_and_learn_the_assistant_turns(tiny: Path, bin_dir: Path,
                                                       tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    cfg = {**trainer_script.DEFAULTS, "format": "chat", "messages_field": "messages",
           "max_seq_len": 256}
    [example] = trainer_rows.encode_rows(chat_rows(1), cfg, tok)
    learned = tok.decode([t for t in example["labels"] if t != trainer_rows.IGNORE])
    assert learned == "The lab goes back to before.</s>\n"
    assert len(example["labels"]) == len(example["input_ids"])

    cfg = {**cfg, "format": "prompt-completion", "prompt_field": "p", "completion_field": "c"}
    [pc] = trainer_rows.encode_rows([{"p": "Question: why?", "c": " Because."}], cfg, tok)
    masked = pc["labels"].count(trainer_rows.IGNORE)
    assert masked == len(tok("Question: why?")["input_ids"])
    assert pc["labels"][-1] == tok.eos_token_id

    out = tmp_path / "cfg"
    config = trainer_config(out, write_rows(out / "data/train.jsonl", chat_rows(24)),
                            format="chat", messages_field="messages", text_field=None,
                            max_steps=10, save_steps=10, eval_steps=10)
    done = run(bin_dir, "trainer.py", "train", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    assert last_json(done)["step"] == 10
    losses = [line["loss"] for line in events(out, "log")]
    assert losses[-1] < losses[0]
    result = json.loads((out / "result.json").read_text())
    assert result["probe_prompt"] == "What happens on rollback 0?"
    assert os.path.isfile(out / "adapter" / "chat_template.jinja")
