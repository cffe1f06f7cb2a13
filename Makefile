# digibank-kiosk: `make run` starts the demo, `make test` runs the checks.
# Both do every set-up step on a fresh Debian / Raspberry Pi OS machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the project needs at run or test time: the PC/SC service and the
# vsmartcard virtual reader (eID tests, demo), and what pyscard needs to build (no wheel).
APT_PACKAGES := pcscd vsmartcard-vpcd libpcsclite-dev swig
# Tests and benchmarks only: Debian's PostgreSQL server binaries (initdb, pg_ctl, postgres),
# because the loan server tests and bench_server.py run on PostgreSQL too, in a throwaway
# cluster on a free port (tests/support/pgcluster.py). `make run` (SQLite) never needs them.
TEST_APT_PACKAGES := postgresql
# On a Raspberry Pi the lgpio pin factory needs these to build its wheel.
PI_APT_PACKAGES := swig liblgpio-dev
IS_PI := $(shell grep -qi 'raspberry pi' /proc/device-tree/model 2>/dev/null && echo yes)
comma := ,
EXTRAS := dev$(if $(IS_PI),$(comma)pi)

.PHONY: run test lint bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/ensure-apt.sh
	@scripts/ensure-apt.sh $(APT_PACKAGES) $(if $(IS_PI),$(PI_APT_PACKAGES))
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: $(PYTHON) is older than Python 3.11; set PYTHON=python3.11 or newer" >&2; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		scripts/ensure-apt.sh python3-venv
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/digibank-kiosk demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP)
	@scripts/ensure-apt.sh $(TEST_APT_PACKAGES)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	@scripts/ensure-apt.sh $(TEST_APT_PACKAGES)
	$(BIN)/python bench/bench_locker.py
	$(BIN)/python bench/bench_core.py
	$(BIN)/python bench/bench_server.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .benchmarks
