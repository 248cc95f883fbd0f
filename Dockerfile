# One image for every service: the command picks it (`python -m openlines.<service>`), as
# deploy/k8s does. Kubernetes probes /healthz and /readyz, so no HEALTHCHECK here.
#
#   docker build -t openlines:0.1.0 .
#   docker run --rm openlines:0.1.0 python -m openlines.ingest

# -- build: resolve exactly uv.lock into a virtualenv ------------------------------------------
FROM python:3.11.14-slim-bookworm AS build

# uv from PyPI, the version the Makefile bootstraps.
RUN pip install --no-cache-dir uv==0.13.8

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/openlines

WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
COPY src/ src/

# The seven services and what they run, from the lock, not editable: no dev group, no root
# package (the CLI and local stack pull the embedded Kafka and Postgres binaries).
RUN uv sync --frozen --no-dev --no-editable \
        --package openlines-ingest \
        --package openlines-dialogs \
        --package openlines-routing \
        --package openlines-crm-link \
        --package openlines-outbound \
        --package openlines-notify \
        --package openlines-analytics

# -- runtime: the virtualenv on a clean slim Python, no uv, no build tools -------------------
FROM python:3.11.14-slim-bookworm

RUN groupadd --system --gid 10001 openlines \
    && useradd --system --uid 10001 --gid openlines --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin openlines

COPY --from=build /opt/openlines /opt/openlines

ENV PATH=/opt/openlines/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPENLINES_HTTP_HOST=0.0.0.0

WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
CMD ["python", "-m", "openlines.ingest"]
