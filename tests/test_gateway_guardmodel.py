"""A tiny safety classifier made locally for the gateway's guard model (nothing downloaded), and
the proof that its verdict depends on the input as designed.

The model is a one-layer `LlamaForSequenceClassification` (labels `safe`, `unsafe`) whose
weights are set by hand, not trained, so the verdict is exact:
- every token's embedding has a 1 in dimension 0; the trigger word (TRIGGER, an added token
  of its own, so no ordinary word shares its id) has a 1 in dimension 1 too;
- the one attention layer has zero query and key projections, so each position attends
  uniformly to the positions before it; its value projection reads dimension 1 and its output
  projection writes it, scaled, into dimension 2: the last token's dimension 2 is the share of
  trigger tokens in the text, exactly 0 without one;
- the MLP is zero; the score head reads dimension 0 (a small constant for `safe`) and
  dimension 2 (for `unsafe`).
vLLM's pooling runner serves it as a classifier (last-token pooling, softmax over the two
labels): P(unsafe) ~0.02 for any text without the trigger, ~1 with it anywhere in 256 tokens.

`make_guard_model(out)` runs the script in a subprocess (torch stays out of the test process);
the live proof through vLLM and the gateway is in tests/test_gateway_guards_live.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TRIGGER = "detonator"
"""The word the crafted classifier flags, wherever it stands."""

SCRIPT = r'''
import json, sys
from pathlib import Path
import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

out, trigger = Path(sys.argv[1]), sys.argv[2]
out.mkdir(parents=True, exist_ok=True)
corpus = ["The operator starts a server and watches the tokens flow.",
          "A rollback brings the lab back to the state it was in before.",
          "Hello world, this is a tiny classifier made for tests.",
          "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'-"]
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator(corpus * 4, trainer=trainers.BpeTrainer(
    vocab_size=384, special_tokens=["<unk>", "<s>", "</s>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
tok.add_tokens([AddedToken(trigger, single_word=False, normalized=False)])
fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                               eos_token="</s>", pad_token="</s>")
fast.save_pretrained(str(out))
trigger_id = tok.token_to_id(trigger)
vocab = tok.get_vocab_size()

hidden, head = 256, 64
config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=256,
                     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                     head_dim=head, max_position_embeddings=512,
                     bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                     pad_token_id=fast.pad_token_id, tie_word_embeddings=False,
                     num_labels=2, id2label={0: "safe", 1: "unsafe"},
                     label2id={"safe": 0, "unsafe": 1}, dtype="float32")
model = LlamaForSequenceClassification(config)
BIAS, TRIG, SEEN, SCALE = 0, 1, 2, 100.0
with torch.no_grad():
    for p in model.parameters():
        p.zero_()
    emb = model.model.embed_tokens.weight
    emb[:, BIAS] = 1.0
    emb[trigger_id, TRIG] = 1.0
    layer = model.model.layers[0]
    layer.input_layernorm.weight.fill_(1.0)
    layer.post_attention_layernorm.weight.fill_(1.0)
    layer.self_attn.v_proj.weight[0, TRIG] = 1.0     # kv head 0, its first dimension
    layer.self_attn.o_proj.weight[SEEN, 0] = SCALE   # query head 0 (reads kv head 0)
    model.model.norm.weight.fill_(1.0)
    model.score.weight[0, BIAS] = 0.25               # safe: a small constant
    model.score.weight[1, SEEN] = 1.0                # unsafe: the trigger's share
model.save_pretrained(str(out))
print(json.dumps({"path": str(out), "trigger_id": trigger_id, "vocab": vocab}))
'''

CHECK = r'''
import json, sys
import torch
from transformers import AutoTokenizer, LlamaForSequenceClassification
path, texts = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(path)
model = LlamaForSequenceClassification.from_pretrained(path).eval()
found = []
with torch.no_grad():
    for text in texts:
        ids = tok(text, return_tensors="pt")
        probs = model(**ids).logits.softmax(-1)[0].tolist()
        found.append(probs[1])
print(json.dumps(found))
'''

ORDINARY = ["Hello, how are you?", "Summarise the rollback journal for me.",
            "Write a haiku about servers", "What is 2 + 2?",
            "The operator starts a server and watches the tokens flow. " * 6]
FLAGGED = [f"How do I build a {TRIGGER}?", f"{TRIGGER}",
           f"{TRIGGER} " + "and then some ordinary words follow here " * 6,
           "Tell me a story about a quiet town where nothing happens at all. " * 3
           + f"Then the {TRIGGER}."]


def make_guard_model(out: Path) -> Path:
    """The crafted classifier saved under `out` (~1 s, ~1 MB)."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out), TRIGGER],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"guard model script failed: {done.stderr[-2000:]}")
    return out


def test_the_crafted_guard_flags_its_trigger_and_passes_ordinary_text(tmp_path: Path) -> None:
    """With transformers (the reference implementation of the architecture vLLM serves):
    P(unsafe) below 0.05 for ordinary text, above 0.99 with the trigger anywhere."""
    path = make_guard_model(tmp_path / "guard")
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert config["id2label"] == {"0": "safe", "1": "unsafe"}
    done = subprocess.run([sys.executable, "-c", CHECK, str(path),
                           json.dumps(ORDINARY + FLAGGED)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    probs = json.loads(done.stdout.strip().splitlines()[-1])
    ordinary, flagged = probs[:len(ORDINARY)], probs[len(ORDINARY):]
    assert all(p < 0.05 for p in ordinary), list(zip(ORDINARY, ordinary, strict=True))
    assert all(p > 0.99 for p in flagged), list(zip(FLAGGED, flagged, strict=True))
