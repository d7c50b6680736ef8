# Two commands on a fresh machine with Python 3.11:  `make run`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PORT ?= 8000
BIN := $(VENV)/bin

.PHONY: run test lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: serve the API and the pollers on 127.0.0.1:$(PORT) with SQLite (./newsloom.db), without API keys
## (loopback only; `NEWSLOOM_AUTH=on make run` to require them)
NEWSLOOM_AUTH ?= off
run: install
	NEWSLOOM_AUTH=$(NEWSLOOM_AUTH) $(BIN)/newsloom serve --migrate --host 127.0.0.1 --port $(PORT)

## test: run the test suite (PostgreSQL too when NEWSLOOM_TEST_POSTGRES_URL is set)
test: install-test
	$(BIN)/python -m pytest

## lint: ruff (lint and import order) on the code, tests and benchmarks; mypy on service/; the layers (import-linter)
lint: install-test
	$(BIN)/ruff check service tests bench migrations
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
