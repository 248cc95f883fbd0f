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

test: sync chromium
	$(RUN) pytest

# The widget's browser test (tests/e2e/test_widget_browser.py) drives Debian's `chromium`:
# installed here when missing and possible (root with apt-get); else that test skips loudly.
.PHONY: chromium
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y chromium || (apt-get update && apt-get install -y chromium) || true; \
	  fi; \
	fi; \
	command -v chromium >/dev/null 2>&1 || echo "!! chromium is not installed: the widget browser test will SKIP"

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
