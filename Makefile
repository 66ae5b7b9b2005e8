# Two commands do everything on a fresh machine with python3, pip, node and npm:
#   make demo   - the treasury story through the `treasury` CLI on a local anvil chain
#                 (`make demo-web` then serves the signing page to open in a browser)
#   make test   - the test suite on anvil
# Set-up steps are file targets, so a second run is quick.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

# The project's pinned tools come first: anvil (from npm) and the solc bridge for py-solc-x.
export PATH := $(CURDIR)/.tools/bin:$(BIN):$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/.tools/solcx

.PHONY: setup compile demo demo-web demo-library lint test bench clean artifacts guard-artifact

setup: .tools/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

# `npm install --no-save` rather than `npm ci`: the lock records only this platform's anvil binary
# package, which `npm ci` rejects; --no-save installs the locked versions and leaves the lock alone.
node_modules/.installed: package.json package-lock.json
	npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

.tools/.installed: $(VENV)/.installed node_modules/.installed treasury/chain/toolchain.py
	$(BIN)/python -m treasury.chain.toolchain
	touch $@

compile: setup
	$(BIN)/ape compile --force

# The story through the `treasury` CLI, on one anvil that outlives the commands (scripts/demo_cli.py).
demo: setup
	$(BIN)/python scripts/demo_cli.py

# The signing page: a guarded Safe with proposals, `treasury serve` on a free loopback port, its URLs
# printed; serves until Ctrl-C (scripts/demo_web.py; `--once` or DEMO_WEB_ONCE=1 checks the pages and stops).
demo-web: setup
	$(BIN)/python scripts/demo_web.py

# The same story from the Python library, in one `ape run` process.
demo-library: setup
	$(BIN)/ape run demo

# Tests and benchmarks reach a local anvil as "mainnet" (tests/standin.py), and ape keeps what it
# learns on mainnet (contract types, deployments) in its data folder for good: in ~/.ape that would
# pile up from run to run, slow every later run, and describe another run's contract at a reused
# address. Each run gets a data folder of its own, removed afterwards.
RUN_WITH_OWN_APE_DATA = data=$$(mktemp -d) && trap 'rm -rf "$$data"' EXIT && export APE_DATA_FOLDER="$$data" &&

# ruff over every Python file of the repository and mypy over the package (both configured in
# pyproject.toml); needs only the virtualenv, no chain. `make test` runs it first.
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint setup
	$(RUN_WITH_OWN_APE_DATA) $(BIN)/ape test

# One tier of the suite (tests/conftest.py gives every test one marker; `make test` runs them all):
#   unit - no chain, seconds; chain - the session's anvil; live - the stand-in live chain and forks
#   of it; slow - property-based runs and many-process tests; postgres - needs PostgreSQL.
# Each prints the wall time per tier at the end, as `make test` does.
TIERS := unit chain live slow postgres
.PHONY: $(addprefix test-,$(TIERS))
$(addprefix test-,$(TIERS)): test-%: setup
	$(RUN_WITH_OWN_APE_DATA) $(BIN)/ape test -m $*

bench: setup
	$(RUN_WITH_OWN_APE_DATA) for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) node_modules .tools .build

# After changing contracts/TreasuryGuard.sol, contracts/TreasuryFallbackHandler.sol or contracts/test/TestToken.sol:
# refresh the compiled guard, fallback handler and test token shipped in the package (tests fail while one is stale).
artifacts: setup
	$(BIN)/ape compile --force
	$(BIN)/python -c "from treasury.chain.guard import export_guard_artifact; print(export_guard_artifact())"
	$(BIN)/python -c "from treasury.testing.fixtures import export_test_token_artifact; print(export_test_token_artifact())"
	$(BIN)/python -c "from treasury.chain.handler import export_handler_artifact; print(export_handler_artifact())"

guard-artifact: artifacts
