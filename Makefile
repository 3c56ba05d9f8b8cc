# latitudesh.cloud developer targets: thin wrappers around nox (noxfile.py, antsibull-nox.toml).
# Needs python3 (3.11+, or PYTHON=python3.11), make and git; nox itself goes into .venvs/nox on first use.
# One session: make test ARGS="-s units-2.21"; missing Pythons or tools fail unless allowed:
# make test ALLOW_MISSING=python3.13,openssl

PYTHON ?= python3
export ALLOW_MISSING ?=
NOX = .venvs/nox/bin/nox
# With pyenv, every installed Python answers as pythonX.Y (the machine's default stays first).
ifneq ($(shell command -v pyenv 2>/dev/null),)
export PYENV_VERSION ?= $(shell pyenv version-name 2>/dev/null):$(shell pyenv versions --bare 2>/dev/null | tr '\n' ':')
endif

.DEFAULT_GOAL := help
.PHONY: help list test sanity units integration functional lint build demo bench reference sandbox clean

help:
	@echo "make test | list | sanity | units | integration | functional | lint | build | demo | bench | reference"
	@echo "     | sandbox | clean: docs/contributing.md says what each does"

$(NOX): tests/ci/requirements-nox.txt
	$(PYTHON) -m venv .venvs/nox && .venvs/nox/bin/python -m pip install -q -r $< && touch $@

list: $(NOX)
	@$(NOX) -l

# The summary's last line is the result; without a report (nox could not start) the run failed.
test: $(NOX)
	@rm -rf tests/output/junit tests/output/nox.json; mkdir -p tests/output
	@$(NOX) --parallel auto --report tests/output/nox.json $(if $(ALLOW_MISSING),--no-error-on-missing-interpreters) \
	  $(ARGS); rc=$$?; if [ ! -f tests/output/nox.json ]; then echo "nox exit code $$rc, no report"; \
	  echo "0 passed, 1 failed, 0 skipped"; exit 1; fi; \
	  .venvs/nox/bin/python tests/ci/summary.py tests/output/nox.json || exit 1; exit $$rc

sanity units integration functional:
	@$(MAKE) --no-print-directory test ARGS="-t $@ $(ARGS)"
lint:
	@$(MAKE) --no-print-directory test ARGS="-s changelog ansible-lint docs-check reference $(ARGS)"
build:
	@$(MAKE) --no-print-directory test ARGS="-s build-import-check $(ARGS)"
demo bench: $(NOX)
	@$(NOX) -s $@ -- $(ARGS)
reference: $(NOX)
	@$(NOX) -s reference -- --update
sandbox:
	@$(PYTHON) tests/sandbox/latitude_sandbox.py --port 8765

clean:
	rm -rf .venvs .nox .tmp dist tests/output tests/integration/inventory .ansible collections .pytest_cache
