# latitudesh.cloud developer targets.  Needs only python3, make and git.
# Extra arguments for the matrix runner: make test ARGS="--only 2.21"
# Anything missing (interpreter, tests folder, openssl, shellcheck, sdk) fails unless named:
# make test ALLOW_MISSING=python3.13,openssl

PYTHON ?= python3
VENV ?= .venv
ARGS ?=
ALLOW_MISSING ?=
MATRIX = $(PYTHON) tests/ci/matrix.py --allow-missing '$(ALLOW_MISSING)'

.DEFAULT_GOAL := help
.PHONY: help venv test quick sanity units integration lint build demo bench sandbox clean packaging reference

help:
	@echo "latitudesh.cloud targets:"
	@echo "  make venv         $(VENV) with the newest Python (3.13/3.12/3.11/python3) and its pinned ansible-core"
	@echo "  make test         full matrix: every ansible-core/Python controller, module-side Pythons, lint, build"
	@echo "  make quick        controller steps only, newest interpreter (matrix.py --quick)"
	@echo "  make sanity       ansible-test sanity on the newest controller"
	@echo "  make units        ansible-test units on the newest controller"
	@echo "  make integration  ansible-test integration on the newest controller"
	@echo "  make lint         antsibull-changelog lint, ansible-lint, antsibull-docs lint, docs/reference in sync"
	@echo "  make build        collection tarball into dist/"
	@echo "  make demo         build + install the collection, run the demo playbook twice on the sandbox"
	@echo "  make packaging    installed-tarball, metadata and rendered-docs tests"
	@echo "  make reference    re-render docs/reference with antsibull-docs (the docs-reference step checks it)"
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
	@$(MATRIX) --steps changelog-lint,ansible-lint,docs-lint,docs-reference $(ARGS)

build:
	@$(MATRIX) --steps build --dist-dir dist $(ARGS)

demo: venv
	@$(VENV)/bin/python tests/demo/run.py

packaging:
	@$(MATRIX) --steps packaging $(ARGS)

reference:
	@$(MATRIX) --steps docs-reference --update-reference

bench: venv
	@$(VENV)/bin/python tests/bench/run.py

sandbox:
	@$(PYTHON) tests/sandbox/latitude_sandbox.py --port 8765

clean:
	@rm -rf $(VENV) .venvs .tmp dist tests/output tests/integration/inventory .ansible collections .pytest_cache
	@find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
	@echo "removed $(VENV) .venvs .tmp dist tests/output and caches"
