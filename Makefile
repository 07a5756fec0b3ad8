# The two commands (README): `make demo` runs the bridge against the embedded sandbox,
# `make test` runs every check CI runs. Both set up what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit services screenshots bench-console clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m scim_bridge demo

services:
	bash scripts/ensure-services

# The README's console pictures, taken by the browser tests' Chromium (tests/console/test_browser.py).
screenshots: $(STAMP)
	bash scripts/ensure-browser
	SCIM_BRIDGE_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/console/test_browser.py -k screenshots

# The console's pages over 100,000 jobs (bench/console.py; figures in the README).
bench-console: $(STAMP)
	$(BIN)/python bench/console.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) services
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
