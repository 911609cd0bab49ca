.PHONY: test lint format all

test:            ## install what the tests need, then ruff + mypy + pytest
	./scripts/test

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

lint:
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

all: test
