"""The local stack behind `openlines up`: Postgres, Tansu, topics, then the services.

Stops in reverse order on Ctrl-C or SIGTERM (which is what `openlines down` sends), and
records itself in `<home>/stack.json` so another shell can find and stop it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from openlines.kit.embedded import EmbeddedKafka, EmbeddedPostgres, StartupError
from openlines.kit.embedded.ports import port_is_free
from openlines.kit.embedded.processes import log_tail
from openlines.kit.kafka.admin import ensure_topics
from openlines.stack.restore import restore_topics
from openlines.stack.services import RunningService, ServiceSpec, default_services
from openlines.stack.state import (
    AlreadyRunning,
    StackPaths,
    already_running_message,
    clean_leftovers,
    exclusive,
    is_locked,
    process_record,
    read_state,
    write_state,
)
from openlines.stack.topics import stack_topics

__all__ = ["ServiceSpec", "StackConfig", "Supervisor", "show", "start_detached"]

DATABASE = "openlines"
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class StackConfig:
    home: Path
    kafka_port: int = 9092  # 0: any free port
    port_base: int = 8080  # gateway; the other HTTP ports are fixed offsets (services.py)
    lines_file: Path | None = None  # default: config/demo.yaml
    infra_only: bool = False  # Postgres, Kafka and topics, no services
    services: Sequence[ServiceSpec] | None = None  # default: derived from the fields above
    ready_timeout: float = 60.0

    def service_specs(self) -> Sequence[ServiceSpec]:
        if self.services is not None:
            return self.services
        if self.infra_only:
            return []
        return default_services(self.port_base, self.lines_file)

    def cli_args(self) -> list[str]:
        """The `openlines up` arguments that reproduce this config (detached mode)."""
        args = [
            "--home",
            str(self.home),
            "--kafka-port",
            str(self.kafka_port),
            "--port-base",
            str(self.port_base),
            "--ready-timeout",
            str(self.ready_timeout),
        ]
        if self.lines_file is not None:
            args += ["--lines", str(self.lines_file)]
        if self.infra_only:
            args.append("--infra-only")
        return args

    @property
    def paths(self) -> StackPaths:
        return StackPaths(self.home)


class _Stop(BaseException):
    """Raised by the signal handler; BaseException so no `except Exception` swallows it."""


class Supervisor:
    def __init__(self, config: StackConfig, console: Console | None = None) -> None:
        self.config = config
        self.paths = config.paths
        self.console = console or Console()
        self.postgres: EmbeddedPostgres | None = None
        self.kafka: EmbeddedKafka | None = None
        self.services: list[RunningService] = []
        self.state: dict[str, Any] = {}
        self._stopping = False
        self.halt = threading.Event()  # ends `watch()` from another thread (tests)

    def run(self) -> int:
        """Foreground mode: start, wait for a signal or a crash, stop. Returns an exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            with exclusive(self.paths):
                try:
                    return self._serve()
                finally:
                    self._stopping = True  # a second Ctrl-C must not cut the cleanup short
                    self.stop()
        except AlreadyRunning as exc:
            self.console.print(f"[red]{exc}[/]")
            return 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _serve(self) -> int:
        try:
            self.start()
            show(self.console, self.state)
            self.console.print("[dim]Ctrl-C here, or `openlines down`, stops it.[/]")
            return self.watch()
        except _Stop:
            return 0
        except StartupError as exc:
            self.console.print(f"[red]startup failed:[/] {exc}")
            return 1

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            self._stopping = True
            raise _Stop

    def start(self) -> None:
        """Start everything and record it; the caller holds the lock and calls `stop()`."""
        paths = self.paths
        paths.logs.mkdir(parents=True, exist_ok=True)
        stale = read_state(paths)
        if stale is not None and clean_leftovers(paths, stale):
            self.console.print("[yellow]stopped leftovers of a previous run[/]")
        self.state = {
            **process_record(os.getpid()),
            "status": "starting",
            "home": str(paths.home),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        self._save()
        port = self.config.kafka_port
        if port and not port_is_free(port):
            raise StartupError(f"port {port} is in use; pick another with --kafka-port (0: any)")
        database_url = self._start_postgres()
        bootstrap = self._start_kafka(port)
        self._restore_topics(database_url, bootstrap)
        env = {"OPENLINES_KAFKA_BOOTSTRAP": bootstrap, "OPENLINES_DATABASE_URL": database_url}
        self._start_services(env)
        self.state["status"] = "ready"
        self._save()

    def _start_postgres(self) -> str:
        self.postgres = pg = EmbeddedPostgres(self.paths.pg_data)
        self._step("postgres", pg.start)
        url = pg.create_database(DATABASE)
        assert pg.pid is not None
        self.state["postgres"] = {
            **process_record(pg.pid),
            "url": url,
            "data_dir": str(pg.data_dir),
            "log": str(pg.log_path),
        }
        self._save()
        return url

    def _start_kafka(self, port: int) -> str:
        self.kafka = kafka = EmbeddedKafka(port=port, log_path=self.paths.log("tansu"))
        self._step("tansu", kafka.start)
        assert kafka.pid is not None
        self.state["kafka"] = {
            **process_record(kafka.pid),
            "bootstrap": kafka.bootstrap,
            "log": str(kafka.log_path),
        }
        self._save()
        topics = stack_topics()
        self._step("topics", lambda: asyncio.run(ensure_topics(kafka.bootstrap, topics)))
        self.state["topics"] = [t.name for t in topics]
        return kafka.bootstrap

    def _restore_topics(self, database_url: str, bootstrap: str) -> None:
        """Before any consumer starts: the topics the (in-memory) broker lacks get back what
        the event stores hold (restore.py says why the topics, and what is not restored)."""
        restored = []
        self._step(
            "restore",
            lambda: restored.extend(asyncio.run(restore_topics(database_url, bootstrap))),
        )
        for r in restored:
            self.console.print(
                f"  [dim]restored {r.events:,} events of {r.topic} from {r.schema}'s event store[/]"
            )

    def _start_services(self, env: dict[str, str]) -> None:
        # All start at once, then each is awaited: start-up times overlap.
        records = self.state.setdefault("services", [])
        for spec in self.config.service_specs():
            service = RunningService(spec, self.paths.log(spec.name), env)
            self.services.append(service)
            records.append(
                {
                    **process_record(service.proc.pid),
                    "name": spec.name,
                    "url": service.url,
                    "log": str(service.log_path),
                    **({"smtp": f"127.0.0.1:{spec.smtp_port}"} if spec.smtp_port else {}),
                }
            )
            self._save()
        deadline = time.monotonic() + self.config.ready_timeout
        for service in self.services:
            self._step(service.name, functools.partial(service.wait_ready, deadline))

    def _save(self) -> None:
        write_state(self.paths, self.state)

    def watch(self) -> int:
        """Block until stopped by a signal (raises _Stop) or until the stack cannot go on.

        Whatever dies is restarted, as Kubernetes would restart its pod: a service; Postgres
        on the same data directory and socket (committed data survives, services reconnect
        by themselves); Tansu on the same port, with the topics created again. Tansu keeps
        its log in memory, so a broker restart loses the events it held (a warning says so):
        a broker *outage* (stopped, then back) loses nothing. Anything that keeps dying (more
        than MAX_RESTARTS within RESTART_WINDOW seconds) stops the stack.
        """
        recent: dict[str, list[float]] = {}

        def may_restart(name: str, why: str) -> bool:
            now = time.monotonic()
            window = [t for t in recent.get(name, []) if now - t < RESTART_WINDOW]
            if len(window) >= MAX_RESTARTS:
                self.console.print(f"[red]{name} keeps exiting ({why}); stopping the stack[/]")
                return False
            recent[name] = [*window, now]
            self.console.print(f"[yellow]{name} exited ({why}); restarting it[/]")
            return True

        while not self.halt.wait(0.5):
            for name, why, revive in self._dead_infrastructure():
                if not may_restart(name, why):
                    return 1
                try:
                    self._step(name, revive)
                except Exception as exc:  # tried again on the next round, within budget
                    self.console.print(f"[red]{name} did not restart:[/] {exc}")
            for service in self.services:
                code = service.proc.poll()
                if code is None:
                    continue
                if not may_restart(
                    f"service {service.name}", f"code {code}, log {service.log_path}"
                ):
                    return 1
                service.restart()
                self._record_pid(service)
        return 0

    def stop(self) -> None:
        if self.state:
            self.state["status"] = "stopping"
            self._save()
        for service in reversed(self.services):
            service.stop()
        self.services = []
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self.state:
            self.paths.state_file.unlink(missing_ok=True)
            self.state = {}
            self.console.print("stack stopped")

    def _step(self, name: str, action: Callable[[], object]) -> None:
        started = time.monotonic()
        action()
        self.console.print(f"  {name:<10} ready in {time.monotonic() - started:.2f}s")

    def _record_pid(self, service: RunningService) -> None:
        for record in self.state.get("services", []):
            if record["name"] == service.name:
                record.update(process_record(service.proc.pid))
                record["restarts"] = service.restarts
        self._save()

    def _dead_infrastructure(self) -> list[tuple[str, str, Callable[[], None]]]:
        dead: list[tuple[str, str, Callable[[], None]]] = []
        if self.postgres is not None and not self.postgres.running:
            dead.append(("postgres", f"log {self.postgres.log_path}", self._restart_postgres))
        if self.kafka is not None and not self.kafka.running:
            dead.append(("tansu", f"log {self.kafka.log_path}", self._restart_kafka))
        return dead

    def _restart_postgres(self) -> None:
        pg = self.postgres
        assert pg is not None
        pg.stop()  # forgets the dead server; the data directory (and so the URL) stays
        pg.start()
        assert pg.pid is not None
        self.state["postgres"].update(process_record(pg.pid))
        self._save()

    def _restart_kafka(self) -> None:
        kafka = self.kafka
        assert kafka is not None
        kafka.stop()
        kafka.start()  # the same port: the services' bootstrap address stays right
        self.console.print(
            "[yellow]tansu keeps its log in memory: the events it held before are lost[/]"
        )
        try:
            asyncio.run(ensure_topics(kafka.bootstrap, stack_topics()))
        except BaseException:
            kafka.stop()  # so that the next round starts it again, topics and all
            raise
        assert kafka.pid is not None
        self.state["kafka"].update(process_record(kafka.pid))
        self._save()


def show(console: Console, state: dict[str, Any]) -> None:
    """Print where everything is, then exports ready to paste into another shell."""
    table = Table(title=f"openlines stack in {state.get('home')}", title_justify="left")
    for column in ("component", "address", "pid", "log"):
        table.add_column(column, overflow="fold")
    pg, kafka = state.get("postgres", {}), state.get("kafka", {})
    table.add_row("postgres", pg.get("url"), str(pg.get("pid")), pg.get("log"))
    table.add_row("kafka", kafka.get("bootstrap"), str(kafka.get("pid")), kafka.get("log"))
    table.add_row("topics", f"{len(state.get('topics', []))} created", "", "")
    for service in state.get("services", []):
        table.add_row(service["name"], service["url"], str(service["pid"]), service["log"])
        if service.get("smtp"):
            table.add_row(f"{service['name']} smtp", f"smtp://{service['smtp']}", "", "")
    console.print(table)
    gateway = next((svc for svc in state.get("services", []) if svc["name"] == "gateway"), None)
    if gateway:
        url = gateway["url"]
        op = ".venv/bin/openlines"
        console.print(
            f"\n[bold]openlines is up on {url}[/]  (operators ann, bob; supervisor sue)\n"
            f"  {op} say --url {url} --chat 42 --name 'Ann Customer' 'Where is my order?'\n"
            f'  curl -s -H "Authorization: Bearer $({op} token ann)" '
            f"'{url}/api/v1/dialogs?tab=all'\n"
            f"  {op} tail\n",
            soft_wrap=True,
            highlight=False,
        )
    console.print(
        f"export OPENLINES_DATABASE_URL='{pg.get('url')}'\n"
        f"export OPENLINES_KAFKA_BOOTSTRAP={kafka.get('bootstrap')}",
        soft_wrap=True,
        highlight=False,
        style="dim",
    )


def start_detached(config: StackConfig, console: Console) -> int:
    """Run the supervisor in the background; return once the stack is ready."""
    paths = config.paths
    if is_locked(paths):
        console.print(f"[red]{already_running_message(paths)}[/]")
        return 1
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_path = paths.log("supervisor")
    if config.services is not None:
        raise ValueError("detached mode runs the services derived from the config")
    argv = [sys.executable, "-m", "openlines.cli.main", "up", *config.cli_args()]
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this shell; `openlines down` stops it
        )
    deadline = time.monotonic() + config.ready_timeout + 30
    try:
        while time.monotonic() < deadline:
            state = read_state(paths)
            if state and state.get("pid") == child.pid and state.get("status") == "ready":
                show(console, state)
                console.print(
                    f"[dim]running in the background (pid {child.pid}); "
                    "`openlines down` stops it.[/]"
                )
                return 0
            if child.poll() is not None:
                break
            time.sleep(0.1)
        else:
            child.terminate()
    except KeyboardInterrupt:
        child.terminate()
        child.wait(60)
        return 130
    child.wait(60)
    console.print(f"[red]the stack did not start[/]; {log_path}:\n{log_tail(log_path)}")
    return 1
