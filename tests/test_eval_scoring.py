"""The eval's pure parts (issue 12 item 4): a dataset's errors name the line and the field;
scorers; a choice's continuation log-probability from echoed offsets; perplexity; the line
that compares a change with the commit before, joined with bench figures."""

from __future__ import annotations

import json
import math

import pytest

from llmops.ops.kinds.server.evaluate import (
    ChoiceItem,
    DatasetError,
    PerplexityItem,
    TextItem,
    continuation_logprob,
    nll,
    parse_dataset,
    pick_choice,
    text_correct,
)
from llmops.rollback.evals import bench_figures, compare_line


def lines(*rows: object) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)


def test_a_dataset_of_every_scorer_parses() -> None:
    items = parse_dataset(lines(
        {"prompt": "2+2=", "expected": "4"},
        "",
        {"prompt": "Say hi", "expected": "hi", "scorer": "contains", "max_tokens": 4},
        {"prompt": "A number:", "expected": r"\d+", "scorer": "regex", "id": "n1"},
        {"prompt": "The sky is", "choices": [" blue", " green"], "answer": " blue"},
        {"text": "The cat sat on the mat."},
    ))
    assert [type(i) for i in items] == [TextItem, TextItem, TextItem, ChoiceItem, PerplexityItem]
    assert [i.scorer for i in items] == ["exact", "contains", "regex", "choice", "perplexity"]
    choice = items[3]
    assert isinstance(choice, ChoiceItem) and choice.answer_index == 0


@pytest.mark.parametrize(("text", "line", "field"), [
    (lines({"prompt": "a", "expected": "b"}, "{not json"), 2, "json"),
    (lines({"prompt": "a"}), 1, "expected"),
    (lines({"prompt": "a", "expected": "b"}, {"prompt": "a", "expected": "b", "max_tokens": 0}),
     2, "max_tokens"),
    (lines({"prompt": "a", "expected": "(", "scorer": "regex"}), 1, "expected"),
    (lines({"prompt": "a", "choices": ["x", "y"], "answer": 2}), 1, "answer"),
    (lines({"prompt": "a", "choices": ["x", "y"], "answer": "z"}), 1, "answer"),
    (lines({"prompt": "a", "choices": ["x"], "answer": 0}), 1, "choices"),
    (lines({"prompt": "a", "expected": "b", "scorer": "fuzzy"}), 1, "scorer"),
    (lines({"prompt": "a", "expected": "b", "expectd": "c"}), 1, "expectd"),
    (lines({"text": ""}), 1, "text"),
    (lines("[1, 2]"), 1, "json"),
    ("\n\n", 0, "lines"),
])
def test_a_bad_line_is_named_with_its_field(text: str, line: int, field: str) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_dataset(text)
    assert (caught.value.line, caught.value.field) == (line, field), str(caught.value)
    assert str(caught.value).startswith(f"line {line}: {field}: ")


def test_text_scorers() -> None:
    exact = TextItem(prompt="p", expected=" 4 ")
    assert text_correct(exact, "4\n") and not text_correct(exact, "44")
    contains = TextItem(prompt="p", expected="cat", scorer="contains")
    assert text_correct(contains, "a cat sat") and not text_correct(contains, "a dog")
    regex = TextItem(prompt="p", expected=r"^\s*\d+\b", scorer="regex")
    assert text_correct(regex, " 42 apples") and not text_correct(regex, "apples 42")


def test_a_choice_sums_the_tokens_that_carry_the_continuation() -> None:
    # "The cat" + " sat": tokens The| c|at| s|at  (offsets 0,3,5,7,9); the prompt is 7 chars
    offsets, tokens = [0, 3, 5, 7, 9], ["The", " c", "at", " s", "at"]
    logprobs = [None, -1.0, -2.0, -3.0, -4.0]
    assert continuation_logprob(7, offsets, tokens, logprobs) == (-7.0, 2)
    # a token straddling the boundary carries the option's first characters: it counts
    assert continuation_logprob(6, offsets, tokens, logprobs) == (-9.0, 3)
    assert pick_choice([-7.0, -3.5, -9.0]) == 1
    assert pick_choice([-2.0, -2.0]) == 0


def test_perplexity_skips_the_first_token() -> None:
    total, count = nll([None, -1.0, -3.0])
    assert (total, count) == (4.0, 2)
    assert math.exp(total / count) == pytest.approx(math.e ** 2)


def test_the_line_compares_with_the_commit_before() -> None:
    now = {"accuracy": 0.72, "correct": 18, "judged": 25, "perplexity": 11.0}
    before = {"accuracy": 0.75, "correct": 19, "judged": 25, "perplexity": 10.0}
    bench_now = {"cost_per_m": 0.27, "ttft_p95_ms": 112.0, "output_tps": 90.0}
    bench_before = {"cost_per_m": 1.0, "ttft_p95_ms": 100.0, "output_tps": 100.0}
    assert compare_line(now, before, bench_now, bench_before) == (
        "cost -73%, accuracy 96% of before, perplexity +10%, p95 TTFT +12%, output tok/s -10%")
    assert compare_line(now, before) == "accuracy 96% of before, perplexity +10%"
    assert compare_line(now, None).startswith("first eval of this dataset on this server, "
                                              "accuracy 72% (18/25)")


def test_bench_figures_read_the_bench_row() -> None:
    row = {"server": "s", "spec_commit": "c",
           "figures": json.dumps({"ttft_ms": {"median": 50.0, "p95": 250.0},
                                  "tpot_ms": {"p95": 9.0}, "output_throughput": 80.5}),
           "cost": json.dumps({"per_1m_output": 0.5, "per_1m_input": 0.1})}
    assert bench_figures(row) == {"ttft_p95_ms": 250.0, "output_tps": 80.5, "cost_per_m": 0.5}
    assert bench_figures(None) == {}
    assert bench_figures({"server": "s", "figures": "{}", "cost": json.dumps(
        {"per_1m_output": None})}) == {}
