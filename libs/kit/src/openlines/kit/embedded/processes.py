"""Process helpers shared by the embedded components and the local stack: start, watch, stop
processes and their groups (public: the stack supervises its services with them)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

from openlines.kit.embedded.ports import reserve_port

_PR_SET_PDEATHSIG = 1


class Server:
    """A local server that `with` starts on entry and stops on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class StartupError(RuntimeError):
    """A component did not become ready; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """Kept for callers not yet moved to `reserve_port`, which it is (see ports.py): never a
    port-0 bind, whose port any outgoing connection can take before the server binds it."""
    return reserve_port(host)


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(log is empty)"


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to signal the child when this thread dies.

    Only used from the main thread: PDEATHSIG fires when the *thread* that forked exits,
    which for a pool thread could be long before the process ends.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def _set() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _set


def listens_on(pid: int, port: int) -> bool:
    """True when process `pid` itself holds a listening TCP socket on `port`."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int | None:
    """SIGTERM the child's process group, then SIGKILL it after `timeout` seconds."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # Grandchildren that ignored SIGTERM must not outlive the group leader.
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def same_process(pid: int, create_time: float | None) -> psutil.Process | None:
    """The live process `pid`, unless the pid was reused since `create_time`."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None


def kill_tree(pid: int, create_time: float | None = None, timeout: float = 5.0) -> bool:
    """Stop a process we do not parent (e.g. recorded in a state file) and its group.

    Returns True when something was running.
    """
    proc = same_process(pid, create_time)
    if proc is None:
        return False
    children = _children(proc)
    _signal_group(pid, signal.SIGTERM)
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.terminate()
    alive = wait_gone([proc, *children], timeout)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    _signal_group(pid, signal.SIGKILL)
    wait_gone(alive, 5.0)
    return True


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes exit; returns those still alive.

    A zombie counts as gone: a process we did not start is reaped by init, which in some
    containers takes seconds.
    """
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while True:
        alive = [p for p in alive if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
