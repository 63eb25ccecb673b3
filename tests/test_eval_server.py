"""`llmops server eval` on the session's shared CPU vLLM server (issue 12 item 4): a dataset
whose answers were read from the server beforehand (temperature 0 answers the same twice)
scores as expected, a choice is decided by the log-probabilities read independently over
httpx, perplexity matches the echoed tokens, the result is stored by the spec commit and
compared with the eval of the commit before after a field that does not restart vLLM
changed (with the benches of both commits: p95 TTFT and throughput beside accuracy), and bad
datasets are refused naming the line and the field, nothing written."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from labtools import llmops, llmops_json
from sharedserver import SharedServer
from test_alert_server import hand_edit

pytestmark = [pytest.mark.vllm]

PROMPT = "The operator asked"
CHOICE_PROMPT = "The cat"
OPTIONS = [" sat on the mat", " dog", " ran away fast"]
TEXT = "The operator rolled the server back in one key."


def completion(http: httpx.Client, model: str, **body: Any) -> dict[str, Any]:
    resp = http.post("/v1/completions", json={"model": model, "temperature": 0.0, **body})
    resp.raise_for_status()
    return dict(resp.json())


def option_logprob(http: httpx.Client, model: str, prompt: str, option: str) -> float:
    """The option's log-probability after the prompt, read on its own: the echoed tokens
    from the first one that reaches past the prompt."""
    lp = completion(http, model, prompt=prompt + option, max_tokens=0, echo=True,
                    logprobs=0)["choices"][0]["logprobs"]
    return sum(p for start, token, p in zip(lp["text_offset"], lp["tokens"],
                                            lp["token_logprobs"], strict=True)
               if start + len(token) > len(prompt) and p is not None)


@pytest.fixture(scope="module")
def known(shared_server: SharedServer) -> dict[str, Any]:
    """What the server answers, read directly (not through llmops)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{shared_server.port}", timeout=60) as http:
        model = http.get("/v1/models").json()["data"][0]["id"]
        answer = completion(http, model, prompt=PROMPT, max_tokens=8)["choices"][0]["text"]
        scores = [option_logprob(http, model, CHOICE_PROMPT, o) for o in OPTIONS]
        echoed = completion(http, model, prompt=TEXT, max_tokens=0, echo=True,
                            logprobs=0)["choices"][0]["logprobs"]["token_logprobs"]
    known_lps = [p for p in echoed if p is not None]
    return {"answer": answer, "scores": scores, "best": scores.index(max(scores)),
            "perplexity": math.exp(-sum(known_lps) / len(known_lps)),
            "tokens": len(known_lps)}


def dataset(known: dict[str, Any]) -> list[dict[str, Any]]:
    answer, best = known["answer"], known["best"]
    assert answer.strip(), f"the tiny model answered only whitespace: {answer!r}"
    worst = min(range(len(OPTIONS)), key=lambda i: known["scores"][i])
    return [
        {"id": "exact-right", "prompt": PROMPT, "expected": answer, "max_tokens": 8},
        {"id": "exact-wrong", "prompt": PROMPT, "expected": answer + " not", "max_tokens": 8},
        {"id": "contains", "prompt": PROMPT, "expected": answer.strip()[:2],
         "scorer": "contains", "max_tokens": 8},
        {"id": "regex", "prompt": PROMPT, "expected": "^" + re.escape(answer[:3]),
         "scorer": "regex", "max_tokens": 8},
        {"id": "choice-right", "prompt": CHOICE_PROMPT, "choices": OPTIONS, "answer": best},
        {"id": "choice-wrong", "prompt": CHOICE_PROMPT, "choices": OPTIONS,
         "answer": OPTIONS[worst]},
        {"id": "ppl", "text": TEXT},
    ]


def bench(lab: Path) -> None:
    """A short load test, stored by the bench work per server and spec commit."""
    done = llmops_json(lab, "server", "bench", "shared", "--requests", "8", "--concurrency", "2")
    assert done["ok"], done


def write(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def counts(lab: Path) -> tuple[int, int]:
    """(eval rows, journal rows) in the lab's lab.db."""
    with sqlite3.connect(lab / "lab.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        evals = db.execute("select count(*) from evals").fetchone()[0] if "evals" in tables else 0
        return evals, db.execute("select count(*) from events").fetchone()[0]


@pytest.fixture
def changed_target(shared_server: SharedServer) -> Iterator[None]:
    """target_output_tps changed (no restart: a new spec commit, the same vLLM process), put
    back afterwards; by a committed hand edit, as the checklist's targets check could fail an
    action on a loaded box."""
    hand_edit(shared_server.lab, target_output_tps=99)
    try:
        yield
    finally:
        hand_edit(shared_server.lab, target_output_tps=100)


def test_eval_scores_known_answers_and_compares_with_the_commit_before(
        shared_server: SharedServer, known: dict[str, Any], tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    lab = shared_server.lab
    path = write(tmp_path / "known.jsonl", dataset(known))
    assert known["scores"][known["best"]] > min(known["scores"])  # the options differ

    bench(lab)
    first = llmops_json(lab, "server", "eval", "shared", "--dataset", str(path))
    results = {r["id"]: r for r in first["results"]}
    assert results["exact-right"]["answer"] == known["answer"]
    assert [results[i]["ok"] for i in ("exact-right", "exact-wrong", "contains", "regex",
                                       "choice-right", "choice-wrong")] == [
        True, False, True, True, True, False]
    assert results["choice-right"]["picked"] == known["best"]
    assert results["choice-right"]["scores"] == pytest.approx(known["scores"], abs=1e-3)
    assert (first["judged"], first["correct"], first["errors"]) == (6, 4, 0)
    assert first["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert first["perplexity"] == pytest.approx(known["perplexity"], rel=1e-3)
    assert first["perplexity_tokens"] == known["tokens"]
    assert first["by_scorer"]["choice"] == {"n": 2, "correct": 1}

    request.getfixturevalue("changed_target")  # a new spec commit, same vLLM process
    bench(lab)
    second = llmops_json(lab, "server", "eval", "shared", "--dataset", str(path))
    assert second["commit"] != first["commit"]
    assert second["before"]["id"] == first["id"]
    assert second["before"]["commit"] == first["commit"]
    assert second["accuracy"] == first["accuracy"]
    assert "accuracy 100% of before" in second["line"], second["line"]
    assert "perplexity +0%" in second["line"], second["line"]
    # speed beside accuracy: the benches of both spec commits, joined by (server, commit)
    assert second["bench"]["ttft_p95_ms"] > 0 and second["before_bench"]["output_tps"] > 0
    assert "p95 TTFT " in second["line"] and "output tok/s " in second["line"], second["line"]

    listed = llmops_json(lab, "server", "evals", "shared")
    assert [e["id"] for e in listed["evals"][:2]] == [second["id"], first["id"]]
    assert listed["last"]["line"] == second["line"]
    text = llmops(lab, "server", "eval", "shared", "--dataset", str(path)).stdout
    assert "accuracy 66.7% (4/6)" in text and "accuracy 100% of before" in text


@pytest.mark.parametrize(("rows", "where"), [
    ([{"prompt": "a", "expected": "b"}, "{oops"], "line 2: json"),
    ([{"prompt": "a", "choices": ["x", "y"], "answer": 5}], "line 1: answer"),
    ([{"prompt": "a", "expected": "[", "scorer": "regex"}], "line 1: expected"),
    ([{"prompt": "a", "expectd": "b"}], "line 1: expect"),
    ([], "line 0: lines"),
])
def test_a_bad_dataset_is_refused_naming_line_and_field_nothing_written(
        shared_server: SharedServer, tmp_path: Path, rows: list[Any], where: str) -> None:
    lab = shared_server.lab
    before = counts(lab)
    path = write(tmp_path / "bad.jsonl", rows)
    done = llmops(lab, "server", "eval", "shared", "--dataset", str(path), "--json", check=2)
    error = json.loads(done.stdout)["error"]
    assert error.startswith(f"dataset: bad.jsonl: {where}"), error
    assert counts(lab) == before


def test_missing_dataset_and_unknown_server_are_refused(shared_server: SharedServer,
                                                        tmp_path: Path) -> None:
    lab = shared_server.lab
    before = counts(lab)
    done = llmops(lab, "server", "eval", "shared", "--dataset", str(tmp_path / "no.jsonl"),
                  check=2)
    assert "dataset: cannot read" in done.stderr
    path = write(tmp_path / "ok.jsonl", [{"prompt": "a", "expected": "b"}])
    done = llmops(lab, "server", "eval", "nope", "--dataset", str(path), check=2)
    assert "there is no server named nope" in done.stderr
    assert counts(lab) == before
