# The two commands a newcomer runs: `make demo` and `make test`. Both set everything up
# themselves: a .venv with twelve and its test tools, and the few Debian packages needed.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fleet setup clean bench-digest bench-scrub bench bench-quick bench-tools bench-size

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/system-deps
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: twelve needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1)" >&2; exit 1; }
	sh scripts/system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The example's front-end tools (esbuild, pinned in package-lock.json), installed locally.
NODE_STAMP := examples/hello/node_modules/.installed
$(NODE_STAMP): $(STAMP) examples/hello/package.json examples/hello/package-lock.json
	@command -v npm >/dev/null 2>&1 || \
	  { echo "error: npm is missing; the example builds its assets with esbuild from npm: install Node.js 18+ with npm" >&2; exit 1; }
	cd examples/hello && npm ci --no-audit --no-fund
	touch $@

demo: $(STAMP) $(NODE_STAMP)
	cd examples/hello && TWELVE_ENV=prod $(BIN)/twelve release --overwrite
	@echo "* generating SECRET_KEY_BASE and migrating the database (SQLite, ~/.local/state/hello)"
	@export SECRET_KEY_BASE="$$($(BIN)/twelve gen.secret)" && \
	  examples/hello/_build/prod/rel/hello/bin/hello eval "hello.release.migrate()" && \
	  echo "* serving on http://localhost:4000 (Ctrl-C stops)" && \
	  exec examples/hello/_build/prod/rel/hello/bin/hello start

# The unit tests share nothing and run on both cores; the integration tests start real nodes,
# time drains and restarts under load, and run one at a time. PYTEST_ARGS runs what it names.
test: $(STAMP) $(NODE_STAMP)
ifeq ($(strip $(PYTEST_ARGS)),)
	$(BIN)/python -m pytest -n 2 tests/unit
	$(BIN)/python -m pytest tests/integration
else
	$(BIN)/python -m pytest $(PYTEST_ARGS)
endif

# gen.ansible alone (also part of `make test`): its files, then a rolling deploy to three sshd
# hosts in network namespaces (root only; docs/deployment.md, "How it is tested").
test-fleet: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/integration/test_fleet_files.py \
	  tests/integration/test_fleet.py

# twelve digest on 5,000 generated files: files/s, parallel against single-threaded.
bench-digest: $(STAMP)
	$(BIN)/python benchmarks/digest.py

# Scrubbing a 120 KB secret from a config error's message, against a 64-char one, new and old.
bench-scrub: $(STAMP)
	$(BIN)/python benchmarks/scrub.py

# twelve against PyInstaller, pex, shiv and a venv on examples/hello (benchmarks/README.md):
# writes benchmarks/results/latest.{md,json,png}. The peers live in their own venv, wrk comes
# from Debian; `make test` needs neither.
BENCH_VENV := benchmarks/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_EXTRA := $(VENV)/.bench-installed

$(BENCH_EXTRA): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

$(BENCH_STAMP): benchmarks/peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r benchmarks/peers.txt
	touch $@

bench-tools: $(BENCH_EXTRA) $(BENCH_STAMP) $(NODE_STAMP)
	@command -v wrk >/dev/null 2>&1 || { echo "* installing wrk (Debian)"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }

bench: bench-tools
	$(BIN)/python benchmarks/bench.py --via "make bench"
	$(BIN)/python benchmarks/bench.py --app reference --only size,serving \
	  --peers pyinstaller,venv --out benchmarks/results/reference --via "make bench"

# Issue 15's size figures on benchmarks/reference alone (a few minutes, PyInstaller included).
bench-size: bench-tools
	$(BIN)/python benchmarks/bench.py --app reference --quick --only size \
	  --peers pyinstaller,venv --out benchmarks/results/reference --via "make bench-size"

bench-quick: bench-tools
	$(BIN)/python benchmarks/bench.py --quick --via "make bench-quick"

clean:
	rm -rf $(VENV) examples/*/_build .pytest_cache
