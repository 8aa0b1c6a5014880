# Cluster targets (included from the top Makefile). Needs Docker + kind for the cluster ones;
# `manifests`, `lock` and `manifests-test` work offline.
#   make cluster-up image deploy run-on-cluster cluster-test   # clean clone → a run on kind
#   make cluster-down

PYTHON       ?= python
KIND         ?= kind
DOCKER       ?= docker
CLUSTER_NAME ?= kfp-mlflow
KFP_HOST     ?= http://localhost:8080
VERSION      := $(shell $(PYTHON) -c "from kfp_mlflow._version import __version__; print(__version__)")
IMAGE        ?= ghcr.io/kfp-mlflow/kfp-mlflow:$(VERSION)
GIT_COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
# Keep in step with manifests/mlflow/base/kustomization.yaml (images: mlflow-server).
MLFLOW_SERVER_IMAGE ?= ghcr.io/kfp-mlflow/mlflow-server:3.17.2-1
# The kubectl from the PyPI wheel (pip install -e '.[test]'); override with KUBECTL=kubectl.
KUBECTL      ?= $(shell $(PYTHON) -c "from kfp_mlflow.cluster import kubectl_path; print(kubectl_path())")
KCTX         := --context kind-$(CLUSTER_NAME)

.PHONY: cluster-up image deploy deploy-kfp deploy-mlflow deploy-pipelines run-on-cluster \
        cluster-test cluster-down manifests manifests-test lock

cluster-up: ## Create the kind cluster (kind-config.yaml)
	$(KIND) get clusters | grep -qx $(CLUSTER_NAME) || $(KIND) create cluster --config kind-config.yaml --wait 120s

image: ## Build the component and MLflow server images and load them into kind
	$(DOCKER) build -f components/Dockerfile --build-arg IMAGE=$(IMAGE) \
	  --build-arg GIT_COMMIT=$(GIT_COMMIT) -t $(IMAGE) .
	$(DOCKER) build -t $(MLFLOW_SERVER_IMAGE) manifests/mlflow/image
	$(KIND) load docker-image --name $(CLUSTER_NAME) $(IMAGE) $(MLFLOW_SERVER_IMAGE)

deploy: deploy-kfp deploy-mlflow deploy-pipelines ## Everything, in dependency order

deploy-kfp:
	$(KUBECTL) $(KCTX) apply --server-side -k manifests/cert-manager
	$(KUBECTL) $(KCTX) -n cert-manager wait --for=condition=Available deploy --all --timeout=5m
	$(KUBECTL) $(KCTX) apply --server-side -k manifests/kfp/cluster-scoped
	$(KUBECTL) $(KCTX) wait --for=condition=established --timeout=2m \
	  crd/applications.app.k8s.io crd/pipelines.pipelines.kubeflow.org crd/pipelineversions.pipelines.kubeflow.org
	$(KUBECTL) $(KCTX) apply --server-side -k manifests/kfp/install
	$(KUBECTL) $(KCTX) -n kubeflow wait --for=condition=Available deploy --all --timeout=15m

deploy-mlflow:
	$(KUBECTL) $(KCTX) apply --server-side -k manifests/mlflow/overlays/kind
	$(KUBECTL) $(KCTX) -n mlflow wait --for=condition=complete job/mlflow-postgres-secret --timeout=5m
	$(KUBECTL) $(KCTX) -n mlflow rollout status statefulset/postgres --timeout=5m
	$(KUBECTL) $(KCTX) -n mlflow wait --for=condition=complete job/mlflow-create-bucket --timeout=5m
	$(KUBECTL) $(KCTX) -n mlflow rollout status deploy/mlflow --timeout=5m

deploy-pipelines:
	$(KUBECTL) $(KCTX) apply --server-side -k manifests/pipelines/base
	$(KUBECTL) $(KCTX) -n kubeflow get pipelineversions.pipelines.kubeflow.org

run-on-cluster: ## Submit the training pipeline to KFP on kind and wait for it
	kfp-mlflow submit --host $(KFP_HOST) --wait

cluster-test: ## Tests against the live kind cluster
	KFP_MLFLOW_KFP_HOST=$(KFP_HOST) $(PYTHON) -m pytest -m on_cluster -q

cluster-down: ## Delete the kind cluster
	$(KIND) delete cluster --name $(CLUSTER_NAME)

manifests: ## Re-render the PipelineVersion golden files (manifests/pipelines/base)
	kfp-mlflow render -o manifests/pipelines/base

manifests-test: ## Offline manifest tests (render, schema, policy, contract, golden)
	$(PYTHON) -m pytest tests/manifests -q

lock: ## Re-lock the component image and MLflow server image dependencies
	uv pip compile pyproject.toml components/build-requirements.in --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --custom-compile-command "make lock" \
	  -o components/requirements.lock
	uv pip compile manifests/mlflow/image/requirements.in --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --custom-compile-command "make lock" \
	  -o manifests/mlflow/image/requirements.txt
