#!/usr/bin/env bash
# GPU check of ops/hostside/trainer.py: LoRA (bf16) then QLoRA (4-bit nf4, when bitsandbytes
# imports) for 60 steps each on a ~100M-parameter random Llama made here (no downloads: the
# tinymodel.py recipe, bigger), run as a host runs the trainer (copied into a bin/ folder).
# Prints, for each, tokens/s and peak GPU memory from result.json, plus the GPU's name and
# memory; writes everything to $OUT/finetune_gpu.json when $OUT is set. Under 4 minutes on
# an H100/H200.
#
#   PY=/path/to/python tests/gpu/finetune_gpu.sh     (a python with torch, transformers, peft)
#   SIZE=tiny tests/gpu/finetune_gpu.sh               (CPU smoke test: tiny model, use_cpu,
#                                                     10 steps; STEPS=N for another count)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PY:-$( [ -x "$REPO/.venv/bin/python" ] && echo "$REPO/.venv/bin/python" || echo python3)}
SIZE=${SIZE:-full}
if [ "$SIZE" = tiny ]; then
    STEPS=${STEPS:-10}
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # a shared CPU box: no spinning thread pools
else
    STEPS=${STEPS:-60}
fi
WORK=$(mktemp -d -t llmops-finetune-gpu-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin"
cp "$REPO"/ops/hostside/{trainer,trainer_rows,trainer_state,adapter_tools}.py "$WORK/bin/"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
began=$(date +%s)

echo "== model and rows ($SIZE) with $PY"
"$PY" - "$WORK" "$SIZE" "$STEPS" "$REPO/ops/hostside" <<'EOF' || exit 1
import json, random, sys
from pathlib import Path

work, size, steps, hostside = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, hostside)
import tinymodel  # the tests' recipe: its corpus and chat template
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

full = size != "tiny"
out = work / "model"
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator(tinymodel.CORPUS * 4, trainer=trainers.BpeTrainer(
    vocab_size=512, special_tokens=["<unk>", "<s>", "</s>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                               eos_token="</s>")
fast.chat_template = tinymodel.CHAT_TEMPLATE
fast.save_pretrained(str(out))
torch.manual_seed(0)
shape = dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
             num_attention_heads=16, num_key_value_heads=16) if full else dict(
             hidden_size=256, intermediate_size=512, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2)
model = LlamaForCausalLM(LlamaConfig(
    vocab_size=512, head_dim=64, max_position_embeddings=1024, bos_token_id=fast.bos_token_id,
    eos_token_id=fast.eos_token_id, tie_word_embeddings=False, **shape))
params = sum(p.numel() for p in model.parameters())
(model.to(torch.bfloat16) if full else model).save_pretrained(str(out))

rng = random.Random(0)
def row():
    return {"text": " ".join(rng.choice(tinymodel.CORPUS[:7]) for _ in range(rng.randint(3, 9)))}
data = work / "data"
data.mkdir()
for name, n in (("train", 2000 if full else 200), ("eval", 64 if full else 16)):
    (data / f"{name}.jsonl").write_text("".join(json.dumps(row()) + "\n" for _ in range(n)))
for mode in ("lora", "qlora"):
    run = work / mode
    run.mkdir()
    (run / "config.json").write_text(json.dumps({
        "base": str(out), "train_file": str(data / "train.jsonl"),
        "eval_file": str(data / "eval.jsonl"), "format": "text", "text_field": "text",
        "r": 16, "alpha": 32, "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"],
        "qlora": mode == "qlora", "lr": 2e-4, "epochs": 1.0, "max_steps": steps,
        "batch_size": 16 if full else 4, "grad_accum": 1, "max_seq_len": 256 if full else 64,
        "eval_steps": steps // 2, "save_steps": steps // 2, "logging_steps": 10,
        "early_stopping_patience": None, "seed": 0, "output_dir": str(run),
        "use_cpu": not full, "spec_hash": f"gpu-check-{mode}"}))
print(f"model: {params / 1e6:.1f}M parameters, vocab 512; rows: 2000 train" if full else
      f"model: {params / 1e6:.2f}M parameters (tiny); rows: 200 train")
EOF

run_mode() {  # $1 = lora | qlora
    local t0
    t0=$(date +%s%N)
    timeout 170 "$PY" "$WORK/bin/trainer.py" train "$WORK/$1/config.json" \
        >"$WORK/$1/stdout" 2>"$WORK/$1/stderr"
    echo $? >"$WORK/$1/rc"
    echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$WORK/$1/wall_ms"
}

echo "== LoRA: $STEPS steps"
run_mode lora
if "$PY" -c "import bitsandbytes" 2>/dev/null; then
    echo "== QLoRA: $STEPS steps"
    run_mode qlora
else
    echo "== QLoRA skipped: bitsandbytes does not import in $PY"
    echo "bitsandbytes does not import in $PY" >"$WORK/qlora/skipped"
fi
nvidia-smi --query-gpu=name,memory.total --format=csv >"$WORK/gpu" 2>&1 || echo "no nvidia-smi" >"$WORK/gpu"

"$PY" - "$WORK" "$SIZE" "$(( $(date +%s) - began ))" "${OUT:-}" <<'EOF'
import json, sys
from importlib import metadata
from pathlib import Path

work, size, seconds, out = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None

def mode(name):
    run = work / name
    if (run / "skipped").exists():
        return {"skipped": (run / "skipped").read_text().strip()}
    lines = [json.loads(l) for l in (run / "progress.jsonl").read_text().splitlines()
             if l.startswith("{")] if (run / "progress.jsonl").exists() else []
    found = {"rc": int((run / "rc").read_text()), "wall_s": int((run / "wall_ms").read_text()) / 1000}
    losses = [l["loss"] for l in lines if l["event"] == "log"]
    evals = [l["eval_loss"] for l in lines if l["event"] == "eval"]
    if (run / "result.json").exists():
        result = json.loads((run / "result.json").read_text())
        found.update({k: result[k] for k in ("steps", "tokens", "seconds", "tokens_per_s",
                                             "peak_gpu_mem_bytes", "sha256")})
    found.update(first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
                 eval_losses=evals)
    errors = [l["message"] for l in lines if l["event"] == "error"]
    if errors or found["rc"] != 0:
        found["error"] = errors[-1] if errors else (run / "stderr").read_text()[-1500:]
    return found

report = {"size": size, "seconds": seconds, "gpu": (work / "gpu").read_text().strip(),
          "versions": {n: version(n) for n in ("torch", "transformers", "peft", "accelerate",
                                               "bitsandbytes")},
          "lora": mode("lora"), "qlora": mode("qlora")}
print("== results")
print(report["gpu"])
for name in ("lora", "qlora"):
    r = report[name]
    if "skipped" in r:
        print(f"{name}: skipped ({r['skipped']})")
    elif "error" in r:
        print(f"{name}: FAILED rc={r['rc']}: {r['error'][-600:]}")
    else:
        peak = r["peak_gpu_mem_bytes"]
        print(f"{name}: {r['steps']} steps, {r['tokens_per_s']:.0f} tokens/s, peak GPU memory "
              f"{'-' if peak is None else f'{peak / 2**30:.2f} GiB'}, loss {r['first_loss']:.3f}"
              f" -> {r['last_loss']:.3f}, {r['seconds']:.1f}s training, {r['wall_s']:.1f}s wall")
print(f"total {seconds}s")
if out:
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "finetune_gpu.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out}/finetune_gpu.json")
failed = [n for n in ("lora", "qlora") if "error" in report[n]]
sys.exit(1 if failed else 0)
EOF
