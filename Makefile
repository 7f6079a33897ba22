# harmonia: the two quick-start commands (`make demo`, `make test`) and a few helpers.
# Each target creates or reuses the local virtualenv in .venv, installed against the
# committed constraints so a fresh machine resolves the same package versions.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format install clean screenshot

# extras: dev (pytest, ruff) and bench (dlt, which tests/test_bench.py compares with, and
# the profilers: about 10 s more to install)
$(STAMP): pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c .ci/constraints.txt -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/harmonia demo

test: $(STAMP)
	$(BIN)/ruff check flows tests
	$(BIN)/ruff format --check flows tests
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check flows tests

format: $(STAMP)
	$(BIN)/ruff format flows tests
	$(BIN)/ruff check --fix flows tests

clean:
	rm -rf var dbt_project/target dbt_project/logs

# Render the demo report in headless Chromium (if installed) and save a screenshot next to it:
# the eyes-on check behind the report's strict-SVG test.
screenshot: $(STAMP)
	@command -v chromium >/dev/null || { echo "chromium not found (apt-get install chromium)"; exit 1; }
	chromium --headless --no-sandbox --disable-gpu --no-first-run --window-size=1280,2400 \
	  --screenshot=var/reports/harmonia-report.png "file://$(CURDIR)/var/reports/harmonia-report.html"
	@echo var/reports/harmonia-report.png
