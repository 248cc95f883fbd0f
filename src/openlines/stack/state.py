"""Where a local stack lives on disk, its state file, and stopping it from another shell."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from openlines.kit.embedded import stop_data_dir
from openlines.kit.embedded.processes import kill_tree, same_process, wait_gone

HOME_ENV = "OPENLINES_HOME"


def default_home() -> Path:
    """`$OPENLINES_HOME`, else `.openlines` in the repository this package runs from."""
    if env := os.environ.get(HOME_ENV):
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[3]
    base = repo if (repo / "pyproject.toml").exists() else Path.cwd()
    return base / ".openlines"


@dataclass(frozen=True)
class StackPaths:
    home: Path

    @property
    def pg_data(self) -> Path:
        return self.home / "pg"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def lock_file(self) -> Path:
        return self.home / "stack.lock"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


class AlreadyRunning(RuntimeError):
    pass


@contextlib.contextmanager
def exclusive(paths: StackPaths) -> Iterator[None]:
    """Held for the supervisor's lifetime; the kernel drops it when the process dies."""
    paths.home.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(already_running_message(paths)) from None
        yield
    finally:
        os.close(fd)


def is_locked(paths: StackPaths) -> bool:
    if not paths.lock_file.exists():
        return False
    try:
        with exclusive(paths):
            return False
    except AlreadyRunning:
        return True


def already_running_message(paths: StackPaths) -> str:
    state = read_state(paths) or {}
    pid = state.get("pid", "?")
    return (
        f"an openlines stack is already running from {paths.home} (supervisor pid {pid}); "
        "stop it with `openlines down` first"
    )


def read_state(paths: StackPaths) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(paths.state_file.read_text())
    except (OSError, ValueError):
        return None
    return state


def write_state(paths: StackPaths, state: dict[str, Any]) -> None:
    tmp = paths.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, paths.state_file)  # readers never see half a file


def process_record(pid: int) -> dict[str, Any]:
    """pid plus start time, so a later `down` never signals a recycled pid."""
    return {"pid": pid, "create_time": psutil.Process(pid).create_time()}


def stop_stack(paths: StackPaths, timeout: float = 30.0) -> bool:
    """Stop the stack recorded under `paths`, whoever started it. True if anything ran."""
    state = read_state(paths)
    found = False
    if state is not None:
        supervisor = same_process(state["pid"], state.get("create_time"))
        if supervisor is not None:
            found = True
            supervisor.terminate()  # it stops its own children, in order
            if wait_gone([supervisor], timeout):
                supervisor.kill()
                wait_gone([supervisor], 5.0)
        found |= clean_leftovers(paths, state)
    found |= stop_data_dir(paths.pg_data)
    with contextlib.suppress(FileNotFoundError):
        paths.state_file.unlink()
    return found


def clean_leftovers(paths: StackPaths, state: dict[str, Any]) -> bool:
    """Stop what a supervisor that died without cleaning up had started."""
    found = False
    for record in [*state.get("services", []), state.get("kafka")]:
        if record and record.get("pid"):
            found |= kill_tree(record["pid"], record.get("create_time"))
    return found
