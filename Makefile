# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/carbon-ledger
STAMP_PY   := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
STAMP_WEB  := web/dist/.built
DATA       ?= .carbon-ledger
PORT       ?= 8000

.PHONY: setup demo test web-test lint bench compile clean

setup: $(STAMP_PY) $(STAMP_NODE) $(STAMP_WEB)

$(STAMP_PY): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser pages (web/), built from the pinned npm packages into web/dist.
$(STAMP_WEB): $(STAMP_NODE) $(shell find web/src web/examples -type f) web/build.mjs
	node web/build.mjs
	touch $@

# The demo day, then the ledger served with its pages: prints the URL and credentials.
demo: setup
	$(CLI) demo --data-dir $(DATA) $(ARGS)
	$(PY) -m api.http.web $(DATA) http://127.0.0.1:$(PORT)
	$(CLI) serve --data-dir $(DATA) --port $(PORT)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The pages' suites alone: the verifier's node suites, then green credit, the campaign page
# and audit jobs in Chromium on a ledger of their own (`make test` runs these and the
# demo-ledger browser suite through tests/web/test_browser.py).
web-test: setup
	node --test web/test/verifier.test.mjs web/test/corpus.test.mjs web/test/signing.test.mjs web/test/messages.test.mjs
	node --test --test-reporter=spec web/test/ledger-features.browser.test.mjs

lint: setup
	$(VENV)/bin/ruff check ledger chain api scripts tests
	$(VENV)/bin/mypy ledger chain api

bench: setup
	$(PY) scripts/bench_seal.py $(ARGS)

compile: setup
	$(CLI) compile

clean:
	rm -rf $(VENV) node_modules .carbon-ledger .pytest_cache web/dist
