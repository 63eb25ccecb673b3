"""Runs ON a host: check a training file against the host's data dirs, then screen it.

    python dataset.py inspect REQUEST     python dataset.py screen REQUEST

REQUEST is the JSON text, a path to a JSON file, or absent / "-" for stdin. The last stdout
line is one JSON object. A refusal is an answer, not a crash: {"ok": false, "rule", "message"}
with exit 0; a crash prints {"ok": false, "rule": "error", ...} and exits 1.

inspect: the data-dir rule is decided here, on the host, with realpath: `..` is refused
(dotdot); a file whose realpath is under no data dir's realpath is refused as
outside-data-dirs, or as symlink-escape when its path is under a data dir but a symlink
leads out; a missing or unreadable file as unreadable. The rows are read (.jsonl: a JSON
object a line, .csv: DictReader, .parquet: pyarrow or pandas, imported only then); a field
the format needs that is absent from any of the first 20 rows is refused (missing-field),
messages that are not a list of {role, content} there too (bad-format). Later rows that lack
a field are listed in fields_missing and dropped by screen (counted as "invalid"). Tokens are
counted with the base's tokenizer (local files only, HF_HUB_OFFLINE) when transformers and
the model are here, else estimated from whitespace words (tokens_method says which).

screen: every string value of every row (inside messages too) is scanned by the rules in
RULES (datascreen.py beside this file: the rules, the scanner, redaction); per rule the
request's choice: drop (the row never reaches data/train.jsonl), keep (counted only) or
redact (each match becomes [REDACTED:<rule>]). A row hit by a drop rule is dropped whatever
else hit it. Report examples are snippets with every match redacted, never the secret itself.
Eval rows: the screened validation file, or the last eval_split share of the screened rows
after a seeded shuffle. Stdlib only, but detect-secrets for the secret rule (without it, the
regexes alone, and the report says so).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import sys
from collections.abc import Callable
from typing import Any

SUFFIXES = (".jsonl", ".csv", ".parquet")
FIRST_ROWS = 20
WORDS_TO_TOKENS = 4 / 3

class Refusal(Exception):
    """An answer {"ok": false, "rule", "message"}: the request breaks a rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule, self.message = rule, message


# ---- paths and rows --------------------------------------------------------------------------


def under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def check_path(path: str, data_dirs: list[str]) -> str:
    """The file's realpath, once it passes the data-dir rule on this host."""
    if not path or ".." in path.replace("\\", "/").split("/"):
        raise Refusal("dotdot", f"{path!r}: paths with '..' are refused")
    plain = os.path.abspath(os.path.expanduser(path))
    real = os.path.realpath(plain)
    dirs = [os.path.abspath(os.path.expanduser(d)) for d in data_dirs
            if d and ".." not in d.split("/")]
    if not any(under(real, os.path.realpath(d)) for d in dirs):
        if any(under(plain, d) for d in dirs):
            raise Refusal("symlink-escape", f"{path} leads out of the data dirs (to {real})")
        raise Refusal("outside-data-dirs", f"{path} is under none of the host's data dirs "
                                           f"({', '.join(data_dirs)}): move it there or add "
                                           f"its folder to the host's data_dirs")
    if not os.path.isfile(real):
        raise Refusal("unreadable", f"{path}: no such file")
    if not os.access(real, os.R_OK):
        raise Refusal("unreadable", f"{path}: not readable by this user")
    if not path.endswith(SUFFIXES):
        raise Refusal("bad-format", f"{path}: not a {', '.join(SUFFIXES)} file")
    return real


def plain(value: Any) -> Any:
    """numpy arrays and the like (pandas' parquet rows) as plain lists and dicts."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def read_rows(path: str, real: str) -> list[dict[str, Any]]:
    try:
        if path.endswith(".jsonl"):
            rows = []
            with open(real, encoding="utf-8") as fh:
                for number, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError as exc:
                        raise Refusal("bad-format", f"{path} line {number}: {exc}") from None
                    if not isinstance(row, dict):
                        raise Refusal("bad-format", f"{path} line {number}: not a JSON object")
                    rows.append(row)
            return rows
        if path.endswith(".csv"):
            with open(real, encoding="utf-8", newline="") as fh:
                return [dict(row) for row in csv.DictReader(fh)]
        return read_parquet(path, real)
    except UnicodeDecodeError as exc:
        raise Refusal("bad-format", f"{path}: not UTF-8 text ({exc})") from None
    except csv.Error as exc:
        raise Refusal("bad-format", f"{path}: {exc}") from None
    except OSError as exc:
        raise Refusal("unreadable", f"{path}: {exc}") from None


def read_parquet(path: str, real: str) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq

        return [plain(r) for r in pq.read_table(real).to_pylist()]
    except ImportError:
        pass
    try:
        import pandas as pd
    except ImportError:
        raise Refusal("unreadable", f"{path}: reading .parquet needs pyarrow (or pandas) in "
                                    "the host's python: pip install pyarrow") from None
    return [plain(r) for r in pd.read_parquet(real).to_dict("records")]


def needed_fields(req: dict[str, Any]) -> list[str]:
    fmt = req.get("format") or "text"
    if fmt == "chat":
        return [req.get("messages_field") or "messages"]
    if fmt == "prompt-completion":
        return [req.get("prompt_field") or "prompt", req.get("completion_field") or "completion"]
    return [req.get("text_field") or "text"]


def row_problem(row: dict[str, Any], req: dict[str, Any]) -> tuple[str, str] | None:
    """(rule, what) when the row cannot be trained on; csv messages are parsed from JSON."""
    for name in needed_fields(req):
        if row.get(name) is None:
            return "missing-field", f"no field {name!r}"
    if (req.get("format") or "text") != "chat":
        for name in needed_fields(req):
            if not isinstance(row[name], str):
                return "bad-format", f"field {name!r} is a {type(row[name]).__name__}, not text"
        return None
    name = needed_fields(req)[0]
    messages = row[name]
    if isinstance(messages, str):
        try:
            messages = row[name] = json.loads(messages)
        except ValueError:
            return "bad-format", f"{name!r} is text, not a list of messages"
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages):
        return "bad-format", f"{name!r} is not a list of {{role, content}} messages"
    return None


def load(path: str, req: dict[str, Any]) -> tuple[str, list[dict[str, Any]], dict[int, str]]:
    """realpath, rows, and the rows past the first 20 that are invalid: {number: why}."""
    real = check_path(path, list(req.get("data_dirs") or []))
    rows = read_rows(path, real)
    if not rows:
        raise Refusal("bad-format", f"{path} has no rows")
    invalid = {}
    for number, row in enumerate(rows, 1):
        problem = row_problem(row, req)
        if problem and number <= FIRST_ROWS:
            raise Refusal(problem[0], f"{path} row {number}: {problem[1]}")
        if problem:
            invalid[number] = problem[1]
    return real, rows, invalid


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- tokens ----------------------------------------------------------------------------------


def learned_text(row: dict[str, Any], req: dict[str, Any], render: Callable[[Any], str]) -> str:
    fields = needed_fields(req)
    if (req.get("format") or "text") == "chat":
        return render(row[fields[0]])
    return " ".join(str(row[f]) for f in fields)


def tokenizer_json(base: str, revision: str | None = None) -> str | None:
    """The base's tokenizer.json on this host (its folder, or the HF cache at the revision the
    run pins), if there is one."""
    if base.startswith(("/", "~")):
        found: Any = os.path.join(os.path.expanduser(base), "tokenizer.json")
    else:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        found = try_to_load_from_cache(base, "tokenizer.json", revision=revision)
    return found if isinstance(found, str) and os.path.isfile(found) else None


def count_tokens(rows: list[dict[str, Any]], req: dict[str, Any]) -> tuple[int, str]:
    """(tokens, method): the base's tokenizer when it is here (the `tokenizers` library alone
    for text, quick; transformers for chat templates), else a word-count estimate."""
    base, note = req.get("base"), "no base given"
    if base:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            revision = req.get("revision")
            path = tokenizer_json(str(base), revision)
            if path and (req.get("format") or "text") != "chat":
                from tokenizers import Tokenizer

                texts = [learned_text(r, req, str) for r in rows]
                return sum(len(e.ids) for e in Tokenizer.from_file(path).encode_batch(
                    texts)), "tokenizer"
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(base, revision=revision, local_files_only=True)
            texts = [learned_text(r, req, lambda m: str(tok.apply_chat_template(
                m, tokenize=False))) for r in rows]
            ids = tok(texts, add_special_tokens=True)["input_ids"]
            return sum(len(i) for i in ids), "tokenizer"
        except Exception as exc:  # noqa: BLE001 - no transformers, no local files: estimate
            note = f"{type(exc).__name__}: {exc}"[:200]

    def render(messages: list[dict[str, Any]]) -> str:
        return " ".join(f"{m['role']}: {m['content']}" for m in messages)

    words = sum(len(learned_text(r, req, render).split()) for r in rows)
    return round(words * WORDS_TO_TOKENS), f"estimate (whitespace words x 1.33; {note})"


def inspect(req: dict[str, Any]) -> dict[str, Any]:
    path = str(req.get("path") or "")
    real, rows, invalid = load(path, req)
    valid = [r for n, r in enumerate(rows, 1) if n not in invalid]
    tokens, method = count_tokens(valid, req)
    missing = sorted({f for n in invalid for f in needed_fields(req)
                      if rows[n - 1].get(f) is None})
    return {"ok": True, "realpath": real, "rows": len(rows), "fields_missing": missing,
            "invalid_rows": len(invalid), "tokens": tokens, "tokens_method": method,
            "sha256": file_sha256(real), "suffix": os.path.splitext(path)[1]}


def write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def screen(req: dict[str, Any]) -> dict[str, Any]:
    # beside this file in <workdir>/bin/, where screen runs (inspect is also sent alone as
    # `python -c`, so the screening parts are imported here, not at the top)
    from datascreen import RULES, Scanner, screen_rows
    choices = {rule: "drop" for rule in RULES}
    choices.update(req.get("screening") or {})
    bad = {r: c for r, c in choices.items() if r not in RULES or c not in ("drop", "keep",
                                                                           "redact")}
    if bad:
        raise Refusal("bad-request", f"screening choices {bad}: rules {', '.join(RULES)}; "
                                     "choices drop, keep, redact")
    out_dir = os.path.abspath(os.path.expanduser(str(req.get("out_dir") or "")))
    if not req.get("out_dir"):
        raise Refusal("bad-request", "screen needs out_dir")
    path = str(req.get("path") or "")
    real, rows, invalid = load(path, req)
    validation = req.get("validation")
    v_real, v_rows, v_invalid = load(str(validation), req) if validation else (None, [], {})
    report: dict[str, Any] = {
        "ok": True, "rows_in": len(rows) + len(v_rows),
        "dataset_sha256": file_sha256(real),
        "validation_sha256": file_sha256(v_real) if v_real else None,
        "rules": {r: {"rows": 0, "action": choices[r], "examples": []} for r in RULES},
        "invalid": {"rows": 0, "action": "drop", "examples": []},
    }
    with Scanner() as scanner:
        if scanner.note:
            report["rules"]["secret"]["note"] = scanner.note
        train = screen_rows(rows, invalid, "dataset", choices, scanner, report)
        evals = screen_rows(v_rows, v_invalid, "validation", choices, scanner, report)
    if not validation:
        order = list(range(len(train)))
        random.Random(int(req.get("seed") or 0)).shuffle(order)
        share = float(req.get("eval_split") or 0.0)
        n_eval = round(len(train) * share)
        if share > 0 and n_eval == 0 and len(train) >= 2:
            n_eval = 1
        held = set(order[len(order) - n_eval:])  # kept in file order, both of them
        train, evals = ([r for i, r in enumerate(train) if i not in held],
                        [r for i, r in enumerate(train) if i in held])
    if not train:
        raise Refusal("empty", f"no row of {path} is left after screening")
    os.makedirs(os.path.join(out_dir, "data"), exist_ok=True)
    write_jsonl(os.path.join(out_dir, "data", "train.jsonl"), train)
    write_jsonl(os.path.join(out_dir, "data", "eval.jsonl"), evals)
    report.update(rows_out=len(train) + len(evals), train_rows=len(train), eval_rows=len(evals))
    tmp = os.path.join(out_dir, f"report.json.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(report, fh, indent=1)
    os.replace(tmp, os.path.join(out_dir, "report.json"))
    return report


# ---- main ------------------------------------------------------------------------------------


def read_request(argv: list[str]) -> dict[str, Any]:
    raw = argv[2] if len(argv) > 2 and argv[2] != "-" else sys.stdin.read()
    if not raw.lstrip().startswith("{"):
        with open(os.path.expanduser(raw.strip())) as fh:
            raw = fh.read()
    req = json.loads(raw)
    if not isinstance(req, dict):
        raise ValueError("the request is not a JSON object")
    return req


def main(argv: list[str]) -> int:
    ops = {"inspect": inspect, "screen": screen}
    if len(argv) < 2 or argv[1] not in ops:
        print(json.dumps({"ok": False, "rule": "usage",
                          "message": "dataset.py inspect|screen REQUEST_JSON"}))
        return 2
    try:
        print(json.dumps(ops[argv[1]](read_request(argv)), ensure_ascii=False), flush=True)
    except Refusal as refusal:
        print(json.dumps({"ok": False, "rule": refusal.rule, "message": refusal.message}),
              flush=True)
    except Exception as exc:  # noqa: BLE001 - the caller reads the reason from the last line
        import traceback

        traceback.print_exc()
        print(json.dumps({"ok": False, "rule": "error",
                          "message": f"{type(exc).__name__}: {exc}"[:500]}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
