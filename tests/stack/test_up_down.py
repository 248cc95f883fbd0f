"""`openlines up --detach` / `openlines down` as a user runs them, plus the service path."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from openlines.events.topics import TOPICS, dlq_topic
from openlines.kit.embedded import StartupError, reserve_port
from openlines.kit.embedded.ports import ephemeral_range
from openlines.kit.embedded.tansu import kafka_answers
from openlines.kit.kafka.admin import admin_client
from openlines.kit.testing.waiting import eventually
from openlines.stack.services import (
    PYTHON,
    ServiceSpec,
    reserve_port_base,
    smtp_ports,
    stack_ports,
)
from openlines.stack.state import StackPaths, exclusive, read_state
from openlines.stack.supervisor import StackConfig, Supervisor

pytestmark = pytest.mark.infra  # runs servers or processes of its own


@pytest.fixture
def home() -> Iterator[Path]:
    # Short and outside pytest's tmp: the Postgres socket lives in it.
    path = Path(tempfile.mkdtemp(prefix="ol-stack-", dir="/tmp"))
    yield path
    subprocess.run(_cli("down"), env=_env(path), capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "openlines.cli.main", *args]


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *_cli(*args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(120):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "OPENLINES_HOME": str(home), "COLUMNS": "200"}
    for name in ("OPENLINES_KAFKA_BOOTSTRAP", "OPENLINES_DATABASE_URL"):
        env.pop(name, None)
    return env


def _family(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def _mentioning(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


async def test_up_detach_then_down(home: Path) -> None:
    port = reserve_port()
    env = _env(home)
    code, out = await _run("up", "--detach", "--infra-only", "--kafka-port", str(port), env=env)
    assert code == 0, out
    state = read_state(StackPaths(home))
    assert state is not None and state["status"] == "ready"
    assert state["kafka"]["bootstrap"] == f"127.0.0.1:{port}"
    assert f"127.0.0.1:{port}" in out

    with psycopg.connect(state["postgres"]["url"]) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("openlines",)

    expected = {n for name in TOPICS for n in (name, dlq_topic(name))}
    async with admin_client(state["kafka"]["bootstrap"]) as admin:
        assert expected <= set(await admin.list_topics())
        (configs,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "openlines.dialogs.v1")]
        )
    assert ("retention.ms", "-1") in [(e[0], e[1]) for e in configs.resources[0][4]]

    code, out = await _run("up", "--detach", "--infra-only", "--kafka-port", "0", env=env)
    assert code == 1
    assert "already running" in out

    started = [
        *_family(state["pid"]),
        *_family(state["postgres"]["pid"]),
        psutil.Process(state["kafka"]["pid"]),
    ]
    code, out = await _run("down", env=env)
    assert code == 0, out
    assert "stopped" in out
    assert _alive(started) == []
    assert _mentioning(home) == []
    assert read_state(StackPaths(home)) is None


def test_down_without_a_stack(home: Path) -> None:
    down = subprocess.run(_cli("down"), env=_env(home), capture_output=True, text=True, timeout=60)
    assert down.returncode == 0
    assert "no stack running" in down.stdout


def test_services_start_get_the_urls_and_stop(home: Path, tmp_path: Path) -> None:
    (tmp_path / "readyz").write_text("ok")
    # A stand-in service: a static file server answers /readyz with 200.
    web = ServiceSpec(
        "web",
        [
            PYTHON,
            "-m",
            "http.server",
            "{port}",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path),
        ],
        port=0,
    )
    env_dump = ServiceSpec(
        "env-dump",
        [
            PYTHON,
            "-c",
            "import os, time; print(os.environ['OPENLINES_KAFKA_BOOTSTRAP'], "
            "os.environ['OPENLINES_DATABASE_URL'], flush=True); time.sleep(600)",
        ],
    )
    supervisor = Supervisor(StackConfig(home, kafka_port=0, services=[web, env_dump]))
    with exclusive(supervisor.paths):
        try:
            supervisor.start()
            state = read_state(supervisor.paths)
            assert state is not None and [s["name"] for s in state["services"]] == [
                "web",
                "env-dump",
            ]
            pids = [s["pid"] for s in state["services"]]
            # env-dump has no port to be ready on: its marker is the line it prints, which a
            # loaded machine may take a while to get to.
            dump = home / "logs" / "env-dump.log"
            dumped = asyncio.run(
                eventually(lambda: dump.read_text() or None, timeout=30, what="env-dump's line")
            )
        finally:
            supervisor.stop()
    assert _alive([psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)]) == []
    assert _mentioning(home) == []
    assert state["kafka"]["bootstrap"] in dumped and "/openlines?host=" in dumped


def test_a_crashing_service_fails_startup_with_its_log(home: Path) -> None:
    crash = ServiceSpec("crash", [PYTHON, "-c", "raise SystemExit('boom: bad config')"], port=0)
    supervisor = Supervisor(StackConfig(home, kafka_port=0, services=[crash]))
    with exclusive(supervisor.paths):
        try:
            with pytest.raises(StartupError, match="boom: bad config"):
                supervisor.start()
        finally:
            supervisor.stop()
    assert _mentioning(home) == []


def test_a_test_stack_gets_its_ports_outside_the_ephemeral_range() -> None:
    low, _ = ephemeral_range()
    base = reserve_port_base()
    assert all(20000 <= port < low for port in stack_ports(base).values())
    assert all(20000 <= port < low for port in smtp_ports(base).values())


def test_postgres_and_tansu_killed_under_the_stack_are_restarted(home: Path) -> None:
    """Like Kubernetes: Postgres comes back on the same data (committed rows survive) and
    socket; Tansu on the same port with the stack's topics. Before, either death stopped the
    whole stack."""
    supervisor = Supervisor(StackConfig(home, kafka_port=0, infra_only=True))
    with exclusive(supervisor.paths):
        try:
            supervisor.start()
            before = read_state(supervisor.paths)
            assert before is not None
            url = before["postgres"]["url"]
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE kept (n int)")
                conn.execute("INSERT INTO kept VALUES (42)")
            watcher = threading.Thread(target=supervisor.watch, daemon=True)
            watcher.start()
            os.kill(before["postgres"]["pid"], signal.SIGKILL)
            os.kill(before["kafka"]["pid"], signal.SIGKILL)

            deadline = time.monotonic() + 90
            while True:
                state = read_state(supervisor.paths)
                assert state is not None
                pg_back = state["postgres"]["pid"] != before["postgres"]["pid"]
                kafka_back = state["kafka"]["pid"] != before["kafka"]["pid"]
                if pg_back and kafka_back and supervisor.kafka and supervisor.kafka.running:
                    break
                assert watcher.is_alive(), "the supervisor gave up"
                assert time.monotonic() < deadline, "Postgres and Tansu were not restarted"
                time.sleep(0.2)
            assert state["postgres"]["url"] == url
            assert state["kafka"]["bootstrap"] == before["kafka"]["bootstrap"]
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
            host, port = state["kafka"]["bootstrap"].split(":")
            assert kafka_answers(host, int(port))

            async def topics() -> set[str]:
                async with admin_client(state["kafka"]["bootstrap"]) as admin:
                    return set(await admin.list_topics())

            assert set(TOPICS) <= asyncio.run(topics())
        finally:
            supervisor.halt.set()
            supervisor.stop()
    assert _mentioning(home) == []
