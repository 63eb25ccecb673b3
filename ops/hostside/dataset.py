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
RULES; per rule the request's choice: drop (the row never reaches data/train.jsonl),
keep (counted only) or redact (each match becomes [REDACTED:<rule>]). A row hit by a drop
rule is dropped whatever else hit it. Report examples are snippets with every match redacted,
never the secret itself. Eval rows: the screened validation file, or the last eval_split
share of the screened rows after a seeded shuffle. Stdlib only, but detect-secrets for the
secret rule (without it, the regexes below alone, and the report says so).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

SUFFIXES = (".jsonl", ".csv", ".parquet")
FIRST_ROWS = 20
EXAMPLES = 3
SNIPPET = 40
WORDS_TO_TOKENS = 4 / 3

SECRET_PLUGINS = ("AWSKeyDetector", "GitHubTokenDetector", "PrivateKeyDetector",
                  "KeywordDetector", "SlackDetector", "StripeDetector", "JwtTokenDetector",
                  "BasicAuthDetector")
"""detect-secrets plugins that flag keys and tokens but not English (see finetune-cpu.md)."""

FLAGS = re.IGNORECASE | re.MULTILINE
INJECTION = (
    ("ignore-instructions", r"\b(?:ignore|forget|skip)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|"
                            r"your\s+|my\s+)?(?:previous|prior|above|earlier|preceding)\s+"
                            r"(?:instructions?|prompts?|directions?|rules|messages?)\b"),
    ("disregard-instructions", r"\bdisregard\s+(?:\w+\s+){0,4}?(?:instructions?|prompts?|rules|"
                               r"guidelines|directions?)\b"),
    ("you-are-now", r"\byou\s+are\s+now\s+(?:a|an|the|my|no\s+longer|free|unrestricted|"
                    r"unfiltered|jailbroken|dan|acting|in\s+developer\s+mode)\b"),
    ("system-prompt", r"\bsystem\s+prompt\b"),
    ("reveal-prompt", r"\b(?:reveal|print|show|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+"
                      r"(?:system\s+|initial\s+|hidden\s+|original\s+)?(?:prompt|instructions)\b"),
    ("jailbreak", r"\bjail\s?break(?:s|ing|ed|en)?\b"),
    ("do-anything-now", r"\bdo\s+anything\s+now\b|\bDAN\s+mode\b"),
    ("developer-mode", r"\b(?:developer|god)\s+mode\s+(?:enabled|on|activated)\b"),
    ("override-rules", r"\boverride\s+(?:your\s+|all\s+|the\s+)?(?:safety|previous|system)\s+"
                       r"(?:instructions|rules|guidelines|settings|prompt)\b"),
    ("pretend-no-rules", r"\bpretend\s+(?:that\s+)?you\s+(?:have\s+no|are\s+not\s+bound\s+by|"
                         r"don'?t\s+have)\s+(?:\w+\s+){0,2}(?:rules|restrictions|guidelines|"
                         r"limits|filters)\b"),
    ("role-tag", r"<\|im_start\|>\s*system|<<SYS>>|^\s*#{2,3}\s*system\s*:"),
)
"""Prompt-injection phrases, one maintained table: (name, case-insensitive regex)."""

SECRET_EXTRA = (
    ("openai-key", r"(?<![\w-])sk-(?:proj-)?[A-Za-z0-9_-]{20,}"),  # detect-secrets misses these
    ("private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?"
                    r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?"),  # the block, not the header
    ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
)
EMAIL = r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?" \
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b"
PHONE = (
    r"(?<![\w+])\+\d(?:[ .()-]{0,2}\d){8,14}(?!\d)",  # international: + and 9-15 digits
    r"(?<![\w+.-])(?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])",  # US
)
CARD = r"(?<![\d+.])(?:(?:\d{4}[ -]?){3}\d{1,7}|\d{4}[ -]?\d{6}[ -]?\d{4,5})(?!\d)"
TOKEN_CHARS = re.compile(r"[\w+/=.~-]")

RULES = ("secret", "card", "email", "phone", "injection")
"""Also the priority where matches overlap: a card number is not a phone number too."""


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


# ---- screening -------------------------------------------------------------------------------

Span = tuple[int, int]


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


class Scanner:
    """Finds each rule's matches in a string; detect-secrets for keys when it is installed."""

    def __init__(self) -> None:
        self.injection = [re.compile(p, FLAGS) for _, p in INJECTION]
        self.secret = [re.compile(p) for _, p in SECRET_EXTRA]
        self.email = re.compile(EMAIL)
        self.phone = [re.compile(p) for p in PHONE]
        self.card = re.compile(CARD)
        self.detect: Callable[[str], Iterator[Any]] | None = None
        self.note: str | None = None
        self.settings: Any = None
        try:
            from detect_secrets.core.scan import scan_line
            from detect_secrets.settings import transient_settings

            self.detect = scan_line
            self.settings = transient_settings(
                {"plugins_used": [{"name": n} for n in SECRET_PLUGINS]})
        except ImportError:
            self.note = ("detect-secrets is not installed in the host's python: keys found by "
                         "regex only (pip install detect-secrets)")

    def __enter__(self) -> Scanner:
        if self.settings is not None:
            self.settings.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.settings is not None:
            self.settings.__exit__(*exc)

    def secrets(self, text: str) -> list[Span]:
        spans = [m.span() for rx in self.secret for m in rx.finditer(text)]
        if self.detect is None:
            return spans
        offset = 0
        for line in text.split("\n"):
            for found in self.detect(line):
                value = found.secret_value or ""
                at = line.find(value) if value else -1
                if at < 0:  # no position to cut: the whole line goes
                    spans.append((offset, offset + len(line)))
                    continue
                start, end = at, at + len(value)
                while start > 0 and TOKEN_CHARS.match(line[start - 1]):
                    start -= 1  # the detector may name only a prefix (GitHub's 'ghp')
                while end < len(line) and TOKEN_CHARS.match(line[end]):
                    end += 1
                while end > at + len(value) and line[end - 1] == ".":
                    end -= 1  # a full stop ends the sentence, not the key
                spans.append((offset + start, offset + end))
            offset += len(line) + 1
        return spans

    def find(self, text: str) -> dict[str, list[Span]]:
        """Each rule's spans; a span overlapping one of a rule before it in RULES is dropped."""
        found = {
            "secret": self.secrets(text),
            "card": [m.span() for m in self.card.finditer(text)
                     if 13 <= len(d := re.sub(r"\D", "", m.group())) <= 19 and luhn(d)],
            "email": [m.span() for m in self.email.finditer(text)],
            "phone": [m.span() for rx in self.phone for m in rx.finditer(text)],
            "injection": [m.span() for rx in self.injection for m in rx.finditer(text)],
        }
        taken: list[Span] = []
        kept: dict[str, list[Span]] = {}
        for rule in RULES:
            spans = merge([s for s in found[rule]
                           if not any(s[0] < e and b < s[1] for b, e in taken)])
            if spans:
                kept[rule] = spans
                taken += spans
        return kept


def merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


def redact(text: str, hits: dict[str, list[Span]], rules: set[str]) -> str:
    cuts = sorted((s, e, rule) for rule, spans in hits.items() if rule in rules for s, e in spans)
    out, at = [], 0
    for start, end, rule in cuts:
        if start < at:
            continue
        out += [text[at:start], f"[REDACTED:{rule}]"]
        at = end
    return "".join(out) + text[at:]


def snippet(text: str, hits: dict[str, list[Span]], rule: str) -> str:
    """The text around the rule's first match with every match redacted, but injection
    phrases: they are no secret, and show what was found."""
    pieces, at, focus = [], 0, 0
    for start, end, name in sorted((s, e, r) for r, spans in hits.items() for s, e in spans):
        pieces.append(text[at:start])
        if name == rule and not focus:
            focus = sum(len(p) for p in pieces) + 1
        pieces.append(text[start:end] if name == "injection" else f"[REDACTED:{name}]")
        at = end
    clean = "".join(pieces) + text[at:]
    start, end = max(0, focus - 1 - SNIPPET), min(len(clean), focus + SNIPPET + 30)
    body = " ".join(clean[start:end].split())
    return ("…" if start else "") + body + ("…" if end < len(clean) else "")


def strings(value: Any, fn: Callable[[str], str]) -> Any:
    """The same structure with fn applied to every string value (dict keys stay)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [strings(v, fn) for v in value]
    return value


def screen_rows(rows: list[dict[str, Any]], invalid: dict[int, str], label: str,
                choices: dict[str, str], scanner: Scanner,
                report: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows that pass, redacted where the choice says; counts and examples in report."""
    redacting = {r for r in RULES if choices.get(r) == "redact"}
    kept, said = [], time.monotonic()
    for number, row in enumerate(rows, 1):
        if time.monotonic() - said >= 2:  # a plain line for the console following the log
            print(f"screening {label}: {number - 1}/{len(rows)} rows", flush=True)
            said = time.monotonic()
        if number in invalid:
            entry = report["invalid"]
            entry["rows"] += 1
            if len(entry["examples"]) < EXAMPLES:
                entry["examples"].append(f"{label} row {number}: {invalid[number]}")
            continue
        hit: dict[str, str] = {}

        def scan(text: str, hit: dict[str, str] = hit) -> str:
            spans = scanner.find(text)
            for rule in spans:
                hit.setdefault(rule, snippet(text, spans, rule))
            return redact(text, spans, redacting)

        cleaned = strings(row, scan)
        for rule, example in hit.items():
            entry = report["rules"][rule]
            entry["rows"] += 1
            if len(entry["examples"]) < EXAMPLES:
                entry["examples"].append(f"{label} row {number}: {example}")
        if not any(choices.get(rule) == "drop" for rule in hit):
            kept.append(cleaned)
    return kept


def write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def screen(req: dict[str, Any]) -> dict[str, Any]:
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
