# Two commands set everything up: `make run` and `make test`. Both create the virtualenv when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run test check lint ui install clean

# The stamp is rebuilt when the project's dependencies change.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Dagster's instance (runs, event log, schedules: SQLite) lives in $DAGSTER_HOME, configured by platform/dagster.yaml.
# Copied only when missing: a deployment's own dagster.yaml (platform/dagster-postgres.yaml, say) is never replaced.
$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	cp platform/dagster.yaml $@

run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m daily_bids run

# Every lane on both cores; a module's tests share one worker, so its expensive fixtures are built once.
test: install lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The edit-test loop: lint and the unit lane.
check: install lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -m unit tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf $(VENV) .dagster_home warehouse
