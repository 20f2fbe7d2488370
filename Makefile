# The two commands of the README: `make demo` runs the pipeline locally, `make test` runs
# the tests. Both install what is missing first (system packages need root or sudo).
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: setup demo test lint bench compose-test

setup:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then \
		$(APT) update -qq && $(APT) install -y -qq mosquitto; fi
	@command -v java >/dev/null || { $(APT) update -qq && $(APT) install -y -qq openjdk-17-jre-headless; }
	@command -v mvn >/dev/null || { $(APT) update -qq && $(APT) install -y -qq maven; }
	@# headless Chromium and its driver for the dashboard's browser test (Debian's packages)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(APT) update -qq && $(APT) install -y -qq chromium chromium-driver; }
	$(PYTHON) -m pip install -q --disable-pip-version-check -e ".[dev]"
	$(PYTHON) -m iotml stack fetch

demo: setup
	$(PYTHON) -m iotml demo

test: setup
	$(PYTHON) -m pytest -q -ra

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	lint-imports

# docker-compose.yml run for real (Podman, stand-in images where no registry is reachable);
# skips with the reason where no engine is usable, fails instead under CI=true.
compose-test:
	PYTHON=$(PYTHON) deploy/compose_test/run.sh $(COMPOSE_FILE)
