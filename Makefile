# Everyday commands. A fresh machine needs only Python 3.12 and make:
#   make start-api   build the package and serve the API on http://127.0.0.1:3000
#   make test        build, lint, type-check and run every test (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
EVENT ?= events/http-api-predict.json
ARCH ?= x86_64
PORT ?= 3000
# The model spec to build and serve (models/iris.toml when empty); sam build hands it to build/.
MODEL ?=
export MODEL
# Where the deployed function gets its model: package (the default) or s3 (left out of the
# package; `make publish` builds so). sam build hands it to build/.
MODEL_SOURCE ?=
export MODEL_SOURCE
# sam build needs python3.12 on PATH: the virtualenv's interpreter provides it.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# SAM's telemetry off: otherwise the first sam call prints a notice about it.
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup lock build validate start-api invoke score deploy drift publish lint test test-suite test-unit fuzz mutate bench bench-trees bench-scoring bench-capture clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## create .venv with the pinned tools and libraries (build/setup_env.sh; sam build runs it too)
	@build/setup_env.sh

lock: setup ## re-pin functions/predict/requirements.txt and requirements-dev.txt
	cd functions/predict && pip-compile --quiet --strip-extras --no-header --no-emit-index-url \
		--no-emit-find-links --annotation-style=line --output-file requirements.txt requirements.in
	cd bench/baseline/function && pip-compile --quiet --strip-extras --no-header --no-emit-index-url \
		--no-emit-find-links --annotation-style=line --output-file requirements.txt requirements.in
	pip-compile --quiet --strip-extras --no-header --no-emit-index-url --no-emit-find-links \
		--annotation-style=line --output-file requirements-dev.txt requirements-dev.in

# Skipped when the package was built from the same inputs for the same ARCH (build/inputs.py).
# The package's path is defined once, in local/lambda_local.py: every tool here defaults to it.
build: setup ## sam build: train or reuse the model (MODEL=<spec.toml>) and assemble the package (ARCH=arm64 for Graviton; FORCE=1 even if unchanged; MODEL_SOURCE=s3 leaves the model out, for make publish)
	@if [[ -z "$(FORCE)" ]] && python -m build.inputs check --architecture $(ARCH); then \
		echo "sam build skipped: nothing that goes into the package changed since it was built for $(ARCH) (FORCE=1 rebuilds)"; \
	else \
		echo "ARCHITECTURE=$(ARCH) sam build --parameter-overrides Architecture=$(ARCH)"; \
		ARCHITECTURE=$(ARCH) sam build --parameter-overrides Architecture=$(ARCH); \
	fi

validate: setup ## sam validate --lint (offline)
	sam validate --lint

start-api: build ## serve the built package on http://127.0.0.1:3000 (PORT=...), like sam local start-api
	python local/lambda_local.py start-api --port $(PORT)

invoke: build ## invoke the built package with EVENT=events/<file>.json, like sam local invoke
	python local/lambda_local.py invoke $(EVENT)

# Without MODEL=, the model built last (build/inputs.py last-spec), not the default: scoring after
# `make build MODEL=models/diabetes.toml` must not rebuild Iris and reject every row.
score: setup ## score INPUT=rows.csv|.jsonl into OUTPUT=predictions.csv|.jsonl with the model built last, or MODEL=<spec.toml> (ID_COLUMN=id, PROBABILITIES=1)
	@[[ -n "$(INPUT)" && -n "$(OUTPUT)" ]] || { echo "usage: make score INPUT=<rows.csv|.jsonl> OUTPUT=<predictions.csv|.jsonl> [MODEL=<spec.toml>] [ID_COLUMN=id] [PROBABILITIES=1]"; exit 1; }
	@$(MAKE) --no-print-directory build MODEL="$(or $(MODEL),$(shell python -m build.inputs last-spec))"
	python local/score.py $(if $(ID_COLUMN),--id-column $(ID_COLUMN)) $(if $(PROBABILITIES),--probabilities) "$(INPUT)" "$(OUTPUT)"

# The stack is named after the model built last (iris-predict for the default model, as in
# samconfig.toml), so that an own model never deploys over the Iris stack by default.
deploy: build ## sam deploy the built package as the stack STACK (default: <model name>-predict, iris-predict for Iris)
	sam deploy --stack-name "$(or $(STACK),$(shell python -m build.inputs stack-name))"

drift: setup ## drift report of captured requests: CAPTURE=<folder>|s3://<bucket>/captures/ [HOURS=24 | START=... END=...] [OUT=drift-report]; exit 1 on drift
	@[[ -n "$(CAPTURE)" ]] || { echo "usage: make drift CAPTURE=<folder or s3://bucket/captures/> [HOURS=24] [START=<ISO time>] [END=<ISO time>] [OUT=drift-report] [MANIFEST=<manifest.json>]"; exit 2; }
	python local/drift.py "$(CAPTURE)" $(if $(HOURS),--hours $(HOURS)) $(if $(START),--start $(START)) $(if $(END),--end $(END)) $(if $(OUT),--out $(OUT)) $(if $(MANIFEST),--manifest $(MANIFEST))

# Builds the package without the model (MODEL_SOURCE=s3): a deployed function loads it from S3,
# so a model too large for the package deploys too (docs/api.md "A model from S3").
publish: ## build the package without the model and upload the model to the versioned bucket BUCKET=... for the ModelBucket parameter; prints the sam deploy to run
	@[[ -n "$(BUCKET)" ]] || { echo "usage: make publish BUCKET=<versioned bucket> [KEY=<key>] [MODEL=<spec.toml>]"; exit 1; }
	@$(MAKE) --no-print-directory build MODEL_SOURCE=s3
	python -m build.publish --bucket $(BUCKET) $(if $(KEY),--key $(KEY))

lint: setup ## ruff and mypy
	ruff check .
	ruff format --check .
	mypy

# The tests run on every core (pytest-xdist; WORKERS=1 for one process), with the hypothesis
# profile HYPOTHESIS_PROFILE names (tests/conftest.py: `ci` unless set). Coverage (pyproject.toml:
# sources, core and floor) is measured and gated once, by `make test`; the inner loop goes without.
# PYTHONDONTWRITEBYTECODE empty: bytecode and pytest's rewritten test modules are kept between runs
# (and shared by the cold starts the tests spawn) even where the environment turns that off; a
# worker's collection costs about a third less CPU. The build never packages them (build/package.py).
WORKERS ?= auto
PYTEST := PYTHONDONTWRITEBYTECODE= pytest --numprocesses=$(WORKERS) --dist=worksteal

# After the build, the template's lint, ruff and mypy run beside the tests rather than before them:
# mypy is single-threaded, so alone it leaves a core idle for most of a minute. Each one's output
# is shown whole when it ends (--output-sync), and any failure fails make test.
test: build node_modules/.package-lock.json ## everything CI runs: build, validate, lint, unit and integration tests with the coverage floor
	@$(MAKE) --no-print-directory --jobs=3 --output-sync=target validate lint test-suite

test-suite: setup node_modules/.package-lock.json
	$(PYTEST) --cov --cov-report=term-missing:skip-covered

test-unit: setup node_modules/.package-lock.json ## the inner loop: tests/unit without the `slow` tests (make test runs them) and without coverage; no build, no built package
	$(PYTEST) tests/unit -m "not slow"

fuzz: setup node_modules/.package-lock.json ## the property tests and fuzzers with many more examples (hypothesis profile `deep`); run before calling an issue done
	HYPOTHESIS_PROFILE=deep $(PYTEST) tests/unit

mutate: setup ## mutation testing of the critical modules (not in CI; MUTANTS="serving.model.*" for some): a score per module (docs/mutation.md)
	python tools/mutation/mutate.py run $(MUTANTS)

# The tests' tools from npm (asl-validator), pinned in package-lock.json; npm ci writes this file last.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

bench: setup ## compiled vs scikit-learn engine per model, and the naive baseline; writes bench/RESULTS.md and the tables in docs/benchmark.md and docs/operations.md
	python -m bench.run

bench-trees: setup ## tree models (forest, GradientBoosting, HistGradientBoosting, XGBoost, LightGBM) at a small and a production size, compiled vs the library (TREES_ARGS=--quick for a smoke run); writes the trees table in docs/benchmark.md
	python -m bench.trees $(TREES_ARGS)

bench-scoring: build ## make score against scikit-learn's predict loop (100,000 and 1,000,000 rows); writes the tables in docs/scoring.md and README.md
	python -m bench.scoring

bench-capture: setup ## capture's cost per request (off, 10 %, 100 %), make drift on 1,000,000 captured records, and what both cost; writes the figures in docs/drift.md
	python -m bench.capture

clean: ## remove the build output, the caches, mutmut's copy, the virtualenv and node_modules
	rm -rf .aws-sam .model-cache drift-report .lambda-runtime-provided bench/.build mutants $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage
