# twinfactory: the two commands a user needs are `make demo` and `make test`.
# Both work from a fresh clone on a machine with Python >= 3.11, a C compiler and apt.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed
# torch first, pinned, so that nothing resolves torch to a CUDA build.
TORCH_SPEC ?= torch==2.13.0
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Debian packages the tests need, installed only when the command is missing. PostgreSQL's
# initdb lives outside PATH on Debian (/usr/lib/postgresql/<major>/bin), so it is looked up there.
SYSTEM_TOOLS := cmake:cmake mosquitto:mosquitto mosquitto_pub:mosquitto-clients chromium:chromium chromedriver:chromium-driver
# Test tools for the minimum-versions job (not themselves under test there).
TEST_TOOLS := "pytest>=8,<10" "pytest-xdist>=3.5,<4" "pytest-timeout>=2.3,<3" "psycopg[binary]>=3.2,<4" "dask[distributed]>=2024.1,<2027" "selenium>=4.20,<5" "httpx>=0.27,<1"

PACKAGES := envs agents optimizers federation edge_bridge fmus
PYTHON_SOURCES := $(PACKAGES) scripts tests .ci

.PHONY: demo test install fmus system-deps lint test-min clean

demo: fmus
	$(PY) scripts/demo.py

# The test command (CI runs exactly this): lint, format check and type check, then the suite,
# spread over PYTEST_WORKERS processes (pytest-xdist; one test file stays on one worker, so a
# module's fixtures are built once). PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)
test: fmus system-deps lint
	$(PY) -m pytest $(PYTEST_PARALLEL)

install: $(INSTALLED)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e ".[dev]"
	touch $(INSTALLED)

fmus: $(INSTALLED)
	$(PY) -m fmus build

system-deps:
	@missing=""; for entry in $(SYSTEM_TOOLS); do \
	  command -v "$${entry%%:*}" >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; \
	done; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

# ruff (rules in pyproject.toml, incl. annotations on public functions), the formatter's check,
# and mypy over the packages (its settings in pyproject.toml). Any finding fails.
lint: $(INSTALLED)
	$(PY) -m ruff check $(PYTHON_SOURCES)
	$(PY) -m ruff format --check $(PYTHON_SOURCES)
	$(PY) -m mypy

# The declared dependency floors, tested: a second venv with every runtime dependency at its
# '>=' floor from pyproject.toml (torch at the CPU build this machine has), then the suite.
MIN_VENV := .venv-min
MIN_PYTEST_ARGS ?=
test-min: fmus system-deps
	rm -rf $(MIN_VENV) && $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet $(TORCH_SPEC)
	$(PY) .ci/lowest_requirements.py | grep -v '^torch==' > $(MIN_VENV)/floors.txt
	$(MIN_VENV)/bin/python -m pip install --quiet -r $(MIN_VENV)/floors.txt $(TEST_TOOLS)
	$(MIN_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(MIN_VENV)/bin/python -m pip check
	$(MIN_VENV)/bin/python -m pytest -q $(PYTEST_PARALLEL) $(MIN_PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(MIN_VENV) runs build *.egg-info
