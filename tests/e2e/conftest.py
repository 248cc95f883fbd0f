"""The whole suite as separate processes, started the way `make run` starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from openlines.kit.http.auth import issue_token
from openlines.kit.settings import DEV_JWT_SECRET
from openlines.stack.services import reserve_port_base

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Stack:
    home: Path
    url: str
    state: dict[str, object]

    def token(self, operator: str, role: str = "operator") -> str:
        return issue_token(operator, [role], secret=DEV_JWT_SECRET)

    def auth(self, operator: str, role: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(operator, role)}"}


def _openlines(*args: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openlines.cli.main", *args, "--home", str(home)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


def start_stack(home: Path, lines: Path | None = None) -> Stack:
    """`openlines up --detach` on ports reserved for this process (never ephemeral ones)."""
    base = reserve_port_base()
    args = ["up", "--detach", "--kafka-port", "0", "--port-base", str(base)]
    up = _openlines(*args, *(["--lines", str(lines)] if lines else []), home=home)
    if up.returncode != 0:
        logs = (
            "\n".join(
                f"--- {p.name}\n" + p.read_text()[-3000:] for p in sorted((home / "logs").glob("*"))
            )
            if (home / "logs").exists()
            else ""
        )
        raise RuntimeError(f"openlines up failed:\n{up.stdout}\n{up.stderr}\n{logs}")
    state = json.loads((home / "stack.json").read_text())
    return Stack(home=home, url=f"http://127.0.0.1:{base}", state=state)


def stop_stack(stack: Stack) -> None:
    down = _openlines("down", home=stack.home)
    assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield started
    finally:
        stop_stack(started)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures a test recorded with `record_property("figures", ...)`, shown after the run
    (the chaos test's messages, kills, lost, duplicated), whether it passed or failed."""
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            for name, value in getattr(report, "user_properties", []):
                if name == "figures" and getattr(report, "when", None) == "call":
                    terminalreporter.write_line(f"{report.nodeid}: {value}")
