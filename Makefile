# chatcommerce developer commands. `make demo` and `make test` are the two a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install install-test lint serve bench dialogues clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

install: $(BIN)/python
	$(BIN)/pip install -e .

install-test: $(BIN)/python
	$(BIN)/pip install -e '.[test]'

demo: install
	$(BIN)/chatcommerce demo --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/lint-imports
	$(BIN)/ruff check core knowledge commerce bot channels api tests
	$(BIN)/pytest -q $(PYTEST_ARGS)

dialogues: install-test
	$(BIN)/chatcommerce test-dialogues tests/dialogues/*.yaml

serve: install
	$(BIN)/chatcommerce serve --host $(HOST) --port $(PORT)

bench: install
	$(BIN)/python bench/bench_search.py

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm
