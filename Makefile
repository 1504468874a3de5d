# Fresh machine: `make demo` or `make test`. Both create .venv and install the
# project (editable, with test extras) the first time, and again only when
# pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv demo test

venv: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[test,bench]'
	touch $(STAMP)

demo: venv
	$(VENV)/bin/tearline demo

test: venv
	$(VENV)/bin/python -m pytest
