# Two commands matter on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test unit functional bench demo lint typecheck duplicates mutation clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU build of torch lies on this machine's disk; installing it first keeps pip
	# from resolving a multi-GB CUDA build for the `torch>=` requirement below
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,realdata]'
	touch $(STAMP)

venv: $(STAMP)

# the dashboard's browser test (tests/functional/ui_browser.py) drives Debian's chromium through
# chromium-driver; its screenshot lands in ./test-artifacts/
ARTIFACTS := NEURO_TEST_ARTIFACTS=$(CURDIR)/test-artifacts

browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

test: $(STAMP) browser
	$(ARTIFACTS) $(BIN)/python -m pytest -q -n 2 --dist loadfile tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 tests/unit

functional: $(STAMP) browser
	$(ARTIFACTS) $(BIN)/python -m pytest -q tests/functional

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

demo: $(STAMP)
	$(BIN)/neuro devnet demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# not in CI: tens of minutes on 2 cores; MODULES="pow encoding" for a part (tests/mutation/run.sh)
mutation: $(STAMP)
	PYTHON=$(abspath $(BIN))/python bash tests/mutation/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache test-artifacts
