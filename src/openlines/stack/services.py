"""The service processes of the local stack. Adding a service is one `ServiceSpec` entry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from openlines.kit.embedded import StartupError, reserve_port, reserve_port_block
from openlines.kit.embedded.processes import die_with_parent, log_tail, stop_group

PYTHON = sys.executable


@dataclass(frozen=True)
class ServiceSpec:
    """One process of the stack.

    `port` is its HTTP port (0: one reserved by `reserve_port`); the literal `{port}` in
    `argv` or `env` values is replaced by it. Readiness is a 200 from `ready_url`, by default
    `http://127.0.0.1:{port}/readyz`; a service without a port is ready once started.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    ready_url: str | None = None
    smtp_port: int | None = None
    """The SMTP port it serves as well (given to it as OPENLINES_SMTP_PORT)."""


REPO = Path(__file__).resolve().parents[3]
DEMO_LINES = REPO / "config" / "demo.yaml"

# Offsets from the port base (8080 by default: gateway 8080, sandbox 8090, services 8101-8107).
PORT_OFFSETS = {
    "gateway": 0,
    "sandbox": 10,
    "ingest": 21,
    "dialogs": 22,
    "routing": 23,
    "crm-link": 24,
    "outbound": 25,
    "notify": 26,
    "analytics": 27,
}
# SMTP endpoints, beside the HTTP ports: ingest's for the email channels' mail, the sandbox's
# relay that stands in for the organisation's (not gateway upstreams: SMTP is no HTTP).
SMTP_PORT_OFFSETS = {"sandbox": 11, "ingest": 28}
# The Python module that runs each process.
MODULES = {
    "gateway": "openlines.stack.gateway_main",
    "sandbox": "openlines.stack.sandbox_main",
    "ingest": "openlines.ingest",
    "dialogs": "openlines.dialogs",
    "routing": "openlines.routing",
    "crm-link": "openlines.crm_link",
    "outbound": "openlines.outbound",
    "notify": "openlines.notify",
    "analytics": "openlines.analytics",
}


def stack_ports(port_base: int = 8080) -> dict[str, int]:
    return {name: port_base + offset for name, offset in PORT_OFFSETS.items()}


def smtp_ports(port_base: int = 8080) -> dict[str, int]:
    return {name: port_base + offset for name, offset in SMTP_PORT_OFFSETS.items()}


def reserve_port_base() -> int:
    """A gateway port whose whole stack (the fixed offsets above it) is reserved for this
    process: outside the ephemeral range, so no outgoing connection can take one of them
    before the services bind them, or between a service's crash and its restart (ports.py).
    """
    return reserve_port_block(max(*PORT_OFFSETS.values(), *SMTP_PORT_OFFSETS.values()) + 1)


def default_services(port_base: int = 8080, lines_file: Path | None = None) -> list[ServiceSpec]:
    """What `openlines up` runs beside Postgres and Kafka, in start order."""
    ports = stack_ports(port_base)
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    smtp = smtp_ports(port_base)
    common = {
        "OPENLINES_LINES_FILE": str((lines_file or DEMO_LINES).resolve()),
        "OPENLINES_SANDBOX_URL": url["sandbox"],
        "OPENLINES_SANDBOX_SMTP_PORT": str(smtp["sandbox"]),
    }
    # The sandbox posts button presses (Telegram's callback queries) and WhatsApp status
    # webhooks where the providers would: the public base URL.
    sandbox_env = {"OPENLINES_WEBHOOK_BASE": url["gateway"]}
    gateway_env = {
        "OPENLINES_GATEWAY_UPSTREAMS": json.dumps(
            {name: address for name, address in url.items() if name != "gateway"}
        )
    }
    # The demo's webhook receiver (`openlines webhooks listen`) runs on this machine.
    notify_env = {"OPENLINES_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"}
    return [
        ServiceSpec(
            name,
            [PYTHON, "-m", MODULES[name]],
            env={
                **common,
                **(gateway_env if name == "gateway" else {}),
                **({"OPENLINES_SMTP_PORT": str(smtp[name])} if name in smtp else {}),
                **(notify_env if name == "notify" else {}),
                **(sandbox_env if name == "sandbox" else {}),
            },
            port=ports[name],
            smtp_port=smtp.get(name),
        )
        for name in (
            "sandbox",
            "ingest",
            "dialogs",
            "routing",
            "crm-link",
            "outbound",
            "notify",
            "analytics",
            "gateway",
        )
    ]


class RunningService:
    """A started service process (the constructor starts it)."""

    def __init__(self, spec: ServiceSpec, log_path: Path, base_env: Mapping[str, str]) -> None:
        self.spec = spec
        self.log_path = log_path
        self.port = reserve_port() if spec.port == 0 else spec.port
        self.url = f"http://127.0.0.1:{self.port}" if self.port else None
        ready_url = spec.ready_url or (f"{self.url}/readyz" if self.url else None)
        self.ready_url = self._fill(ready_url) if ready_url else None
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **base_env}
        if self.port:
            env["OPENLINES_HTTP_PORT"] = str(self.port)
        env.update({k: self._fill(v) for k, v in spec.env.items()})
        self._env = env
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("ab")
        self.restarts = 0
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [self._fill(arg) for arg in self.spec.argv],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
            start_new_session=True,  # its own group: stopped as a whole, not by terminal ^C
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

    def restart(self) -> None:
        """Start the process again after it died (same port, same log)."""
        stop_group(self.proc, 5.0)  # reap it and anything left in its group
        self.restarts += 1
        self._log.write(f"\n--- restarted by the supervisor (#{self.restarts})\n".encode())
        self._log.flush()
        self.proc = self._spawn()

    @property
    def name(self) -> str:
        return self.spec.name

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise StartupError(self._failure(f"exited with {self.proc.returncode}"))
            if self.ready_url is None or _answers_200(self.ready_url):
                return
            if time.monotonic() > deadline:
                raise StartupError(self._failure(f"not ready at {self.ready_url}"))
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        stop_group(self.proc, timeout)
        self._log.close()

    def _fill(self, text: str) -> str:
        return text.replace("{port}", str(self.port or ""))

    def _failure(self, what: str) -> str:
        return f"service {self.name} {what}; log {self.log_path}:\n{log_tail(self.log_path)}"


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
