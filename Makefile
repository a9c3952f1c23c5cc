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
SYSTEM_TOOLS := cmake:cmake

.PHONY: demo test install fmus system-deps lint clean

demo: fmus
	$(PY) scripts/demo.py

test: fmus system-deps
	$(PY) -m pytest

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

lint: $(INSTALLED)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) runs build *.egg-info
