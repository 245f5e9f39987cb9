# ship: set-up and test commands. `make test` and `make demo` do all the set-up on a fresh machine.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
# The test runs keep bytecode, in the venv: a shell with PYTHONDONTWRITEBYTECODE set (this lab's
# is) otherwise has every pytest worker, and every `python -m pipeline` a test starts, compile
# ship, its dependencies and pytest's rewritten test modules afresh (4-5 s of CPU per worker).
PYTEST_ENV := PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/.venv/pycache

.PHONY: help deps venv binaries cluster cluster-down test unit lint demo bench screenshot faults faults-down clean

help:
	@echo "make test          install everything, start the local parts (the second cluster too), run the whole suite"
	@echo "make demo          run the whole pipeline on a local cluster it starts itself"
	@echo "make cluster       start the local parts (prints export lines); make cluster-down stops them"
	@echo "                   (with a real node, Traefik and Prometheus, as root; SHIP_REAL_NODE=0 leaves them out;"
	@echo "                   SHIP_SECOND_CLUSTER=1 adds a second, small cluster: context ship-second, same KUBECONFIG)"
	@echo "make unit          lint, type-check and the fast tests that need no local parts"
	@echo "make lint          ruff, mypy (strict on the pure modules) and import-linter (the layers)"
	@echo "make bench         ship vs kubectl apply --server-side on the local cluster (bench/results.json)"
	@echo "make screenshot    the dashboard test saves its Chromium screenshot as docs/dashboard.png"
	@echo "make faults        faults injected into a cluster of its own while ship works (bench/faults.json)"

deps:
	@hack/install-deps.sh

$(VENV_STAMP): pyproject.toml constraints.txt
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "python3 3.11+ is needed" >&2; exit 1; }
	@test -x $(PY) || python3 -m venv .venv
	@.venv/bin/pip install -q --disable-pip-version-check --constraint constraints.txt -e '.[test]'
	@touch $@

venv: $(VENV_STAMP)

binaries:
	@hack/build-binaries.sh >/dev/null

cluster: deps binaries
	@hack/cluster-up.sh

cluster-down:
	@hack/cluster-down.sh

lint: venv
	@.venv/bin/ruff check pipeline tests bench
	@.venv/bin/ruff format --check -q pipeline bench  # formatted at line length 100 (pyproject.toml)
	@.venv/bin/mypy pipeline tests/fakes.py
	@.venv/bin/lint-imports --no-cache --no-logo >/dev/null || .venv/bin/lint-imports --no-cache --no-logo  # the layers (pyproject.toml)

unit: lint
	$(PYTEST_ENV) $(PY) -m pytest -m "not cluster and not registry and not engine and not binaries and not slow and not realnode and not faults and not multicluster" -q -n 2

test: deps venv binaries lint
	@eval "$$(SHIP_SECOND_CLUSTER=$${SHIP_SECOND_CLUSTER:-1} hack/cluster-up.sh)" && $(PYTEST_ENV) $(PY) -m pytest -q

demo: deps venv binaries
	@hack/demo.sh

bench: deps venv binaries
	@$(PY) -c "import matplotlib" 2>/dev/null || $(PY) -m pip install -q -e '.[bench]'
	@eval "$$(hack/cluster-up.sh)" && $(PY) bench/run.py

screenshot: deps venv
	@SHIP_SCREENSHOTS=docs $(PY) -m pytest -q tests/report/test_dashboard.py -k chromium
# The fault lab runs its own cluster (FAULTS_CLUSTER, default ship-faults on 127.0.0.1:18643),
# so it never restarts the default cluster's kube-apiserver; make faults-down stops it.
FAULTS_ENV = SHIP_CLUSTER=$${FAULTS_CLUSTER:-ship-faults} SHIP_KUBE_PORT=$${FAULTS_KUBE_PORT:-18643} \
	SHIP_REGISTRY_PORT=$${FAULTS_REGISTRY_PORT:-15800} SHIP_STATE=$${FAULTS_STATE:-$$HOME/.cache/ship/run-ship-faults} SHIP_KUBE_APF=1 SHIP_REAL_NODE=0

faults: deps venv binaries
	@$(PY) bench/faults.py

faults-down:
	@$(FAULTS_ENV) hack/cluster-down.sh

clean: cluster-down
	rm -rf .venv
