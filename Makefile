# Two commands do everything: `make run` and `make test`. Both start with `make install`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Off this network, the CPU build of torch comes from PyTorch's index:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
PIP_INDEX_ARGS := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

.PHONY: install run test test-fast test-postgres lint typecheck bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_INDEX_ARGS) -c constraints.txt -e '.[dev]'
	touch $@

run: install
	$(PY) -m app serve --questions questions  # migrate, import questions/, serve

lint: install
	$(PY) -m ruff check app tests bench migrations
	$(PY) -m ruff format --check app tests bench migrations
	$(PY) -m mypy

test: install lint
	$(PY) -m pytest

# The inner loop: everything but the tests marked slow (a real browser, servers killed and
# started again, every sandbox attack); no lint. `make test` runs them all.
test-fast: install
	$(PY) -m pytest -m "not slow"

# The whole suite again on a throwaway PostgreSQL server of its own (Debian's package);
# the code is the same, so `make test` has linted it.
test-postgres: install
	TRACEWISE_TEST_DATABASE=postgresql $(PY) -m pytest

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
