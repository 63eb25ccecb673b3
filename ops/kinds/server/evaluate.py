"""Quality beside speed: score a server on a JSONL dataset (issue 12).

Each line is one item with a scorer: `exact`, `contains` or `regex` on the greedy answer
(temperature 0, so a server answers the same twice), `choice` (the option whose continuation
the model gives the highest log-probability, read with vLLM's `echo` + `logprobs` on
`max_tokens = 0`), or `perplexity` of a reference text (the same echo, every token after the
first). Parsing and scoring are pure; `run_eval` is the one part that talks to a server."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from llmops.ops.kinds.server.launch import reach_address
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool

MAX_ITEMS = 5000
MAX_TOKENS = 512
MAX_TEXT = 20_000
CONCURRENCY = 4
FORMAT = ('one JSON object a line: {"prompt": ..., "expected": ..., "scorer": "exact"}, '
          '{"prompt": ..., "choices": [...], "answer": 0} or {"text": ..., "scorer": '
          '"perplexity"}')


class DatasetError(ValueError):
    """A dataset line that cannot be scored: its line number, the field and what is wrong."""

    def __init__(self, line: int, field: str, message: str) -> None:
        self.line, self.field = line, field
        super().__init__(f"line {line}: {field}: {message}")


class EvalError(RuntimeError):
    """The server could not be evaluated at all (unreachable, or no logprobs when asked)."""


class ItemRefused(RuntimeError):
    """The server refused one item (a prompt longer than its context): that item's error."""


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str | None = Field(default=None, max_length=200)


class TextItem(_Item):
    """A prompt whose greedy answer must equal, contain or match `expected`."""

    scorer: Literal["exact", "contains", "regex"] = "exact"
    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    expected: str = Field(min_length=1, max_length=MAX_TEXT)
    max_tokens: int = Field(default=16, ge=1, le=MAX_TOKENS)
    stop: list[str] = Field(default_factory=list, max_length=4)

    @field_validator("expected")
    @classmethod
    def _regex(cls, v: str, info: Any) -> str:
        if info.data.get("scorer") == "regex":
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return v


class ChoiceItem(_Item):
    """A prompt and options: right when the `answer` option has the highest log-probability."""

    scorer: Literal["choice"] = "choice"
    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    choices: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(
        min_length=2, max_length=26)
    answer: int | str

    @field_validator("answer")
    @classmethod
    def _answer(cls, v: int | str, info: Any) -> int | str:
        options = info.data.get("choices")
        if options is None:
            return v
        if isinstance(v, int) and not 0 <= v < len(options):
            raise ValueError(f"index {v} is outside 0..{len(options) - 1}")
        if isinstance(v, str) and v not in options:
            raise ValueError(f"{v!r} is not one of the choices")
        return v

    @property
    def answer_index(self) -> int:
        return self.answer if isinstance(self.answer, int) else self.choices.index(self.answer)


class PerplexityItem(_Item):
    """A reference text whose perplexity under the model is measured (no right or wrong)."""

    scorer: Literal["perplexity"] = "perplexity"
    text: str = Field(min_length=1, max_length=MAX_TEXT)


EvalItem = TextItem | ChoiceItem | PerplexityItem
_ITEM: TypeAdapter[EvalItem] = TypeAdapter(
    Annotated[EvalItem, Field(discriminator="scorer")])  # type: ignore[arg-type]


def parse_dataset(text: str) -> list[EvalItem]:
    """JSONL -> items; the first bad line raises DatasetError naming it and the field. A line
    without `scorer` is a choice when it has `choices`, perplexity when it has `text`, exact
    otherwise. Blank lines are skipped."""
    items: list[EvalItem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(number, "json", f"not JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise DatasetError(number, "json", "not a JSON object")
        if "scorer" not in raw:
            raw["scorer"] = "choice" if "choices" in raw else (
                "perplexity" if "text" in raw else "exact")
        try:
            items.append(_ITEM.validate_python(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"] if p != raw["scorer"]) or "scorer"
            raise DatasetError(number, where, first["msg"].removeprefix("Value error, ")) from None
        if len(items) > MAX_ITEMS:
            raise DatasetError(number, "lines", f"more than {MAX_ITEMS} items")
    if not items:
        raise DatasetError(0, "lines", "the dataset has no items")
    return items


# -- pure scoring --------------------------------------------------------------------------
def text_correct(item: TextItem, answer: str) -> bool:
    """The greedy answer against `expected`, whitespace at the ends ignored."""
    if item.scorer == "exact":
        return answer.strip() == item.expected.strip()
    if item.scorer == "contains":
        return item.expected in answer
    return re.search(item.expected, answer) is not None


def continuation_logprob(prefix_chars: int, offsets: Sequence[int], tokens: Sequence[str],
                         logprobs: Sequence[float | None]) -> tuple[float, int]:
    """Sum of the log-probabilities of the tokens that carry the continuation (those ending past
    the prompt's `prefix_chars`, as echoed with their text offsets), and how many there are.
    A token straddling the boundary counts: the option's first characters are in it."""
    total, count = 0.0, 0
    for start, token, lp in zip(offsets, tokens, logprobs, strict=True):
        if start + len(token) > prefix_chars and lp is not None:
            total += lp
            count += 1
    return total, count


def pick_choice(scores: Sequence[float]) -> int:
    """The option with the highest log-probability (the first on a tie)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def nll(logprobs: Sequence[float | None]) -> tuple[float, int]:
    """Negative log-likelihood of an echoed text and its token count (the first token has no
    log-probability: nothing came before it)."""
    known = [lp for lp in logprobs if lp is not None]
    return -sum(known), len(known)


def perplexity(total_nll: float, tokens: int) -> float | None:
    return math.exp(total_nll / tokens) if tokens else None


# -- results -------------------------------------------------------------------------------
@dataclass
class ItemResult:
    index: int
    scorer: str
    ok: bool | None
    """Right or wrong; None for a perplexity item (measured, not judged)."""
    id: str | None = None
    answer: str | None = None
    picked: int | None = None
    scores: list[float] | None = None
    nll: float | None = None
    tokens: int | None = None
    error: str | None = None


@dataclass
class EvalResult:
    items: list[ItemResult]
    seconds: float
    model: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The figures one eval is judged by: accuracy over judged items, perplexity over
        every reference token, per-scorer counts, errors."""
        judged = [r for r in self.items if r.ok is not None]
        correct = sum(1 for r in judged if r.ok)
        by: dict[str, dict[str, int]] = {}
        for r in self.items:
            row = by.setdefault(r.scorer, {"n": 0} if r.ok is None else {"n": 0, "correct": 0})
            row["n"] += 1
            if r.ok is not None:
                row["correct"] += int(r.ok)
        total_nll = sum(r.nll or 0.0 for r in self.items if r.scorer == "perplexity")
        tokens = sum(r.tokens or 0 for r in self.items if r.scorer == "perplexity")
        ppl = perplexity(total_nll, tokens)
        return {
            "items": len(self.items),
            "judged": len(judged),
            "correct": correct,
            "accuracy": round(correct / len(judged), 6) if judged else None,
            "perplexity": round(ppl, 6) if ppl is not None else None,
            "perplexity_tokens": tokens,
            "errors": sum(1 for r in self.items if r.error),
            "by_scorer": by,
            "seconds": round(self.seconds, 3),
        }

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.items]


# -- the server ------------------------------------------------------------------------------
def _post(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = http.post("/v1/completions", json=body)
    if resp.status_code != 200:
        raise ItemRefused(f"completion answered {resp.status_code}: {resp.text[:300]}")
    return dict(resp.json())


def _echo(http: httpx.Client, model: str, prompts: list[str]) -> list[dict[str, Any]]:
    """Each prompt echoed with its tokens' log-probabilities, nothing generated."""
    body = _post(http, {"model": model, "prompt": prompts, "max_tokens": 0, "echo": True,
                        "logprobs": 0, "temperature": 0.0})
    choices = sorted(body.get("choices", []), key=lambda c: int(c.get("index", 0)))
    found = [c.get("logprobs") for c in choices]
    if len(found) != len(prompts) or any(not lp or "token_logprobs" not in lp for lp in found):
        raise EvalError("the server returned no prompt log-probabilities (echo + logprobs): "
                        "choice and perplexity items need them")
    return [dict(lp) for lp in found]


def score_item(http: httpx.Client, model: str, index: int, item: EvalItem) -> ItemResult:
    """One item against the server; an HTTP failure is this item's error (scored wrong)."""
    result = ItemResult(index, item.scorer, None if item.scorer == "perplexity" else False,
                        item.id)
    try:
        if isinstance(item, TextItem):
            body = _post(http, {"model": model, "prompt": item.prompt, "temperature": 0.0,
                                "max_tokens": item.max_tokens, **({"stop": item.stop}
                                                                  if item.stop else {})})
            result.answer = body["choices"][0]["text"]
            result.ok = text_correct(item, result.answer)
        elif isinstance(item, ChoiceItem):
            echoed = _echo(http, model, [item.prompt + c for c in item.choices])
            result.scores = [
                round(continuation_logprob(len(item.prompt), lp["text_offset"], lp["tokens"],
                                           lp["token_logprobs"])[0], 6)
                for lp in echoed
            ]
            result.picked = pick_choice(result.scores)
            result.answer = item.choices[result.picked]
            result.ok = result.picked == item.answer_index
        else:
            lp = _echo(http, model, [item.text])[0]
            result.nll, result.tokens = nll(lp["token_logprobs"])
    except (httpx.HTTPError, ItemRefused, KeyError, IndexError, TypeError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    return result


def run_eval(base_url: str, model: str, items: list[EvalItem], *, timeout: float = 120.0,
             progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Every item against the server at `base_url`, a few at a time, in the dataset's order.
    EvalError when the server does not answer at all, or gives no log-probabilities."""
    started = time.monotonic()
    done = 0
    with httpx.Client(base_url=base_url, timeout=timeout) as http:
        try:
            http.get("/health", timeout=10.0).raise_for_status()
        except httpx.HTTPError as exc:
            raise EvalError(f"the server does not answer: {exc}") from exc

        def one(pair: tuple[int, EvalItem]) -> ItemResult:
            nonlocal done
            result = score_item(http, model, *pair)
            done += 1
            if progress:
                progress(done, len(items))
            return result

        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="llmops-eval") as pool:
            results = list(pool.map(one, enumerate(items)))
    return EvalResult(results, time.monotonic() - started, model)


def eval_server(spec: ServerSpec, hosts: HostPool, items: list[EvalItem],
                progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """`run_eval` through a tunnel to the server's port on its host."""
    with hosts.transport(spec.host).forward(spec.port, reach_address(spec)) as local:
        return run_eval(f"http://127.0.0.1:{local}", spec.api_model(), items, progress=progress)
