# Every entry point of the project. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSOLE := $(VENV)/bin/insole
SHARED ?= ../shared
PORT ?= /dev/ttyUSB0
DEMO_OUT ?= demo-out
DEMO_SECONDS ?= 60

.PHONY: help setup test test-fast test-repeat test-deps demo demo-live demo-ble bench fuzz lint clean
.PHONY: firmware firmware-pins deploy flash typecheck-firmware demo-firmware
# Firmware: compiled into FW_BUILD; stubs for the type check live in STUBS, never in the venv.
FW_BUILD := build/firmware
STUBS := .stubs
ESP32_STUBS_VERSION := 1.29.0.post1
MPREMOTE := $(VENV)/bin/mpremote
IMAGE ?=
FLASH_CHIP ?= esp32
FLASH_OFFSET ?= 0x1000

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

$(VENV)/.stamp: requirements-dev.txt host/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e host
	touch $@

# The MicroPython WebAssembly port that runs the firmware tests (pinned in package-lock.json).
node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(STUBS)/.stamp-$(ESP32_STUBS_VERSION): | $(VENV)/.stamp
	rm -rf $(STUBS)
	$(PY) -m pip install --quiet --target $(STUBS) "micropython-esp32-stubs==$(ESP32_STUBS_VERSION)"
	touch $@

setup: $(VENV)/.stamp node_modules/.stamp $(STUBS)/.stamp-$(ESP32_STUBS_VERSION) ## build .venv/ (pinned packages, insole), node_modules/ (MicroPython wasm) and .stubs/

# The suite in two phases (docs/testing.md). 1: every test not marked live, on TEST_JOBS pytest-xdist
# workers (default: one per core); --dist loadgroup keeps tests that share a module-scoped fixture
# or cache on one worker (tests/conftest.py). 2: the live tests (ptys, threads, processes paced in
# real time), one at a time with no other worker competing for the CPU, as they were tuned.
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
PYTEST_PAR := -n $(TEST_JOBS) --dist loadgroup

test: setup test-deps ## run the whole suite (host, firmware under MicroPython, end to end): non-live tests on TEST_JOBS (nproc) workers, then the live ones
	@rc=0; $(PY) -m pytest tests $(PYTEST_PAR) -m "not live" || rc=1; \
	$(PY) -m pytest tests -m live || rc=1; exit $$rc

test-fast: setup ## the suite without the tests marked slow (a quick loop while developing)
	@rc=0; $(PY) -m pytest tests $(PYTEST_PAR) -m "not slow and not live" || rc=1; \
	$(PY) -m pytest tests -m "live and not slow" || rc=1; exit $$rc

REPEAT ?= 20
test-repeat: setup ## the tests that start processes, threads or ptys, REPEAT (20) times in a row; stops at the first failure
	@for i in $$(seq 1 $(REPEAT)); do \
	  echo "== run $$i of $(REPEAT)"; \
	  $(PY) -m pytest tests -m live -q || { echo "test-repeat: run $$i of $(REPEAT) FAILED"; exit 1; }; \
	done; echo "test-repeat: $(REPEAT) of $(REPEAT) runs passed"

# The report's page is checked in a real headless Chromium and the live window runs under Xvfb
# with Tk. Installed from Debian's packages when missing; where apt cannot (not root, no apt,
# offline) this says so and those tests skip with a reason; it never fails the build.
TEST_DEBS := chromium xvfb xauth python3-tk
test-deps: ## install chromium, xvfb and python3-tk for the report and live-window tests (apt; skips if it cannot)
	@if command -v chromium >/dev/null && command -v xvfb-run >/dev/null && $(PY) -c "import tkinter" 2>/dev/null; then \
	  exit 0; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "test-deps: installing $(TEST_DEBS) with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEBS) >/dev/null) \
	    || echo "test-deps: apt-get could not install $(TEST_DEBS); the browser and window tests will skip"; \
	else \
	  echo "test-deps: chromium/xvfb/tk missing and apt-get unavailable (or not root); the browser and window tests will skip"; \
	fi

demo: setup ## simulate a two-foot run on ptys, record it over serial, analyse it, write its report
	$(PY) tools/demo.py --out $(DEMO_OUT) --seconds $(DEMO_SECONDS)

demo-live: setup ## open the live window on a simulated two-foot run (needs a display)
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
	  echo "demo-live: no display (DISPLAY unset); try: $(INSOLE) live sim://heel-striker --headless --frames 150 --png live.png"; exit 2; fi
	$(INSOLE) live "sim://heel-striker?side=left&duration_s=600" "sim://heel-striker?side=right&duration_s=600"

demo-ble: setup ## two virtual insoles on a virtual BLE radio, recorded over ble://, analysed, scored (FIRMWARE=1: the real firmware)
	$(PY) tools/demo_ble.py --out $(DEMO_OUT)-ble --seconds $(DEMO_SECONDS) $(if $(FIRMWARE),--firmware)

FUZZ_N ?= 1000000
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
fuzz: setup ## FUZZ_N (1000000) random and mutated inputs through the decoder and every file reader over FUZZ_JOBS processes; exits 1 on a crash (input saved in build/fuzz/)
	$(PY) tools/fuzz.py --n $(FUZZ_N) --jobs $(FUZZ_JOBS) --out build/fuzz

bench: setup ## print host speed and memory, accuracy against truth, firmware cost per sample set
	$(PY) bench/run.py

.PHONY: compare-coverage
COVERAGE_ARGS ?=
compare-coverage: setup ## coverage study of `insole compare`'s 95 % intervals (~15 min; COVERAGE_ARGS="--runs 6 --truth-runs 6" for a quick look; figures in docs/analysis.md)
	$(PY) bench/compare_coverage.py $(COVERAGE_ARGS)

.PHONY: hardware
hardware: setup ## regenerate hardware/svg/*.svg and bom.md from hardware/*, print the divider table
	$(PY) tools/hardware_svg.py
	$(PY) tools/hardware_bom.py
	$(PY) tools/hardware_divider.py

firmware-pins: setup ## regenerate firmware/pins.py from hardware/pinmap.json (BOARD=name for another board)
	$(PY) tools/firmware_pins.py $(if $(BOARD),--board $(BOARD))

firmware: setup ## compile every firmware/*.py with mpy-cross -march=xtensawin into build/firmware/
	$(PY) tools/firmware_pins.py --check $(if $(BOARD),--board $(BOARD))
	rm -rf $(FW_BUILD) && mkdir -p $(FW_BUILD)
	for f in firmware/*.py; do \
	  $(VENV)/bin/mpy-cross -march=xtensawin -o $(FW_BUILD)/$$(basename $${f%.py}).mpy $$f || exit 1; \
	done
	# MicroPython runs main.py itself at boot (not main.mpy): ship it as source
	rm $(FW_BUILD)/main.mpy && cp firmware/main.py $(FW_BUILD)/main.py
	@ls $(FW_BUILD)

deploy: firmware ## copy build/firmware to the board: make deploy PORT=/dev/ttyUSB0 (see docs/firmware.md)
	$(MPREMOTE) connect $(PORT) exec "import os; [os.remove(f) for f in os.listdir() if f.endswith('.py') and f not in ('boot.py', 'main.py')]"
	$(MPREMOTE) connect $(PORT) cp $(FW_BUILD)/*.mpy $(FW_BUILD)/main.py : + reset

flash: setup ## write a MicroPython image: make flash PORT=/dev/ttyUSB0 IMAGE=ESP32_GENERIC-v1.29.x.bin
	@test -n "$(IMAGE)" || { echo "IMAGE= missing: download ESP32_GENERIC v1.29.x (.bin) from micropython.org/download/ESP32_GENERIC/ (docs/firmware.md)"; exit 2; }
	$(PY) -m esptool --chip $(FLASH_CHIP) --port $(PORT) erase-flash
	$(PY) -m esptool --chip $(FLASH_CHIP) --port $(PORT) --baud 460800 write-flash -z $(FLASH_OFFSET) $(IMAGE)

typecheck-firmware: setup ## pyright over firmware/ against the MicroPython ESP32 stubs in .stubs/
	$(VENV)/bin/pyright -p firmware/pyrightconfig.json

demo-firmware: setup ## the demo with the real firmware under MicroPython as the device behind each pty
	$(PY) tools/demo.py --firmware --out $(DEMO_OUT)-firmware --seconds $(DEMO_SECONDS)

lint: setup ## ruff check
	$(VENV)/bin/ruff check host tests tools bench

clean: ## remove the venv, build output and demo output
	rm -rf $(VENV) build $(DEMO_OUT) $(DEMO_OUT)-firmware $(DEMO_OUT)-ble node_modules $(STUBS)
