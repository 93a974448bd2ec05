# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/carbon-ledger
STAMP_PY   := $(VENV)/.installed
STAMP_NODE := node_modules/.installed

.PHONY: setup demo test lint bench compile clean

setup: $(STAMP_PY) $(STAMP_NODE)

$(STAMP_PY): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(CLI) demo $(ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check ledger chain api scripts tests
	$(VENV)/bin/mypy ledger chain api

bench: setup
	$(PY) scripts/bench_seal.py $(ARGS)

compile: setup
	$(CLI) compile

clean:
	rm -rf $(VENV) node_modules .carbon-ledger .pytest_cache
