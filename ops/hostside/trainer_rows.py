"""Runs ON a host, beside trainer.py in <workdir>/bin/: a training file's rows -> token ids and
labels, and the batch collator. Stdlib at import time; torch only inside make_collator.

Formats: text (every token learned), prompt-completion (prompt tokens masked with -100) and
chat (tokenizer.apply_chat_template over the messages; only the assistant turns are learned,
found as character spans by rendering the conversation up to each assistant turn; when a
template does not render prefix-consistently, the tokenizer gives no offsets, or a row has no
assistant turn, the whole rendered chat is learned). Rows are truncated to max_seq_len; an
eos token ends text and completions; a row left with nothing to learn is skipped.
"""

from __future__ import annotations

import json
from typing import Any

IGNORE = -100
"""The label the loss skips (masked prompt tokens and pads)."""


class Refused(Exception):
    """The config asks for something this host cannot do; the message names the fix."""


def read_jsonl(path: str) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise Refused(f"{path} line {number} is not a JSON object")
                rows.append(row)
    return rows


def field(row: dict[str, Any], name: str, what: str) -> Any:
    if name not in row:
        raise Refused(f"a {what} row has no field {name!r} (fields: {sorted(row)[:8]})")
    return row[name]


# ---- rows -> token ids and labels ------------------------------------------------------------


def render_chat(tok: Any, messages: list[dict[str, Any]], prompt: bool = False) -> str:
    return str(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt))


def assistant_spans(tok: Any, messages: list[dict[str, Any]], full: str) -> list[tuple[int, int]]:
    """Character spans of the assistant turns in `full`; [] when they cannot be found."""
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = render_chat(tok, messages[:i], prompt=True) if i else ""
        upto = render_chat(tok, messages[: i + 1])
        if not (full.startswith(upto) and upto.startswith(before)):
            return []
        spans.append((len(before), len(upto)))
    return spans


def chat_example(tok: Any, messages: Any) -> tuple[list[int], list[int]]:
    if not isinstance(messages, list):
        raise Refused("a chat row's messages field is not a list of {role, content}")
    full = render_chat(tok, messages)
    spans = assistant_spans(tok, messages, full)
    try:
        enc = tok(full, add_special_tokens=False, return_offsets_mapping=bool(spans))
    except NotImplementedError:  # slow tokenizers give no offsets: learn the whole chat
        enc, spans = tok(full, add_special_tokens=False), []
    ids = list(enc["input_ids"])
    if not spans:
        return ids, list(ids)
    labels = [t if any(s <= a < e for s, e in spans) else IGNORE
              for t, (a, _b) in zip(ids, enc["offset_mapping"], strict=True)]
    return ids, labels


def encode_rows(rows: list[dict[str, Any]], cfg: dict[str, Any], tok: Any) -> list[dict[str, Any]]:
    """Token ids + labels per row, truncated; rows with nothing left to learn are skipped."""
    fmt, limit, eos = cfg["format"], int(cfg["max_seq_len"]), tok.eos_token_id

    def ended(ids: list[int]) -> list[int]:
        return ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids

    out = []
    for row in rows:
        if fmt == "text":
            ids = ended(list(tok(str(field(row, cfg["text_field"], "text")))["input_ids"]))
            labels = list(ids)
        elif fmt == "prompt-completion":
            prompt = list(tok(str(field(row, cfg["prompt_field"], "prompt")))["input_ids"])
            completion = str(field(row, cfg["completion_field"], "completion"))
            answer = ended(list(tok(completion, add_special_tokens=False)["input_ids"]))
            ids, labels = prompt + answer, [IGNORE] * len(prompt) + answer
        elif fmt == "chat":
            ids, labels = chat_example(tok, field(row, cfg["messages_field"], "chat"))
        else:
            raise Refused(f"unknown format {fmt!r}: text, prompt-completion or chat")
        ids, labels = ids[:limit], labels[:limit]
        if any(label != IGNORE for label in labels):
            out.append({"input_ids": ids, "labels": labels})
    return out


def probe_prompt(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> str | None:
    """The start of the first training row, for the adapter checklist's probe."""
    if not rows:
        return None
    row = rows[0]
    if cfg["format"] == "prompt-completion":
        return str(row.get(cfg["prompt_field"], ""))[:500]
    if cfg["format"] == "chat":
        messages = row.get(cfg["messages_field"]) or []
        users = [m.get("content") for m in messages if isinstance(m, dict) and
                 m.get("role") == "user"]
        return str(users[0])[:500] if users else None
    text = str(row.get(cfg["text_field"], ""))
    cut = text[:100].rsplit(" ", 1)[0] if len(text) > 100 else text[: max(1, len(text) // 2)]
    return cut


def make_collator(pad_id: int) -> Any:
    """Right-pad to the longest row of the batch; pads are masked and never learned."""
    import torch

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
        ids, mask, labels = [], [], []
        for b in batch:
            pad = width - len(b["input_ids"])
            ids.append(b["input_ids"] + [pad_id] * pad)
            mask.append([1] * len(b["input_ids"]) + [0] * pad)
            labels.append(b["labels"] + [IGNORE] * pad)
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
                "labels": torch.tensor(labels)}

    return collate
