# The README's two commands: `make demo` (the main job) and `make test`.
# Both set up .venv on first use: CPU torch first (so pip never pulls a CUDA build),
# then birthlens in editable mode with its test extras.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.birthlens-installed
OUT ?= demo-out

.PHONY: setup browser demo test test-all bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/birthlens demo --out $(OUT)

# The browser tests open a report in Debian's headless Chromium; they skip without it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; \
	    else echo "chromium not found and cannot install it here: browser tests will skip"; fi; }

test: setup browser
	$(BIN)/python -m pytest -q

test-all: setup browser
	$(BIN)/python -m pytest -q --runslow

bench: setup
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
