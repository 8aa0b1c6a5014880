# Targets mirror CI: `make ci` is what .ci/run does. Cluster targets live in mk/cluster.mk.
PYTHON ?= python

.PHONY: install run test test-fast lint typecheck golden bench ci clean

install: ## The package with its test tools, editable
	$(PYTHON) -m pip install -e '.[test,xgboost,lightgbm,spark]'

run: ## The training pipeline locally (kfp.local + a local MLflow server)
	kfp-mlflow run

test: ## Every test CI runs: unit, integration (real MLflow, kfp.local, SeaweedFS), manifests
	$(PYTHON) -m pytest

test-fast: ## Unit and manifest tests only (no servers, no pipeline runs)
	$(PYTHON) -m pytest -m "not integration and not on_cluster"

lint: ## ruff, and the import-layer contract
	ruff check .
	ruff format --check .
	lint-imports

typecheck:
	mypy

golden: ## Rewrite the compiled pipeline and the PipelineVersion manifests (never edit them)
	KFP_MLFLOW_UPDATE_GOLDEN=1 $(PYTHON) -m pytest -q tests/unit/test_compile.py tests/unit/test_batch_predict.py tests/unit/test_examples.py tests/manifests -m "not on_cluster"

bench: ## Plain script vs local pipeline: wall times, ratio, per-task overhead
	$(PYTHON) bench/pipeline_overhead.py

ci: install test

clean:
	rm -rf .kfp-mlflow build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

include mk/cluster.mk
