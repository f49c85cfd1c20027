# The two commands a newcomer needs are `make demo` and `make test`; everything else is here
# for the workshop (lab, blog, cluster-*) and for maintainers (lock, test-pythons).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two pinned sets: the attendee's (`make setup`: Python packages only, no root) and the
# maintainer's (`make setup-dev`: that plus every check's tools and Debian's packages).
WORKSHOP_LOCK := requirements-workshop.lock
DEV_LOCK := requirements.lock
WORKSHOP_STAMP := $(VENV)/.installed-workshop
DEV_STAMP := $(VENV)/.installed-dev
# `make setup WHEELS=DIR` installs from a folder that `make wheelhouse` filled, with no network.
PIP_FROM = $(if $(WHEELS),--no-index --find-links $(WHEELS))
# pip's own retries and errors come first; this says what usually causes them at a workshop (the
# guide's troubleshooting table shows the symptoms). Running `make setup` again resumes.
# Exported, so that the echoed recipe line stays short.
export SETUP_PIP_HELP = setup: pip failed (see above). Behind a proxy: export HTTPS_PROXY=http://HOST:PORT, and PIP_CERT=its-ca.pem if it inspects TLS; with no network: make setup WHEELS=DIR (taller/GUIDE.md)
PIP_FAILED = { echo "$$SETUP_PIP_HELP"; exit 1; }
# setuptools warns, in a box of asterisks, that a flat layout's folders may shadow the editable
# package; ours are the package, and the warning only alarms attendees.
EDITABLE_QUIET = PYTHONWARNINGS="ignore:Editable installation"
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || \
  { command -v docker-compose >/dev/null && echo docker-compose; })
# Jupyter refuses to run as root unless told; workshop laptops are not root, CI machines are.
ALLOW_ROOT = $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help setup setup-dev check-env wheelhouse demo test test-pythons pymesos-tests chaos bench soak lab
.PHONY: notebooks ui-shots blog cluster-up cluster-down lock clean

help:
	@echo "make demo          set up, then run the framework on the embedded cluster (localmesos)"
	@echo "                   STEP=1|2|3 (default 3); FAILURES=1: kill the scheduler, an executor,"
	@echo "                   an agent's process, another's machine and a master on the way (step 3)"
	@echo "make test          full set-up, then run every check (ruff, pytest, nbval, listings, outputs,"
	@echo "                   blog, screenshots, compose)"
	@echo "make setup         create .venv with the attendee's Python packages; no root (idempotent)"
	@echo "                   WHEELS=DIR: install from a 'make wheelhouse' folder, with no network"
	@echo "make check-env     one line per need of the workshop: a tick, or how to get it"
	@echo "make wheelhouse    the attendee's wheels for every platform in build/wheelhouse (WHEELHOUSE=DIR)"
	@echo "make setup-dev     what 'make test' needs: setup, the checks' tools and Debian's packages"
	@echo "make lab           Jupyter on notebooks/"
	@echo "make notebooks     re-run the notebooks and save their outputs (then commit them)"
	@echo "make ui-shots      re-take the step 1 post's screenshots of the live page (then commit them)"
	@echo "make blog          serve the blog on http://127.0.0.1:4000"
	@echo "make cluster-up    start the real Mesos cluster (docker compose); cluster-down stops it"
	@echo "make test-pythons  install pymesos and run its parser test on Python 3.11, 3.12 and 3.13"
	@echo "make pymesos-tests pymesos 0.3.15's own unit tests against our http-parser (clones it from GitHub)"
	@echo "make chaos         step 3 under random kills: 100 seeded runs (RUNS=N, SEED=first seed, BROKEN=always|one-chunk)"
	@echo "make bench         time the local cluster and the steps (see bench/README.md)"
	@echo "make soak          the long reliability experiments of localmesos, with their figures"
	@echo "make lock          re-pin requirements.lock and requirements-workshop.lock from pyproject.toml"

# The attendee's set-up: a venv and the pinned Python packages, nothing else (no apt, no root).
setup: $(WORKSHOP_STAMP)

# The maintainer's: Debian's packages when run as root (python3-venv, jekyll, html-proofer,
# chromium and its driver, ZooKeeper), then the attendee's packages and the checks' tools.
setup-dev: debian-packages $(DEV_STAMP)

.PHONY: debian-packages
debian-packages:
	@tools/install-debian-packages.sh

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { \
	  echo "setup: '$(PYTHON)' is not installed (not found on PATH); install Python 3.11 or newer, then: make setup PYTHON=python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "setup: Python 3.11 or newer is needed; '$(PYTHON)' is $$($(PYTHON) -V 2>&1). Run: make setup PYTHON=python3.11"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "setup: '$(PYTHON) -m venv' failed; on Debian or Ubuntu it needs: sudo apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install -q $(PIP_FROM) $$(grep -E '^pip==' $(WORKSHOP_LOCK)) || $(PIP_FAILED)

# Reinstall when the pins, the project metadata or our http-parser stand-in change.
$(WORKSHOP_STAMP): $(BIN)/python $(WORKSHOP_LOCK) pyproject.toml compat/http-parser/pyproject.toml $(wildcard compat/http-parser/http_parser/*.py)
	$(BIN)/python -m pip install -q $(PIP_FROM) -r $(WORKSHOP_LOCK) || $(PIP_FAILED)
	$(EDITABLE_QUIET) $(BIN)/python -m pip install -q $(PIP_FROM) --no-deps -e . || $(PIP_FAILED)
	@touch $@

# requirements.lock pins the workshop's packages at the same versions, and the checks' on top.
$(DEV_STAMP): $(WORKSHOP_STAMP) $(DEV_LOCK)
	$(BIN)/python -m pip install -q -r $(DEV_LOCK)
	@touch $@

check-env: setup
	@$(BIN)/python -m tools.envcheck

# Every wheel of the attendee set-up, for Linux (x86_64, aarch64) and macOS (arm64, x86_64) on
# Python 3.11 to 3.13: copy the folder to a USB stick, then `make setup WHEELS=/path/to/it`.
wheelhouse: setup
	$(BIN)/python -m tools.wheelhouse $(or $(WHEELHOUSE),build/wheelhouse)

# One step on the embedded cluster, with the demo dataset (STEP=1, 2 or 3; 3 by default); see
# tools/demo.py. `make demo FAILURES=1` kills the scheduler, an executor, an agent's process,
# another agent's machine and a master as step 3 runs (the master only where ZooKeeper is installed).
demo: setup
	@$(BIN)/python -m tools.demo $(if $(STEP),--step $(STEP)) $(if $(FAILURES),--failures)

test: setup-dev
	@$(BIN)/tutorial-checks

test-pythons: setup-dev
	@$(BIN)/tutorial-checks pythons

# pymesos's own tests are not in its sdist, so this clones its 0.3.15 tag (network needed);
# PYMESOS_SOURCE=DIR runs them from a copy you have. See tools/pymesos_tests.py.
pymesos-tests: setup-dev
	@$(BIN)/python -m tools.pymesos_tests $(if $(PYMESOS_SOURCE),--source $(PYMESOS_SOURCE))

# More seeds than the 12 of `make test`; a failed run prints how to reproduce it (--seed).
# BROKEN=always|one-chunk runs them with a broken executor too (--broken-executor).
chaos: setup-dev
	@$(BIN)/python -m tests.integration.chaos --runs $(or $(RUNS),100) $(if $(SEED),--seed $(SEED)) \
		$(if $(BROKEN),--broken-executor $(BROKEN))

# Prints figures against floors measured in the same run; not part of `make test`.
bench: setup-dev
	$(BIN)/python -m bench

# The long versions of tests/reliability/, with their figures against the issue's; not in `make test`.
soak: setup-dev
	$(BIN)/python -m bench.soak

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ALLOW_ROOT)

# Re-run every notebook and save its outputs, which nbval then checks; commit the result.
notebooks: setup-dev
	cd notebooks && ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.record_timing=False *.ipynb

# The live page during notebook 01's two frameworks, for the step 1 post: assets/img/paso-1/.
ui-shots: setup-dev
	$(BIN)/python -m tools.ui_shots

blog: debian-packages
	@command -v jekyll >/dev/null || { echo "blog: jekyll is missing; 'make setup-dev' installs it on Debian as root"; exit 1; }
	jekyll serve --host 127.0.0.1 --port 4000

.PHONY: compose-available
compose-available:
	@[ -n "$(COMPOSE)" ] || { echo "cluster: needs Docker with 'docker compose' (or docker-compose); see docker/README.md"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "cluster: the Docker engine is not running (docker info fails)"; exit 1; }

cluster-up: compose-available
	$(COMPOSE) up -d --build
	@echo "Mesos master: http://localhost:5050  (agents on :5051 and :5052)"

cluster-down: compose-available
	$(COMPOSE) down --volumes

# Pins every package that `pip install .[dev]` resolves to, in a throwaway venv, then points
# http-parser at our stand-in (a path, so pip never asks PyPI for the upstream sdist). The
# workshop's set is then resolved under those pins, so that it is the same versions, fewer
# packages; what only macOS needs, pip and setuptools are pinned at the end of it. Run it with
# the oldest Python we support (PYTHON=python3.11 of Debian 12 is 3.11.2): a pin that needs a
# newer one breaks `make setup` there (tests/unit/test_locks.py checks it).
LOCK_VENV := build/lock-venv
LOCK_FREEZE = $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | grep -v -E '^(http-parser|mesos-tutorial)( |=|@)'
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q -c requirements-constraints.txt ./compat/http-parser ".[dev]"
	{ echo "# Generated by 'make lock' from pyproject.toml. Install with 'make setup-dev'."; \
	  echo "./compat/http-parser"; $(LOCK_FREEZE); } > $(DEV_LOCK)
	grep -v -E '^(#|\./)' $(DEV_LOCK) > build/lock-constraints.txt
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q -c build/lock-constraints.txt ./compat/http-parser ".[workshop]"
	{ echo "# Generated by 'make lock' from pyproject.toml's workshop extra, at the versions of $(DEV_LOCK)."; \
	  echo "# Installed by 'make setup' (the attendee set-up)."; \
	  echo "./compat/http-parser"; $(LOCK_FREEZE); } > $(WORKSHOP_LOCK)
	{ echo "# Only where their marker holds: what other platforms need besides the above (found by"; \
	  echo "# 'python -m tools.wheelhouse --platform-pins')."; \
	  $(LOCK_VENV)/bin/python -m tools.wheelhouse --platform-pins --lock $(WORKSHOP_LOCK); \
	  echo "# Build tools, pinned as well: venvs upgrade to this pip, and this setuptools builds pymesos,"; \
	  echo "# http-parser and the project itself (also offline, from the 'make wheelhouse' folder)."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all | grep -E '^pip=='; \
	  $(LOCK_VENV)/bin/python -m pip download -q --no-deps -d build/lock-setuptools "setuptools>=77" && \
	    ls build/lock-setuptools | sed -E 's/^setuptools-([^-]+)-.*/setuptools==\1/'; \
	} > build/lock-tail.txt && cat build/lock-tail.txt >> $(WORKSHOP_LOCK)
	rm -rf $(LOCK_VENV) build/lock-setuptools build/lock-constraints.txt build/lock-tail.txt

clean:
	rm -rf $(VENV) build _site .jekyll-cache .pytest_cache .ruff_cache

# -- The workshop (taller/) -----------------------------------------------------------------------
# `make ejercicio PASO=N` checks taller/pasoN, your skeleton of step N (in Spanish, or in
# English if LANG=en*); `make exercise STEP=N` is the same in English. `make skeletons`
# regenerates taller/paso*/ from the steps' EXERCISE markers; it refuses to overwrite a file that
# someone has written in (FORCE=1 overwrites it).
.PHONY: ejercicio exercise skeletons
ejercicio: setup
	@case "$(PASO)" in 1|2|3) ;; *) echo "make ejercicio: ¿qué paso? make ejercicio PASO=1 (o 2, o 3)"; exit 2;; esac
	@$(BIN)/python -m taller check $(PASO)

exercise: setup
	@case "$(STEP)" in 1|2|3) ;; *) echo "make exercise: which step? make exercise STEP=1 (or 2, or 3)"; exit 2;; esac
	@$(BIN)/python -m taller check $(STEP) --lang en

skeletons: setup-dev
	@$(BIN)/python -m taller generate $(if $(FORCE),--force)
