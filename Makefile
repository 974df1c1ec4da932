# HRM-CodeGen Gate. `make run` starts the app, `make test` runs the tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
HOST ?= 127.0.0.1
PORT ?= 8501
MBPP ?= ../shared/data/mbpp/mbpp.jsonl

.PHONY: setup sysdeps run test bench bench-exec bench-stats clean

setup: $(STAMP)

# Re-installs only when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

run: setup
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

# System packages the tests use: a real Prometheus, Debian's chromium (the browser test),
# poppler-utils (pdftoppm); installed with apt-get where we are root.
SYSDEPS := prometheus chromium poppler-utils
sysdeps:
	@missing=""; for c in prometheus chromium pdftoppm; do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSDEPS); \
	  else echo "note: $(SYSDEPS) are not all installed and we are not root: their tests will be skipped"; fi; fi

test: setup sysdeps
	$(PY) -m pytest -q

# Efficiency: HRM-27M vs GPT-2-124M (architecture, random weights), side by side in one run.
bench: setup
	mkdir -p results
	$(PY) -m core bench --model hrm:27m --model hf-arch:gpt2 --data-path $(MBPP) --out results/bench.json

bench-exec: setup
	mkdir -p results
	$(PY) -m core bench-exec --data-path $(MBPP) --out results/bench_exec.json

bench-stats: setup
	$(PY) -m core bench-stats

clean:
	rm -rf $(VENV) .pytest_cache
