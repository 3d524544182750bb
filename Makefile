# centinela — `make demo` and `make test` work as the first command on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The distribution's packages the tests use, one "command:package[,package...]" a line;
# each is installed (apt-get) when its command is missing.
SYSTEM_PACKAGES := \
	mosquitto:mosquitto,mosquitto-clients \
	ffmpeg:ffmpeg \
	chromium:chromium \
	initdb:postgresql

.PHONY: setup system-packages test lint bench chaos fleet demo arc clean

setup: $(STAMP) system-packages

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing centinela and its tools into $(VENV) (log: $(VENV)/install.log)"
	@$(PY) -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 || \
		{ cat $(VENV)/install.log; exit 1; }
	@$(PY) -m pip install --quiet -e '.[dev]' >> $(VENV)/install.log 2>&1 || \
		{ cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

# As root, or with password-less sudo, missing packages are installed (with an
# `apt-get update` first only if the install fails); otherwise the command to run
# is printed, and under CI that is a failure. Without mosquitto the simulator falls
# back to its embedded broker and the broker tests are skipped; without ffmpeg the
# camera tests are, and without chromium the customer area's browser tests. Debian
# keeps PostgreSQL's initdb in /usr/lib/postgresql/N/bin, off PATH: the tests find it there.
system-packages:
	@missing=""; \
	for entry in $(SYSTEM_PACKAGES); do \
		cmd=$${entry%%:*}; pkgs=$$(echo "$${entry#*:}" | tr , ' '); \
		command -v $$cmd >/dev/null 2>&1 || test -x /usr/sbin/$$cmd || \
			ls /usr/lib/postgresql/*/bin/$$cmd >/dev/null 2>&1 || missing="$$missing $$pkgs"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	else \
		echo "not installed:$$missing, and this user can neither install packages nor use sudo:" \
		     "run 'sudo apt-get install$$missing' once"; \
		if [ "$$CI" = true ]; then exit 1; fi; exit 0; \
	fi; \
	echo "installing from the distribution's packages:$$missing"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
		($$sudo apt-get update -q >/dev/null && \
		 $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null) || \
		{ echo "could not install$$missing from the distribution's packages"; exit 1; }

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy centinela common panel protocol hub drivers sim cloud
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/vulture

bench: setup
	$(PY) -m tests.bench

# The cloud side under many installations: ingest with 1, 2 and 4 workers on PostgreSQL
# against a bare subscriber (build/fleet.json).
fleet: setup
	$(PY) -m tests.fleet

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
