# latitudesh.cloud developer targets.  Needs only python3, make and git.
# Extra arguments for the matrix runner: make test ARGS="--only 2.21"

PYTHON ?= python3
VENV ?= .venv
ARGS ?=
MATRIX = $(PYTHON) tests/ci/matrix.py

.DEFAULT_GOAL := help
.PHONY: help venv test quick sanity units integration lint build demo bench sandbox clean

help:
	@echo "latitudesh.cloud targets:"
	@echo "  make venv         $(VENV) with the newest Python (3.13/3.12/3.11/python3) and its pinned ansible-core"
	@echo "  make test         full matrix: every ansible-core/Python controller, module-side Pythons, lint, build"
	@echo "  make quick        controller steps only, newest interpreter (matrix.py --quick)"
	@echo "  make sanity       ansible-test sanity on the newest controller"
	@echo "  make units        ansible-test units on the newest controller"
	@echo "  make integration  ansible-test integration on the newest controller"
	@echo "  make lint         antsibull-changelog lint, ansible-lint, antsibull-docs lint"
	@echo "  make build        collection tarball into dist/"
	@echo "  make demo         run demo/run.sh with $(VENV)"
	@echo "  make bench        run tests/bench/run.py with $(VENV)"
	@echo "  make sandbox      run the Latitude.sh API sandbox on 127.0.0.1:8765 (foreground)"
	@echo "  make clean        remove venvs, copies, logs and build output"
	@echo "Logs of matrix steps: tests/output/ci-logs/.  Pass runner options with ARGS=\"...\" (see: $(MATRIX) --help)."

venv:
	@$(PYTHON) tests/ci/pick_python.py --venv $(VENV)

test:
	@$(MATRIX) $(ARGS)

quick:
	@$(MATRIX) --quick $(ARGS)

sanity:
	@$(MATRIX) --newest --steps sanity $(ARGS)

units:
	@$(MATRIX) --newest --steps units $(ARGS)

integration:
	@$(MATRIX) --newest --steps integration $(ARGS)

lint:
	@$(MATRIX) --steps changelog-lint,ansible-lint,docs-lint $(ARGS)

build:
	@$(MATRIX) --steps build --dist-dir dist $(ARGS)

demo: venv
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" VENV="$(CURDIR)/$(VENV)" bash demo/run.sh

bench: venv
	@$(VENV)/bin/python tests/bench/run.py

sandbox:
	@$(PYTHON) tests/sandbox/latitude_sandbox.py --port 8765

clean:
	@rm -rf $(VENV) .venvs .tmp dist tests/output tests/integration/inventory .ansible collections .pytest_cache
	@find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
	@echo "removed $(VENV) .venvs .tmp dist tests/output and caches"
