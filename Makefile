# Two commands do all the set-up on a fresh machine:  make demo  and  make test.
# The virtual environment gets the CPU build of torch first (a bare `torch` requirement can pull a
# multi-GB CUDA build). Elsewhere, point pip at a CPU wheel index: make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= test,train,bench,langchain,llamaindex
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install postgres bubblewrap demo test fresh-install-check bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

# The fleet tests start a real PostgreSQL server (Debian's postgresql package); install it when missing.
# Where it cannot be installed (no root, no apt), those tests skip and say why.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
	  echo "PostgreSQL could not be installed: the fleet tests will be skipped"

# Code answers are graded in a bubblewrap sandbox (Debian's bubblewrap package); install it when missing.
# Where it cannot be installed, code grading refuses (run_code=True) and the sandbox tests skip and say why.
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || \
	  (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) || \
	  echo "bubblewrap could not be installed: code grading is off and its tests will be skipped"

demo: install
	$(VENV)/bin/scope demo

test: install postgres bubblewrap
	$(PY) -m ruff check .
	$(PY) -m pytest -q -ra
	$(MAKE) fresh-install-check

# CI: the package with one framework's extra in a fresh environment runs that framework's doc examples
fresh-install-check:
	TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)" TORCH_SPEC="$(TORCH_SPEC)" PYTHON=$(PYTHON) .ci/fresh_venv_check.sh langchain
	TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)" TORCH_SPEC="$(TORCH_SPEC)" PYTHON=$(PYTHON) .ci/fresh_venv_check.sh llamaindex

bench: install
	$(PY) benchmarks/routing_quality.py

clean:
	rm -rf $(VENV) build *.egg-info
