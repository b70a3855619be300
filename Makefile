# navigator: the two commands a new user needs are `make run` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
CONFIG  ?= config.example.yml

.PHONY: install run test test-fast lint bench check docs image-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Serve the bundled demo (three todo-list tenants, landing page) on http://localhost:3000/
run: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m navigator --config $(CONFIG)

## Unit and integration tests (real server, real tenant processes, loopback only)
test: install
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: install
	$(VENV)/bin/ruff check navigator tests benchmarks examples
	$(VENV)/bin/mypy

check: install
	$(PY) -m navigator check $(CONFIG)

## Regenerate docs/configuration.md from the config schema (a test fails when it is stale)
docs: install
	$(PY) -m navigator.docs

## Lint the Dockerfile and run its steps in a temp venv (no Docker needed; CI runs this)
image-check:
	bash .ci/image-steps

## Benchmarks against nginx and Caddy on this machine (installs them if missing)
bench: install
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
