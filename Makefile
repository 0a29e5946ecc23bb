# Everyday commands. A fresh machine needs only Python 3.12 and make:
#   make start-api   build the package and serve the API on http://127.0.0.1:3000
#   make test        build, lint, type-check and run every test (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PACKAGE := .aws-sam/build/PredictFunction
EVENT ?= events/http-api-predict.json
ARCH ?= x86_64
PORT ?= 3000
# Python 3.12 is Lambda's runtime: use it wherever it is (PATH, or a pyenv install whose shim refuses).
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
# sam build needs python3.12 on PATH: the virtualenv's interpreter provides it.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup lock build validate start-api invoke publish lint test bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt functions/predict/requirements.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found: install it (Lambda's runtime is python3.12)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --requirement requirements-dev.txt
	touch $@

setup: $(VENV)/.installed ## create .venv with the pinned tools and libraries

lock: $(VENV)/.installed ## re-pin functions/predict/requirements.txt and requirements-dev.txt
	cd functions/predict && pip-compile --quiet --strip-extras --no-header --no-emit-index-url \
		--no-emit-find-links --annotation-style=line --output-file requirements.txt requirements.in
	cd bench/baseline/function && pip-compile --quiet --strip-extras --no-header --no-emit-index-url \
		--no-emit-find-links --annotation-style=line --output-file requirements.txt requirements.in
	pip-compile --quiet --strip-extras --no-header --no-emit-index-url --no-emit-find-links \
		--annotation-style=line --output-file requirements-dev.txt requirements-dev.in

build: setup ## sam build: train or reuse the model and assemble .aws-sam/build/PredictFunction (ARCH=arm64 for Graviton)
	ARCHITECTURE=$(ARCH) sam build --parameter-overrides Architecture=$(ARCH)

validate: setup ## sam validate --lint (offline)
	sam validate --lint

start-api: build ## serve the built package on http://127.0.0.1:3000 (PORT=...), like sam local start-api
	python local/lambda_local.py start-api --port $(PORT)

invoke: build ## invoke the built package with EVENT=events/<file>.json, like sam local invoke
	python local/lambda_local.py invoke $(EVENT)

publish: build ## upload the built model to the versioned bucket BUCKET=... for the ModelBucket parameter
	@test -n "$(BUCKET)" || { echo "usage: make publish BUCKET=<versioned bucket> [KEY=<key>]"; exit 1; }
	python -m build.publish --bucket $(BUCKET) $(if $(KEY),--key $(KEY))

lint: setup ## ruff and mypy
	ruff check .
	ruff format --check .
	mypy

test: build validate lint ## everything CI runs: build, validate, lint, unit and integration tests
	pytest

bench: setup ## compiled vs scikit-learn engine per model, and the naive baseline; writes bench/RESULTS.md and the README tables
	python -m bench.run

clean: ## remove the build output, the model cache and the virtualenv
	rm -rf .aws-sam .model-cache bench/.build $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
