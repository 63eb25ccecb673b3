"""Adapters end to end: the real `llmops` CLI, the engine, the journal, real peft adapters and
a real CPU vLLM.

One vLLM server (`lora`: enable_lora, runtime_lora, max_lora_rank 8) for the whole module;
starting vLLM is the slow part (~40 s on a quiet box). LoRA adapters are trained on the tiny
model with peft in one subprocess while the server starts (fixed seed, high learning rate, so
each visibly changes completions): A and B on different sentences, a fresh one (B = 0: the
base's no-op) and one of rank 16. The tests run in file order: deploy A, B over A (reloaded
in place, prefix cache reset), roll back to A by its sha (and the rollback of that rollback),
the versions git holds, merge A into a new model folder, refusals that write nothing, the
no-op adapter failing its checklist (reverted), undeploy (the store copies stay).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labtools import git_log, llmops
from realparts import require_vllm
from sharedserver import INLINE, LOOSE_TARGETS

from llmops.ops import procs
from llmops.ops.kinds.run.layout import SCRIPTS
from llmops.ops.kinds.server.client import VllmClient
from llmops.rollback.engine import Engine
from llmops.rollback.lab import Lab

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

require_vllm()

PORT = 18401
SLOW = 600  # seconds a CLI call that starts vLLM may take on a busy shared box
HOSTSIDE = Path(__file__).parent.parent / "ops" / "hostside"

MAKE = r'''
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tinymodel import make_tiny_model
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

base, out = Path(sys.argv[2]), Path(sys.argv[3])
make_tiny_model(base)
print("model", flush=True)
tok = AutoTokenizer.from_pretrained(base)

def make(name, text, r=8, steps=30, seed=0):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                        target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    if steps:
        ids = tok([text] * 8, return_tensors="pt").input_ids
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad()
    model.save_pretrained(out / name)

make("a", "The operator starts a server and watches the tokens flow.")
make("b", "Blue and green servers take turns being the live one.")
make("noop", "", steps=0)
make("rank16", "", r=16, steps=0)
print("adapters", flush=True)
'''


RUN_TEXT = "Every action is committed to git and journalled before it runs."
CFG = "0123456789ab"
"""The run's training config folder (the run kind names it by the spec's hash; any 12 hex
digits named by `current` will do for an adapter)."""


def start_trainer(model: Path, work: Path) -> subprocess.Popen[str]:
    """A finished run as the run kind leaves one on its host: <workdir>/runs/r1/current names
    the config whose folder holds data/train.jsonl and, once trainer.py is done, adapter/ and
    result.json (with its sha256 and probe prompt). Run here by hand with the real trainer."""
    out = work / "runs" / "r1" / CFG
    (out / "data").mkdir(parents=True)
    (out / "data" / "train.jsonl").write_text("".join(
        json.dumps({"text": RUN_TEXT}) + "\n" for _ in range(8)))
    (work / "runs" / "r1" / "current").write_text(CFG + "\n")
    config = {
        "base": str(model), "train_file": str(out / "data" / "train.jsonl"), "eval_file": None,
        "format": "text", "text_field": "text", "prompt_field": None, "completion_field": None,
        "messages_field": None, "r": 8, "alpha": 16, "dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"], "qlora": False, "lr": 1e-2, "epochs": 1.0,
        "max_steps": 20, "batch_size": 4, "grad_accum": 1, "max_seq_len": 64,
        "eval_steps": 50, "save_steps": 50, "logging_steps": 5,
        "early_stopping_patience": None, "seed": 0, "output_dir": str(out), "use_cpu": True,
        "spec_hash": CFG,
    }
    (out / "config.json").write_text(json.dumps(config))
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for script in SCRIPTS:
        (bin_dir / script).write_text((HOSTSIDE / script).read_text())
    return subprocess.Popen(
        [sys.executable, str(bin_dir / "trainer.py"), "train", str(out / "config.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def hand_edit(lab: Path, rel: str, text: str) -> None:
    """A file put into the lab's git by hand (a resource that is never reconciled)."""
    (lab / rel).parent.mkdir(exist_ok=True)
    (lab / rel).write_text(text)
    opened = Lab(lab)
    try:
        opened.commit(f"hand edit: {rel}", [rel])
    finally:
        opened.close()


@dataclass
class Setup:
    lab: Path
    engine: Engine
    work: Path
    model: Path
    adapters: Path

    def sha(self, folder: str) -> str:
        return self.engine.adapter_sha(None, str(self.adapters / folder), "local")

    def store(self, sha: str) -> Path:
        return self.work / "adapters" / sha

    def record(self, name: str = "chat") -> dict[str, Any]:
        """The adapter's record on the host: loaded sha, load seconds."""
        return dict(json.loads((self.work / "adapters" / f"{name}.json").read_text()))


def act(lab: Path, *args: str, check: int = 0) -> dict[str, Any]:
    """A CLI call with --json; an action's record, or a refusal."""
    return dict(json.loads(llmops(lab, *args, "--json", check=check, timeout=SLOW).stdout))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Host `local`, the tiny model, the adapters, and the server `lora`, taken down at the end
    with anything left on it."""
    root = tmp_path_factory.mktemp("adapters")
    model, adapters, lab, work = root / "tiny", root / "adapters", root / "lab", root / "work"
    trainer: subprocess.Popen[str] | None = None
    log = root / "make.log"  # peft's and transformers' chatter; read when something failed
    with open(log, "w") as sink:
        maker = subprocess.Popen([sys.executable, "-c", MAKE, str(HOSTSIDE), str(model),
                                  str(adapters)], stdout=subprocess.PIPE, stderr=sink, text=True)
    try:
        assert maker.stdout is not None
        assert maker.stdout.readline().strip() == "model", log.read_text()[-2000:]
        trainer = start_trainer(model, work)
        llmops(lab, "host", "add", "local", "--local", "--python", sys.executable,
               "--workdir", str(work))
        up = act(lab, "server", "up", "lora", "--host", "local", "--model", str(model),
                 "--dtype", "float32", "--max-model-len", "256", "--port", str(PORT),
                 "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", "--enable-lora",
                 "--runtime-lora", "--max-lora-rank", "8", *LOOSE_TARGETS, *INLINE)
        assert up["ok"], up["action"]
        assert maker.wait(timeout=600) == 0, log.read_text()[-2000:]
        assert maker.stdout.read().strip() == "adapters"
        assert trainer.wait(timeout=600) == 0
    finally:
        for proc in (maker, trainer):
            if proc is not None and proc.poll() is None:
                proc.kill()
    opened = Lab(lab)
    engine = Engine(opened)
    try:
        yield Setup(lab, engine, work, model, adapters)
    finally:
        for kind, name in opened.specs():
            if kind == "adapter":
                llmops(lab, "adapter", "undeploy", name, check=None, timeout=SLOW)
        llmops(lab, "server", "down", "lora", check=None, timeout=SLOW)
        procs.stop(engine.hosts.transport("local"), "lora")  # whatever happened above
        engine.close()
        opened.close()


def client(model: Path) -> VllmClient:
    return VllmClient(f"http://127.0.0.1:{PORT}", str(model))


def cards(model: Path) -> dict[str, dict[str, Any]]:
    with client(model) as c:
        return {str(card["id"]): card for card in c.model_cards()}


def answer(model: Path, prompt: str, name: str | None = None) -> str:
    with client(model) as c:
        return c.completion(prompt, max_tokens=16, model=name).text


def ok(result: dict[str, Any]) -> dict[str, Any]:
    """The action succeeded and every check passed; returns the action."""
    action = dict(result["action"])
    assert result["ok"] and action["status"] == "succeeded", json.dumps(action, indent=1)[:3000]
    assert action["checks"] and all(c["ok"] for c in action["checks"]), action["checks"]
    return action


def verbs(action: dict[str, Any], ref: str = "adapter/chat") -> list[str]:
    return [s["verb"] for s in action["steps"] if s["ref"] == ref and s["phase"] == "apply"]


def checks(action: dict[str, Any], phase: str = "apply") -> set[str]:
    return {c["name"] for c in action["checks"] if c["phase"] == phase}


PROMPT = "The operator"
FIGURES: dict[str, float] = {}
"""Measured along the way, printed at the end."""
ACTIONS: dict[str, int] = {}


def test_deploy_a_is_listed_and_answers_differently(setup: Setup) -> None:
    action = ok(act(setup.lab, "adapter", "deploy", "chat", "--path", str(setup.adapters / "a"),
                    "--server", "lora"))
    assert verbs(action) == ["fetch", "load"]
    assert checks(action) == {"listed", "completion", "differs from the base", "sha on the host"}
    sha = setup.sha("a")
    card = cards(setup.model)["chat"]
    assert card["root"] == str(setup.store(sha)) and card["parent"] == str(setup.model)
    assert answer(setup.model, PROMPT, "chat") != answer(setup.model, PROMPT)
    record = setup.record()
    assert record["sha"] == sha and record["load_seconds"] > 0
    FIGURES["load A"] = record["load_seconds"]
    [row] = json.loads(llmops(setup.lab, "adapter", "list", "--json").stdout)
    assert row["state"] == "deployed" and row["loaded"] and row["sha"] == sha[:12]
    assert row["load_seconds"] == record["load_seconds"]
    plan = json.loads(llmops(setup.lab, "plan", "--json").stdout)
    assert [r["steps"] for r in plan if r["resource"] == "adapter/chat"] == [[]]  # idempotent


def test_b_over_a_reloads_in_place(setup: Setup) -> None:
    a_text = answer(setup.model, PROMPT, "chat")
    action = ok(act(setup.lab, "adapter", "deploy", "chat", "--path",
                    str(setup.adapters / "b")))
    assert verbs(action) == ["fetch", "reload", "reset-prefix-cache"]
    reload = next(s for s in action["steps"] if s["verb"] == "reload")
    assert reload["ok"] and reload["seconds"] > 0  # journalled with the action
    sha = setup.sha("b")
    assert cards(setup.model)["chat"]["root"] == str(setup.store(sha))
    assert answer(setup.model, PROMPT, "chat") != a_text
    record = setup.record()
    assert record["sha"] == sha and record["inplace"] is True
    FIGURES["load B (in place)"] = record["load_seconds"]
    FIGURES["B over A, whole action"] = action["seconds"]
    ACTIONS["B"] = action["id"]


def test_rollback_reloads_a_by_its_sha(setup: Setup) -> None:
    a, b = setup.sha("a"), setup.sha("b")
    back = ok(act(setup.lab, "rollback", str(ACTIONS["B"])))
    assert verbs(back) == ["reload", "reset-prefix-cache"]  # A is in the store: no copy
    assert back["rollback_of"] == ACTIONS["B"]
    assert cards(setup.model)["chat"]["root"] == str(setup.store(a))
    assert setup.record()["sha"] == a
    assert {c["name"] for c in back["checks"]} >= {"sha on the host", "differs from the base"}
    FIGURES["rollback B -> A, whole action"] = back["seconds"]
    again = ok(act(setup.lab, "rollback", str(back["id"])))  # rollback of the rollback: B
    assert cards(setup.model)["chat"]["root"] == str(setup.store(b))
    ok(act(setup.lab, "rollback", str(again["id"])))
    assert cards(setup.model)["chat"]["root"] == str(setup.store(a))


def test_versions_from_git(setup: Setup) -> None:
    a, b = setup.sha("a"), setup.sha("b")
    versions = setup.engine.adapter_versions("chat")
    assert [v["sha256"] for v in versions] == [a, b, a, b, a]
    assert all(v["server"] == "lora" and v["commit"] and v["when"] for v in versions)
    shown = json.loads(llmops(setup.lab, "adapter", "show", "chat", "--json").stdout)
    assert [v["sha256"] for v in shown["versions"]] == [a, b]


def test_merge_makes_a_model_folder(setup: Setup) -> None:
    merged = setup.work.parent / "tiny-chat-a"
    action = ok(act(setup.lab, "adapter", "merge", "chat", "--into", str(merged)))
    assert verbs(action) == ["merge"] and "merged model" in checks(action)
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))
    loads = subprocess.run(
        [sys.executable, "-c", "import sys; from transformers import AutoModelForCausalLM as M;"
         " print(type(M.from_pretrained(sys.argv[1])).__name__)", str(merged)],
        capture_output=True, text=True, timeout=300)
    assert loads.returncode == 0 and "LlamaForCausalLM" in loads.stdout, loads.stderr[-2000:]
    # and a server serves it: the merged weights answer as the adapter does, not as the base
    up = act(setup.lab, "server", "up", "merged", "--host", "local", "--model", str(merged),
             "--dtype", "float32", "--max-model-len", "256", "--port", str(PORT + 1),
             "--cpu-kvcache-gib", "1", "--arg", "enforce-eager=true", *LOOSE_TARGETS, *INLINE)
    try:
        assert up["ok"], json.dumps(up["action"], indent=1)[:3000]
        with VllmClient(f"http://127.0.0.1:{PORT + 1}", str(merged)) as served:
            text = served.completion(PROMPT, max_tokens=16).text
        assert text != answer(setup.model, PROMPT)
        FIGURES["merged model served, same text as the adapter"] = float(
            text == answer(setup.model, PROMPT, "chat"))
    finally:
        llmops(setup.lab, "server", "down", "merged", check=None, timeout=SLOW)


def test_deploy_from_a_run(setup: Setup) -> None:
    """The run's final adapter (its current config's result.json names the sha), checked
    against the base on the run's own probe prompt."""
    hand_edit(setup.lab, "runs/r1.toml", f'host = "local"\nbase = "{setup.model}"\n'
              'dataset = "~/llmops-data/training/r1.jsonl"\nmax_steps = 20\nlr = 0.01\n')
    result = json.loads((setup.work / "runs" / "r1" / CFG / "result.json").read_text())
    assert setup.engine.adapter_sha("r1", None, None) == result["sha256"]
    action = ok(act(setup.lab, "adapter", "deploy", "tuned", "--run", "r1", "--server", "lora"))
    assert verbs(action, "adapter/tuned") == ["fetch", "load"]
    differs = next(c for c in action["checks"] if c["name"] == "differs from the base")
    assert repr(result["probe_prompt"][:40]) in differs["detail"], differs
    assert cards(setup.model)["tuned"]["root"] == str(setup.store(result["sha256"]))
    ok(act(setup.lab, "adapter", "undeploy", "tuned"))
    assert "tuned" not in cards(setup.model)


def test_refusals_exit_2_and_write_nothing(setup: Setup) -> None:
    lab = setup.lab
    hand_edit(lab, "servers/plain.toml",  # in the lab, never started: LoRA but not at run time
              f'host = "local"\nmodel = "{setup.model}"\nenable_lora = true\nport = 18402\n')
    hand_edit(lab, "runs/r2.toml",  # in the lab, never trained
              f'host = "local"\nbase = "{setup.model}"\n'
              'dataset = "~/llmops-data/training/r2.jsonl"\n')
    before = (git_log(lab), len(setup.engine.lab.journal.events()))
    # a rank above the server's: r = 16 in the folder's adapter_config.json, the server takes 8
    error = act(lab, "adapter", "deploy", "big", "--path", str(setup.adapters / "rank16"),
                "--server", "lora", check=2)["error"]
    assert "r = 16" in error and "max_lora_rank 8" in error
    # a server without runtime LoRA
    error = act(lab, "adapter", "deploy", "plain", "--path", str(setup.adapters / "a"),
                "--server", "plain", check=2)["error"]
    assert "set runtime_lora = true (and enable_lora)" in error
    # a run that is not done
    error = act(lab, "adapter", "deploy", "early", "--run", "r2", "--server", "lora",
                check=2)["error"]
    assert "run r2 is not done" in error
    # a sha the folder does not have (a hand edit), nor the store
    (lab / "adapters" / "wrong.toml").write_text(
        f'server = "lora"\npath = "{setup.adapters / "a"}"\nsha256 = "{"c" * 64}"\n')
    try:
        error = act(lab, "apply", check=2)["error"]
    finally:
        (lab / "adapters" / "wrong.toml").unlink()
    assert f"is {setup.sha('a')} on the host local" in error
    assert (git_log(lab), len(setup.engine.lab.journal.events())) == before
    assert set(cards(setup.model)) == {str(setup.model), "chat"}


def test_a_no_op_adapter_fails_its_checklist(setup: Setup) -> None:
    """A fresh LoRA (B = 0) answers exactly as the base: deployed, checked, reverted."""
    result = act(setup.lab, "adapter", "deploy", "zero", "--path",
                 str(setup.adapters / "noop"), "--server", "lora", check=1)
    action = result["action"]
    assert action["status"] == "failed, reverted", action["status"]
    failed = [c["name"] for c in action["checks"] if not c["ok"] and c["phase"] == "apply"]
    assert failed == ["differs from the base"], action["checks"]
    assert verbs(action, "adapter/zero") == ["fetch", "load"]
    reverted = [s["verb"] for s in action["steps"] if s["phase"] == "revert"]
    assert reverted == ["unload"]
    assert "zero" not in cards(setup.model)
    assert not (setup.lab / "adapters" / "zero.toml").exists()


def test_undeploy_unloads_and_keeps_the_store(setup: Setup) -> None:
    action = ok(act(setup.lab, "adapter", "undeploy", "chat"))
    assert verbs(action) == ["unload"]
    assert checks(action) == {"not listed", "store copy kept"}
    assert "chat" not in cards(setup.model)
    for folder in ("a", "b"):
        assert (setup.store(setup.sha(folder)) / "adapter_model.safetensors").is_file()
    assert not (setup.work / "adapters" / "chat.json").exists()
    print("\nadapter figures (s):", json.dumps(FIGURES))
