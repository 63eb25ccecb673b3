"""Make a tiny Llama model on a host, so tests and the demo never download anything.

Run on the host as `python -c <this source> OUTDIR [SEED]`; prints OUTDIR when done.
Same seed, same weights: a tiny Llama (vocab 512, hidden 256, 2 layers, 4 heads,
2 kv heads, head_dim 64 — the CPU attention kernel refuses smaller heads).
"""

from __future__ import annotations

import sys
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<s>' + message['role'] + ': ' + message['content'] + '</s>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<s>assistant: ' }}{% endif %}"
)

CORPUS = [
    "The operator starts a server and watches the tokens flow.",
    "A rollback brings the lab back to the state it was in before.",
    "Hello world, this is a tiny model made for tests.",
    "vLLM serves the model through an OpenAI compatible API.",
    "Every action is committed to git and journalled before it runs.",
    "The quick brown fox jumps over the lazy dog.",
    "Blue and green servers take turns being the live one.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'-",
]


def make_tiny_model(outdir: Path, seed: int = 0) -> Path:
    """Train the tokenizer, build the model from a fixed seed and save both."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    outdir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(outdir))

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=None,
        tie_word_embeddings=False,
        dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(outdir))
    return outdir


if __name__ == "__main__":
    target = Path(sys.argv[1]).expanduser()
    make_tiny_model(target, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(target)
