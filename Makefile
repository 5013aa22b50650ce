# Every entry point of the project. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSOLE := $(VENV)/bin/insole
SHARED ?= ../shared
PORT ?= /dev/ttyUSB0
DEMO_OUT ?= demo-out
DEMO_SECONDS ?= 60

.PHONY: help setup test demo bench lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

$(VENV)/.stamp: requirements-dev.txt host/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e host
	touch $@

setup: $(VENV)/.stamp ## build .venv/ with the pinned packages and the insole package

test: setup ## run the whole suite (host, firmware under MicroPython, end to end)
	$(PY) -m pytest tests

demo: setup ## simulate a two-foot run on ptys, record it over serial, analyse it
	$(PY) tools/demo.py --out $(DEMO_OUT) --seconds $(DEMO_SECONDS)

bench: setup ## print decode/analyse speed, memory and accuracy figures
	$(PY) bench/run.py

.PHONY: hardware
hardware: setup ## regenerate hardware/svg/*.svg and bom.md from hardware/*, print the divider table
	$(PY) tools/hardware_svg.py
	$(PY) tools/hardware_bom.py
	$(PY) tools/hardware_divider.py

lint: setup ## ruff check
	$(VENV)/bin/ruff check host tests tools bench

clean: ## remove the venv, build output and demo output
	rm -rf $(VENV) build $(DEMO_OUT) node_modules
