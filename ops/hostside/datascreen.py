"""Runs ON a host, beside dataset.py in <workdir>/bin/: what screening looks for in a training
file's rows and what it does with a match. The rules (RULES, also the priority where matches
overlap), a Scanner (regexes, and detect-secrets for keys when the host's python has it),
redaction and report snippets that never show a secret. Prompt injections are the table the
gateway's guardrail uses too (injection_rules.py, copied beside this file: layout.SCRIPTS).
Stdlib only at import time."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # imported from the package (tests): its sibling is beside it
    sys.path.insert(0, HERE)

import injection_rules  # noqa: E402 - beside this file

EXAMPLES = 3
SNIPPET = 40

SECRET_PLUGINS = ("AWSKeyDetector", "GitHubTokenDetector", "PrivateKeyDetector",
                  "KeywordDetector", "SlackDetector", "StripeDetector", "JwtTokenDetector",
                  "BasicAuthDetector")
"""detect-secrets plugins that flag keys and tokens but not English (see finetune-cpu.md)."""

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
            "injection": [(b, e) for _, b, e in injection_rules.spans(text)],
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
        named: set[str] = set()  # the injection rules (their ids) that hit the row

        def scan(text: str, hit: dict[str, str] = hit, named: set[str] = named) -> str:
            spans = scanner.find(text)
            for rule in spans:
                if rule == "injection":
                    named.update(r for r, _, _ in injection_rules.spans(text))
                hit.setdefault(rule, snippet(text, spans, rule))
            return redact(text, spans, redacting)

        cleaned = strings(row, scan)
        for rule, example in hit.items():
            entry = report["rules"][rule]
            entry["rows"] += 1
            if rule == "injection":
                by_rule = entry.setdefault("by_rule", {})
                for name in sorted(named):
                    by_rule[name] = by_rule.get(name, 0) + 1
                example += f" (rule {', '.join(sorted(named))})"
            if len(entry["examples"]) < EXAMPLES:
                entry["examples"].append(f"{label} row {number}: {example}")
        if not any(choices.get(rule) == "drop" for rule in hit):
            kept.append(cleaned)
    return kept
