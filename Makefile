# il6rcc: `make run` runs the default job, `make test` runs the tests.
# Both create .venv with Python >= 3.12 when it is missing.

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= configs/default.yaml
OUT    ?= runs/default
PYTEST_ARGS ?=
# Test files run in parallel processes (pytest-xdist), one file per process so that a
# file's shared fixtures are built once; one more process than cores (some tests mostly
# wait on subprocesses or Slurm), at most 4. Files start in the order
# tests/conftest.py gives them (the long ones first), not by their number of tests.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n + 1 : 4 )))

# Find a Python >= 3.12: on PATH first (python3.12, python3.13, python3), then pyenv.
define FIND_PYTHON
ok() { "$$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }; \
if command -v python3.12 >/dev/null 2>&1 && ok python3.12; then command -v python3.12; exit 0; fi; \
if command -v pyenv >/dev/null 2>&1; then \
  for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$$' | sort -V -r); do \
    p=$$(PYENV_VERSION=$$v pyenv which python3 2>/dev/null) && ok "$$p" && { echo "$$p"; exit 0; }; \
  done; \
fi; \
for c in python3.13 python3.14 python3; do \
  if command -v $$c >/dev/null 2>&1 && ok $$c; then command -v $$c; exit 0; fi; \
done; \
if command -v pyenv >/dev/null 2>&1; then \
  for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9](\.[0-9]+)?$$' | sort -V -r); do \
    p=$$(PYENV_VERSION=$$v pyenv which python3 2>/dev/null) && ok "$$p" && { echo "$$p"; exit 0; }; \
  done; \
fi; \
echo "no Python >= 3.12 found on PATH or in pyenv; install one (e.g. 'pyenv install 3.12')" >&2; exit 1
endef

.PHONY: run test test-slow lint format bench lock clean

$(STAMP): pyproject.toml requirements-lock.txt
	@if [ ! -x $(PY) ]; then \
	  py=$$($(FIND_PYTHON)) || exit 1; \
	  echo "creating $(VENV) with $$py"; \
	  "$$py" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements-lock.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/il6rcc fit $(CONFIG) --out $(OUT)

test: $(STAMP)
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-slow: $(STAMP)
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m pip install -q -c requirements-lock.txt -e '.[dev,bench]'
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) benchmarks/run_all.py

# Record exactly what was installed (the lock CI installs against).
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements-lock.txt

clean:
	rm -rf $(VENV) runs build *.egg-info
