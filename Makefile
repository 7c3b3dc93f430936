# kepu: two commands on a fresh machine — `make demo` and `make test`. Each runs `make setup` first.
SHELL := /bin/bash
# The venv's interpreter: the first of PYTHON_CANDIDATES that is Python 3.11 and can make a venv, the distribution's
# own build first. Debian's is built with profile-guided and link-time optimisation and linked statically; a plain
# source build (pyenv's default: a shared libpython, no PGO) runs kepu's Python code more slowly (the figures:
# docs/reference.md, Pinned requirements). PYTHON=/path/to/python3.11 picks one; an existing .venv is kept.
PYTHON_CANDIDATES ?= /usr/bin/python3.11 python3.11 python3
PYTHON ?= $(shell for py in $(PYTHON_CANDIDATES); do \
	command -v $$py >/dev/null 2>&1 && $$py -c 'import ensurepip, sys; sys.exit(sys.version_info[:2] != (3, 11))' \
	2>/dev/null && { command -v $$py; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist: the suite runs in TEST_WORKERS processes (0: in this one). Many tests wait on a scheduler, a
# database or an endpoint, so there are more workers than cores. worksteal: each worker starts on its own stretch of
# the collection (a module's tests mostly stay together, and its module fixtures are made once) and takes work
# from the busiest when it runs out.
TEST_WORKERS ?= 3
XDIST := -n $(TEST_WORKERS) --dist worksteal
# The installer of the pinned requirements, itself pinned; it installs into this checkout's venv only.
UV_VERSION := 0.13.9

.PHONY: setup ffmpeg fonts browser demo test test-unit test-fast airflow bench lint format clean

# Debian's WenQuanYi Micro Hei: the TrueType CJK font embedded in certificates (Noto CJK's outlines cannot be).
WQY_VERSION := 0.2.0-beta-3.1
WQY_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

# The checkout's own modules are byte-compiled on every run (only what changed is compiled again): where
# PYTHONDONTWRITEBYTECODE is set, every test worker, Airflow component and task process would compile them.
setup: $(STAMP) ffmpeg fonts
	@$(BIN)/python -m compileall -q -j 0 include dags plugins \
		|| echo "some of kepu's modules could not be byte-compiled (listed above)" >&2

# uv installs the pinned set (parallel downloads, a cache of its own under ~/.cache/uv): seconds where pip took a
# minute. It byte-compiles what it installs on every core, for the reason given above. PYTHON (at the top) is
# chosen once, when the venv is made. pip only fetches uv; the package index pip is set to (PIP_INDEX_URL or pip's
# configuration: a mirror) is uv's too, unless UV_DEFAULT_INDEX or UV_INDEX_URL names one.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then echo "kepu needs Python 3.11 with its venv module (Debian: apt-get install" \
		"python3.11-venv), and none was found; set PYTHON=/path/to/python3.11" >&2; exit 1; fi; \
	$$py -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || \
		{ echo "kepu needs Python 3.11 (found $$($$py --version 2>&1)); set PYTHON=/path/to/python3.11" >&2; exit 1; }; \
	test -x $(BIN)/python || $$py -m venv $(VENV)
	@echo "installing pinned requirements into $(VENV) …"
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@index="$${PIP_INDEX_URL:-$$($(BIN)/python -m pip config get global.index-url 2>/dev/null)}"; \
	if [ -n "$$index" ] && [ -z "$${UV_DEFAULT_INDEX}$${UV_INDEX_URL}" ]; then export UV_DEFAULT_INDEX="$$index"; fi; \
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -r requirements-dev.txt && \
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

ffmpeg:
	@if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's ffmpeg …"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	else \
		echo "ffmpeg and ffprobe are missing: install them with 'sudo apt-get install ffmpeg' and run make again" >&2; \
		exit 1; \
	fi

fonts:
	@if [ -f $(WQY_FONT) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's fonts-wqy-microhei (certificates) …"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei=$(WQY_VERSION) >/dev/null; \
	else \
		echo "the certificate font is missing: install it with 'sudo apt-get install fonts-wqy-microhei' and run make again" >&2; \
		exit 1; \
	fi

# Debian's Chromium for the browser tests (the dashboard, the judges' portal, the operator's path), installed once
# here rather than by three test processes at once; without root the tests say how to install it.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium (browser tests) …"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium is missing: the browser tests will say so (sudo apt-get install chromium)" >&2; \
	fi

# No wall-clock limit: the demo prints its progress and gives up only when nothing has moved for
# DEMO_STALL_TIMEOUT seconds. Ctrl-C or a SIGTERM stops every process it started.
DEMO_STALL_TIMEOUT ?= 300
demo: setup
	$(BIN)/kepu demo --stall-timeout $(DEMO_STALL_TIMEOUT)

# AIRFLOW_PORT (default 8080) and AIRFLOW_HOST (default 127.0.0.1: this machine only).
airflow: setup
	$(BIN)/kepu airflow $(if $(AIRFLOW_PORT),--port $(AIRFLOW_PORT)) $(if $(AIRFLOW_HOST),--host $(AIRFLOW_HOST))

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: setup browser
	@$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Timings live here, never in tests: each script prints its figures and fails when a target is missed.
bench: setup
	@set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

test-unit: setup
	$(BIN)/python -m pytest $(XDIST) -m unit $(PYTEST_ARGS)

# Everything that starts no Airflow component: unit, integration, hostile input and DAG integrity.
test-fast: setup
	@$(BIN)/python -m pytest $(XDIST) -m "not e2e and not faults and not celery" tests/unit tests/hostile tests/integration \
		tests/dags $(PYTEST_ARGS); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint: setup
	$(BIN)/ruff check include dags plugins tests
	$(BIN)/ruff format --check include dags plugins tests
	$(BIN)/mypy
	$(BIN)/mypy --config-file tests/mypy.ini dags plugins tests

format: setup
	$(BIN)/ruff format include dags plugins tests
	$(BIN)/ruff check --fix include dags plugins tests

clean:
	rm -rf .kepu test-output .pytest_cache .mypy_cache .ruff_cache
