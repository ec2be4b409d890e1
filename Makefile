# make run  — the whole product on this machine: SQLite, no broker server, panel :8000, relay :2587/:2465
# make test — the whole suite (DATABASE_URL selects PostgreSQL; SQLite otherwise)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install peers migrations messages bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_data
	$(PY) manage.py rundev

peers:
	bash .ci/peers

test: $(STAMP) peers
	mkdir -p var test-artifacts
	$(PY) -m pytest -n 2 --durations=30 $(PYTEST_ARGS)

# Models changed: migrations are regenerated until the first release.
migrations: $(STAMP)
	rm -f accounts/migrations/0*.py relay/migrations/0*.py
	$(PY) manage.py makemigrations accounts relay

# Translations: collect every marked string into locale/*/django.po, then compile the .mo files (committed, so that
# `make run` needs no gettext). Needs GNU gettext (Debian's gettext).
# The languages besides English (the source language); the same codes as settings.LANGUAGES.
I18N_LANGUAGES := de
I18N_IGNORE := --ignore=.venv --ignore=tests --ignore=bench --ignore=var --ignore=staticfiles --ignore=node_modules
messages: $(STAMP)
	$(PY) manage.py makemessages $(addprefix -l ,$(I18N_LANGUAGES)) --add-location=file --no-obsolete $(I18N_IGNORE)
	$(PY) manage.py compilemessages $(addprefix -l ,$(I18N_LANGUAGES)) $(I18N_IGNORE)

bench: $(STAMP) peers
	$(PY) bench/relay.py --bare

clean:
	rm -rf $(VENV) var test-artifacts
