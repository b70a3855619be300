# navigator: the two commands a new user needs are `make run` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
CONFIG  ?= config.example.yml

.PHONY: install compiled pure run test test-fast test-pure lint bench check docs image-check \
        dist clean

# The development install is editable and pure Python (an edit takes effect at once).
# `make compiled` compiles the request path with mypyc in place (about 45 s on 2 cores);
# the sources then run only after `make compiled` again (the tests refuse a stale build),
# and `make pure` goes back. `pip install .` (the Dockerfile, make dist) compiles when a C
# compiler is present; NAVIGATOR_PURE=1 forces pure Python. `navigator --version` says which.
$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	NAVIGATOR_PURE=1 $(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# mypyc leaves an unchanged library's file (and time) alone: touch it so that the staleness
# check (tests/conftest.py) compares sources with this build, not the last different one.
compiled: install
	$(PY) setup.py -q build_ext --inplace
	touch navigator/_native__mypyc.*
	-@$(VENV)/bin/navigator --version

pure:
	find navigator -name '*.so' -delete
	rm -rf build/temp.* build/lib.* build/navigator build/__native*
	-@$(VENV)/bin/navigator --version

## Serve the bundled demo (three todo-list tenants, landing page) on http://localhost:3000/
run: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m navigator --config $(CONFIG)

## Unit and integration tests (real server, real tenant processes, loopback only)
test: install
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

## The unit tests on pure Python, whichever build is in place (CI: the suite runs compiled)
test-pure: install
	tree=$$(mktemp -d) && trap 'rm -rf "$$tree"' EXIT && \
	  tar -c --exclude=./$(VENV) --exclude=./build --exclude=./dist --exclude=./.git \
	    --exclude='*.so' --exclude=__pycache__ . | tar -x -C "$$tree" && \
	  cd "$$tree" && PYTHONPATH="$$tree" $(CURDIR)/$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: install
	$(VENV)/bin/ruff check navigator tests benchmarks examples setup.py
	$(VENV)/bin/mypy

check: install
	$(PY) -m navigator check $(CONFIG)

## Regenerate docs/configuration.md from the config schema (a test fails when it is stale)
docs: install
	$(PY) -m navigator.config.docs

## Lint the Dockerfile and run its steps in a temp venv (no Docker needed; CI runs this)
image-check:
	bash .ci/image-steps

## Benchmarks against nginx and Caddy on this machine (installs them if missing)
bench: install
	$(PY) benchmarks/run.py $(BENCH_ARGS)

## Self-contained navigator in dist/navigator/ (PyInstaller one-folder: interpreter included,
## needs only glibc); copy the folder into any glibc image. See docs/frameworks.md.
DIST_VENV    := build/dist-venv
DIST_SOURCES := $(shell find navigator -name '*.py') pyproject.toml setup.py packaging/navigator.spec \
                packaging/entry.py

$(DIST_VENV)/.installed: packaging/requirements.txt pyproject.toml setup.py
	rm -rf $(DIST_VENV)
	$(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/pip install -q --disable-pip-version-check -r packaging/requirements.txt .
	touch $@

dist/navigator/navigator: $(DIST_VENV)/.installed $(DIST_SOURCES)
	$(DIST_VENV)/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall .
	rm -rf build/lib
	$(DIST_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist \
	  --workpath build/pyinstaller packaging/navigator.spec
	touch $@

dist: dist/navigator/navigator
	@du -sh dist/navigator

clean: pure
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info build dist
