# Everything bootstraps into the repo: .tools/ holds uv, .venv/ holds the suite.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
RUN    := $(UV) run --frozen --no-sync

.PHONY: run test test-fast lint fmt bench sync clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

sync: .venv/.synced

run: sync
	$(RUN) openlines up

test: sync
	$(RUN) pytest

# The pure tests: no broker, no database, no processes (see the `infra` marker in
# openlines.kit.testing.plugin). Under 30 s on 2 cores.
test-fast: sync
	$(RUN) pytest -m "not infra" -q

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy libs services src tests
	$(RUN) mypy deploy/k8s/generate.py
	$(RUN) hadolint Dockerfile
	$(RUN) python deploy/k8s/generate.py --check

fmt: sync
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: sync
	$(RUN) openlines bench all

clean:
	rm -rf .venv $(TOOLS) .openlines
