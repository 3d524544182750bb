# centinela — `make demo` and `make test` work as the first command on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test lint bench chaos demo arc clean broker browser

setup: $(STAMP) broker browser

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing centinela and its tools into $(VENV) (log: $(VENV)/install.log)"
	@$(PY) -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 || \
		{ cat $(VENV)/install.log; exit 1; }
	@$(PY) -m pip install --quiet -e '.[dev]' >> $(VENV)/install.log 2>&1 || \
		{ cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

# The mosquitto broker from the distribution's packages, installed when missing.
broker:
	@if command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing mosquitto from the distribution's packages"; \
		(apt-get install -y -q mosquitto mosquitto-clients >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q mosquitto mosquitto-clients >/dev/null)); \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		echo "installing mosquitto from the distribution's packages (sudo)"; \
		(sudo apt-get install -y -q mosquitto mosquitto-clients >/dev/null 2>&1 || \
		 (sudo apt-get update -q >/dev/null && sudo apt-get install -y -q mosquitto mosquitto-clients >/dev/null)); \
	else \
		echo "mosquitto is not installed and this user can neither install packages nor use sudo:" \
		     "run 'sudo apt-get install mosquitto mosquitto-clients' once (the simulator falls back to an embedded broker)"; \
		if [ "$$CI" = true ]; then exit 1; fi; \
	fi

# Chromium from the distribution's packages, for the customer area's browser tests
# (Playwright drives it; its own browser download is not used).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium from the distribution's packages"; \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		echo "installing chromium from the distribution's packages (sudo)"; \
		(sudo apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (sudo apt-get update -q >/dev/null && sudo apt-get install -y -q chromium >/dev/null)); \
	else \
		echo "chromium is not installed: run 'sudo apt-get install chromium' once (the browser tests are skipped without it)"; \
		if [ "$$CI" = true ]; then exit 1; fi; \
	fi

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy centinela common panel protocol hub drivers sim cloud
	$(VENV)/bin/lint-imports --no-cache

bench: setup
	$(PY) -m tests.bench

chaos: setup
	$(PY) -m tests.chaos --events 20000

demo: setup
	$(VENV)/bin/centinela sim sim/sites/demo.toml

# The demo site reporting in SIA DC-09 to a pysiaalarm receiver that prints what it receives
# (ARC_KEY=16/24/32 characters for AES, ARC_FORMAT=ADM-CID for Contact ID).
arc: setup
	$(PY) -m tests.arc_demo

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
