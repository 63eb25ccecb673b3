"""The operator's policy file (issue 13 item 7): each rule refuses what breaks it, naming the
rule and the file (exit 2, nothing written), and the file itself is validated with its line.

The rules are a pure function of the specs and the hosts' last probe (`refusals`), so most
cases are data: specs against preset facts (a 4-GPU host, a 24 GiB CPU host). The CLI tests
run the real `llmops` on a real lab with this machine as host `local`."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from finetune_fixtures import tiny_model_dir
from labtools import git_log, llmops, llmops_json, local_host_lab
from pydantic import ValidationError
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS

from llmops.ops.kinds.base import Context, Spec
from llmops.ops.kinds.host.spec import HostSpec
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.run.spec import RunSpec
from llmops.ops.kinds.server.spec import ServerSpec
from llmops.rollback.changes import Change
from llmops.rollback.lab import LabFileError
from llmops.rollback.policy import Policy, load_policy, refusals

GPU4: dict[str, Any] = {
    "workdir": "/home/op/.llmops", "cpu_count": 32, "ram_total_bytes": 512 * 2**30,
    "gpus": [{"index": i, "memory_total_bytes": 80 * 2**30} for i in range(4)],
}
CPU24: dict[str, Any] = {"workdir": "/home/op/.llmops", "cpu_count": 2,
                         "ram_total_bytes": 24 * 2**30, "gpus": []}
REGISTRY = r"^(openai|anthropic|huggingface|custom)/[\w\-\.]+:\d+\.\d+$"


def kind_name(spec: Spec) -> str:
    return {HostSpec: "host", ServerSpec: "server", RunSpec: "run", IndexSpec: "index"}[
        type(spec)]


def check(rules: dict[str, Any], new: Spec, *others: Spec,
          facts: dict[str, Any] | None = None) -> list[str]:
    """The rules `new` breaks beside `others` already in the lab: ["rule: message", ...]."""
    desired = {(kind_name(s), s.name): s for s in (*others, new)}
    ctx = Context(desired, lambda _kind, _name: facts)
    found = refusals(Policy.model_validate(rules), [Change(kind_name(new), new.name, new)], ctx)
    return [f"{r.field} | {r.rule} | {r.message}" for r in found]


def server(name: str, **fields: Any) -> ServerSpec:
    return ServerSpec.model_validate({"name": name, "host": "g", "model": "org/m"} | fields)


def run(name: str, **fields: Any) -> RunSpec:
    return RunSpec.model_validate(
        {"name": name, "host": "g", "base": "org/m", "dataset": "/data/t/a.jsonl"} | fields)


def test_defaults_allow_what_the_specs_allow() -> None:
    assert check({}, server("a", tp=4), facts=GPU4) == []
    assert check({}, server("a", tp=8, gpus=list(range(8))), facts=None) == []  # never probed
    assert check({}, HostSpec(name="h", address="203.0.113.7")) == []
    assert check({}, run("r")) == []


def test_max_gpus_per_job() -> None:
    said = check({"jobs": {"max_gpus": 2}}, server("a", tp=4), facts=GPU4)
    assert said == ["tp | jobs.max_gpus = 2 | asks for 4 GPUs"]
    said = check({"jobs": {"max_gpus": 1}}, run("r", gpus=[0, 1]), facts=GPU4)
    assert said == ["gpus | jobs.max_gpus = 1 | asks for 2 GPUs"]
    # a run without gpus on a GPU host sees every GPU (CUDA_VISIBLE_DEVICES unset)
    assert check({"jobs": {"max_gpus": 2}}, run("r"), facts=GPU4)[0].endswith("asks for 4 GPUs")
    # CPU ranks are not GPUs
    assert check({"jobs": {"max_gpus": 0}}, server("a", tp=2), facts=CPU24) == []


def test_max_ram_per_job() -> None:
    said = check({}, server("a", cpu_kvcache_gib=300), facts=CPU24 | {
        "ram_total_bytes": 1024 * 2**30})
    assert said == ["cpu_kvcache_gib | jobs.max_ram_gib = 256 | asks for 300 GiB of RAM"]
    assert check({"jobs": {"max_ram_gib": 4}}, server("a", cpu_kvcache_gib=8), facts=CPU24)
    assert check({"jobs": {"max_ram_gib": 4}}, server("a", cpu_kvcache_gib=4), facts=CPU24) == []


def test_host_quota_gpu_ids_and_counts() -> None:
    a = server("a", tp=2, gpus=[0, 1])
    said = check({}, server("b", tp=2, gpus=[1, 2]), a, facts=GPU4)
    assert said == ["gpus | hosts.quota = true | GPU [1] of g is already used by server/a"]
    assert check({}, server("b", tp=2, gpus=[2, 3]), a, facts=GPU4) == []
    # no ids: vLLM takes 0..tp*pp-1, which a already holds
    assert "already used by server/a" in check({}, server("b", tp=2), a, facts=GPU4)[0]
    # more GPUs than the probe reports, whatever the ids
    b = server("b", tp=2, gpus=[2, 3])
    said = check({}, server("c", gpus=[7]), a, b, facts=GPU4)
    assert said == ["gpus | hosts.quota = true | jobs on g would use 5 GPUs; its probe reports 4"]
    # servers and runs together; a stopped run holds nothing
    assert "already used by server/a" in check({}, run("r", gpus=[1]), a, facts=GPU4)[0]
    assert check({}, run("r", gpus=[1], state="stopped"), a, facts=GPU4) == []
    # the quota can be switched off
    assert check({"hosts": {"quota": False}}, server("b", tp=2), a, facts=GPU4) == []


def test_an_ended_run_holds_no_gpus() -> None:
    """A run whose spec still says `running` but whose trainer finished or failed (the state
    last observed for its config, in the journal's observed facts) holds no GPU in the
    quota; one still training, interrupted (the next reconcile resumes it) or never observed
    holds what it asks for; a changed run (a retry, a new config) asks again."""
    old = run("r", gpus=[0, 1])
    new = server("s", tp=2, gpus=[0, 1])

    def said(state: str | None, cfg: str | None = None, *changes: Spec) -> list[str]:
        recorded = {"run": {"state": state, "cfg": cfg or old.cfg_hash()} if state else None}
        ctx = Context({("run", "r"): old, ("server", "s"): new},
                      lambda kind, _name: GPU4 if kind == "host" else recorded.get(kind))
        found = refusals(Policy(), [Change(kind_name(c), c.name, c) for c in changes or (new,)],
                         ctx)
        return [f"{r.field} | {r.rule} | {r.message}" for r in found]

    held = ["gpus | hosts.quota = true | GPU [0, 1] of g is already used by run/r"]
    assert said(None) == held
    assert said("training") == held and said("interrupted") == held
    assert said("done") == [] and said("failed") == [] and said("stopped") == []
    assert said("done", cfg="0" * 12) == held  # observed for another config of the run
    # the ended run started again (a retry) asks for its GPUs again: the server has them
    assert said("failed", None, old) == [
        "gpus | hosts.quota = true | GPU [0, 1] of g is already used by server/s"]


def test_host_quota_ram() -> None:
    a = server("a", cpu_kvcache_gib=12)
    said = check({}, server("b", cpu_kvcache_gib=12), a, facts=CPU24)
    assert said == ["cpu_kvcache_gib | hosts.max_ram_share = 0.9 | jobs on g would ask for 24 "
                    "GiB of RAM; it has 24.0 GiB"]
    assert check({}, server("b", cpu_kvcache_gib=8), a, facts=CPU24) == []


def test_allowed_endpoints() -> None:
    rules = {"endpoints": {"allowed": ["10.213.0.0/16", "*.lab.example", "gpu1"]}}
    assert check(rules, HostSpec(name="h", address="10.213.4.2")) == []
    assert check(rules, HostSpec(name="h", address="box3.lab.example")) == []
    assert check(rules, HostSpec(name="h", address="gpu1")) == []
    assert check(rules, HostSpec(name="h", local=True)) == []
    said = check(rules, HostSpec(name="h", address="203.0.113.7"))
    assert said == [f"address | endpoints.allowed = {rules['endpoints']['allowed']} | "
                    "203.0.113.7 is not an allowed endpoint"]
    assert check(rules, HostSpec(name="h", address="lab.example.evil.com"))


def test_allowed_data_dirs() -> None:
    rules = {"data": {"allowed_dirs": ["/data", "~/llmops-data"]}}
    assert check(rules, run("r", dataset="/data/t/a.jsonl")) == []
    said = check(rules, run("r", dataset="/datasets/a.jsonl"))
    assert said[0].startswith("dataset | data.allowed_dirs") and "/datasets/a.jsonl" in said[0]
    assert check(rules, run("r", dataset="/data/a.jsonl", validation="/tmp/v.jsonl"))[0].startswith(
        "validation |")
    assert check(rules, HostSpec(name="h", local=True)) == []  # default ~/llmops-data/...
    said = check(rules, HostSpec(name="h", local=True, data_dirs=["/srv"]))
    assert said[0].startswith("data_dirs[0] | data.allowed_dirs")
    index = IndexSpec(name="i", host="g", collection="Docs", embed_server="e", source="/etc")
    assert check(rules, index)[0].startswith("source |")


def test_allowed_models_registry_pattern() -> None:
    rules = {"models": {"allowed": REGISTRY}}
    said = check(rules, server("a", model="Qwen/Qwen2.5-0.5B"), facts=CPU24)
    assert said == [f"model | models.allowed = {REGISTRY!r} | 'Qwen/Qwen2.5-0.5B' is not an "
                    "allowed model id"]
    assert check(rules, run("r", base="/models/tiny"))[0].startswith("base | models.allowed")
    # a looser pattern lets the org's ids through
    assert check({"models": {"allowed": r"^custom/.*$"}}, server("a", model="custom/m")) == []


def test_a_registry_id_is_a_hub_id_at_a_revision() -> None:
    """org/name:TAG is the hub model org/name at revision TAG (vLLM's --revision): the spec
    keeps model = org/name and args.revision = TAG, and the policy matches the id as given."""
    rules = {"models": {"allowed": REGISTRY}}
    pinned = server("a", model="custom/m:1.2")
    assert (pinned.model, pinned.args, pinned.model_id()) == ("custom/m", {"revision": "1.2"},
                                                              "custom/m:1.2")
    assert check(rules, pinned) == []
    assert check(rules, server("a", model="custom/m", args={"revision": "1.2"})) == []  # same
    assert server("a", model="custom/m:1.2", args={"revision": "0.9"}).args == {
        "revision": "1.2"}  # the id given is the version served
    said = check(rules, server("a", model="custom/m"))
    assert said == [f"model | models.allowed = {REGISTRY!r} | 'custom/m' is not an allowed "
                    "model id"]
    assert check(rules, server("a", model="custom/m:main"))  # a branch is not a version here
    # without a policy a pinned id is a plain hub id at a revision
    assert check({}, server("a", model="Qwen/Qwen2.5-0.5B:main")) == []


@pytest.mark.parametrize("bad", [
    "custom/m:1.2;rm -rf ~", "custom/m:$(id)", "custom/m:`id`", "custom/m:", "custom/m:a/b",
    "custom/m:1..2", "custom/m:-1", "custom/m:1.2\n", "custom/m:1.2 ", "custom/m:1.\x002",
    "custom/m:ü1", "custom/m:1:2", ":1.2", "/models/tiny:1.2/../x", "custom/m\n",
])
def test_a_bad_revision_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        server("a", model=bad)
    assert [e["loc"] for e in caught.value.errors()] == [("model",)], caught.value


def test_a_run_base_takes_a_revision() -> None:
    """A run's base may be pinned like a server's model; the registry rule matches it."""
    pinned = run("r", base="custom/m:1.2")
    assert (pinned.base, pinned.revision, pinned.model_id()) == ("custom/m", "1.2", "custom/m:1.2")
    rules = {"models": {"allowed": r"^(openai|anthropic|huggingface|custom)/[\w\-\.]+:\d+\.\d+$"}}
    assert check(rules, pinned) == []
    assert check(rules, run("r", base="custom/m"))[0].startswith("base | models.allowed")


def test_removals_are_never_refused() -> None:
    ctx = Context({}, lambda _k, _n: GPU4)
    rules = Policy.model_validate({"jobs": {"max_gpus": 0}, "models": {"allowed": "^x$"}})
    assert refusals(rules, [Change("server", "a", None)], ctx) == []


@pytest.mark.parametrize(("text", "said"), [
    ("[jobs]\nmax_gpus = 2\nmax_ram_gib = -1\n",
     "line 3: jobs.max_ram_gib: Input should be greater than or equal to 0"),
    ("[jobs]\nmax_gpus = 2\n\n[modelz]\nallowed = 'x'\n", "line 4: modelz: Extra inputs"),
    ("[models]\nallowed = '('\n", "line 2: models.allowed: Value error, not a regular expr"),
    ("[endpoints]\nallowed = ['10.0.0.0/33']\n", "line 2: endpoints.allowed: Value error"),
    ("[jobs\nmax_gpus = 2\n", "not valid TOML: Expected ']' at the end of a table declaration "
                              "(at line 1"),
])
def test_policy_file_is_validated_with_its_line(tmp_path: Path, text: str, said: str) -> None:
    (tmp_path / "policy.toml").write_text(text)
    with pytest.raises(LabFileError) as caught:
        load_policy(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'policy.toml'}: {said}"), caught.value


# -- through the real CLI ------------------------------------------------------------------
def nothing_written(lab: Path, log: list[str], rows: int) -> None:
    assert git_log(lab) == log
    assert sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[
        0] == rows


@pytest.fixture(scope="module")
def lab_with_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return local_host_lab(tmp_path_factory.mktemp("policy"))


def test_cli_refusals_name_rule_and_file(lab_with_local: Path) -> None:
    lab = lab_with_local
    policy = lab / "policy.toml"
    log = git_log(lab)
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    cases = [
        ("[endpoints]\nallowed = ['10.213.0.0/16']\n",
         ["host", "add", "far", "--address", "203.0.113.7"],
         "address: 203.0.113.7 is not an allowed endpoint: the policy rule endpoints.allowed"),
        (f"[models]\nallowed = '{REGISTRY}'\n",
         ["server", "up", "s", "--host", "local", "--model", "Qwen/Qwen2.5-0.5B"],
         "model: 'Qwen/Qwen2.5-0.5B' is not an allowed model id: the policy rule "
         "models.allowed"),
        ("[jobs]\nmax_ram_gib = 4\n",
         ["server", "up", "s", "--host", "local", "--model", "custom/m", "--cpu-kvcache-gib", "6"],
         "cpu_kvcache_gib: asks for 6 GiB of RAM: the policy rule jobs.max_ram_gib = 4"),
    ]
    try:
        for text, argv, said in cases:
            policy.write_text(text)
            done = llmops(lab, *argv, check=2)
            words = " ".join(done.stderr.split())
            assert said in words, words
            assert f"change the rule in {policy}" in words, words
            nothing_written(lab, log, rows)
        policy.write_text(cases[0][0])
        refused = llmops_json(lab, *cases[0][1], check=2)
        assert refused["exit_code"] == 2 and "endpoints.allowed" in refused["error"]
        # a broken policy file refuses every action, naming file and line
        policy.write_text("[jobs]\nmax_gpus = 'many'\n")
        done = llmops(lab, *cases[0][1], check=2)
        assert f"{policy}: line 2: jobs.max_gpus" in " ".join(done.stderr.split())
        nothing_written(lab, log, rows)
    finally:
        policy.unlink(missing_ok=True)


def test_policy_show(lab_with_local: Path) -> None:
    lab = lab_with_local
    shown = llmops_json(lab, "policy", "show")
    assert shown["exists"] is False and shown["file"] == str(lab / "policy.toml")
    assert shown["policy"]["jobs"] == {"max_gpus": 8, "max_ram_gib": 256}
    assert shown["policy"]["models"]["allowed"] is None
    (lab / "policy.toml").write_text("[jobs]\nmax_gpus = 2\n")
    try:
        shown = llmops_json(lab, "policy", "show")
        assert shown["exists"] and shown["policy"]["jobs"]["max_gpus"] == 2
        text = llmops(lab, "policy", "show").stdout
        assert "jobs.max_gpus" in text and "hosts.quota" in text
    finally:
        (lab / "policy.toml").unlink()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cache_at_revision(hf_home: Path, repo: str, tag: str, model: Path) -> Path:
    """The model's files in a Hugging Face cache as the hub leaves a tagged download:
    refs/TAG names a commit whose snapshot holds the files (no refs/main: only TAG is there)."""
    folder = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    commit = "c0ffee" + "0" * 34
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / tag).write_text(commit)
    snap = folder / "snapshots" / commit
    shutil.copytree(model, snap)
    return snap


@pytest.mark.vllm
def test_cli_registry_policy_serves_a_pinned_id_and_refuses_a_hub_id(
    lab_with_local: Path, tmp_path: Path
) -> None:
    """Under the registry pattern, through the real CLI: `custom/tiny:1.0` is served (vLLM
    loads custom/tiny at revision 1.0 from the host's HF cache, offline), `custom/tiny` and a
    bad revision are refused (exit 2, nothing written, the rule and the file named)."""
    require_vllm()
    lab = lab_with_local
    policy = lab / "policy.toml"
    policy.write_text(f"[models]\nallowed = '{REGISTRY}'\n")
    hf = tmp_path / "hf"
    cache_at_revision(hf, "custom/tiny", "1.0", tiny_model_dir())
    env = {"HF_HOME": str(hf), "HF_HUB_OFFLINE": "1"}
    up = ["server", "up", "reg", "--host", "local", "--dtype", "float32", "--max-model-len",
          "256", "--port", str(free_port()), "--cpu-kvcache-gib", "1", "--arg",
          "enforce-eager=true", *LOOSE_TARGETS, *INLINE]
    log = git_log(lab)
    rows = sqlite3.connect(lab / "lab.db").execute("select count(*) from events").fetchone()[0]
    try:
        for model, said in [
            ("custom/tiny", "model: 'custom/tiny' is not an allowed model id: the policy rule "
                            f"models.allowed = {REGISTRY!r} refuses it (use an id the rule "
                            "allows, or change the rule in"),
            ("custom/tiny:1.0;id", "model: 'custom/tiny:1.0;id': the revision after ':' must"),
        ]:
            done = llmops(lab, *up, "--model", model, check=2, env=env)
            words = " ".join(done.stderr.split())
            assert said in words, words
            if "policy" in said:
                assert f"change the rule in {policy}" in words, words
            nothing_written(lab, log, rows)

        served = json.loads(llmops(lab, *up, "--model", "custom/tiny:1.0", "--json", env=env,
                                   timeout=600).stdout)
        action = served["action"]
        assert served["ok"] and action["status"] == "succeeded", action
        assert all(c["ok"] for c in action["checks"]), action["checks"]
        spec = (lab / "servers" / "reg.toml").read_text()
        assert 'model = "custom/tiny"' in spec and 'revision = "1.0"' in spec, spec
        argv = json.loads((lab.parent / "work" / "run" / "reg" / "proc.json").read_text())
        assert "custom/tiny" in argv["argv"] and "--revision" in argv["argv"], argv
        assert argv["argv"][argv["argv"].index("--revision") + 1] == "1.0", argv
        listed = {s["name"]: s for s in llmops_json(lab, "server", "list")}
        assert listed["reg"]["state"] == "up" and listed["reg"]["model"] == "custom/tiny", listed
        # readiness looks the weights up at the pinned revision (the cache has only refs/1.0)
        drill = json.loads(llmops(lab, "drill", "server/reg", "--check", "--json",
                                  env=env).stdout)
        assert drill["ok"] and drill["readiness"]["blockers"] == [], drill
    finally:
        llmops(lab, "server", "down", "reg", check=None, env=env, timeout=300)
        policy.unlink(missing_ok=True)
