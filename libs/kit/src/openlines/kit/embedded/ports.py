"""TCP ports for local servers (tests, benches, the stack) that nothing else can take.

Why not a port-0 bind: the kernel hands out port-0 binds and outgoing connections from the
same ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`). A port learnt that way and
bound later by a child process (seconds later: a service starting, or restarted by the
supervisor after a crash) can meanwhile become the local end of any outgoing connection
(to Postgres, to Kafka, an HTTP client), and the child fails with EADDRINUSE. No retry
fixes that for a restart on the same port.

So ports come from BELOW the ephemeral range (20000 up to its start), where the kernel never
picks a port by itself: only a program binding that very number can hold it. Other programs
doing so are coordinated with a lock: a reservation is a POSIX record lock on byte `port` of
one shared file (`<tmp>/openlines-ports.lock`), held by this process until it exits (or
`release_ports`). Any process using this module (parallel test runs, several worktrees,
the bench) skips locked ports. A bind check on top skips ports some other program listens
on, or that linger from a previous user. The reserving process keeps the lock while its
children bind and rebind the port, so a restart on the same port cannot lose it either.

One file with byte-range locks instead of one `flock`ed file per port: a long test session
reserves hundreds of ports and would otherwise hold as many file descriptors. Record locks
belong to the process (not inherited by children, dropped when it dies, even by SIGKILL),
and are dropped when *any* descriptor of the file is closed in the process, so the file is
opened once and kept open. Threads of one process are told apart by an in-process set.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

__all__ = [
    "PORT_FLOOR",
    "ephemeral_range",
    "release_ports",
    "reservable_range",
    "reserve_port",
    "reserve_port_block",
]

# Lowest port handed out: above the well-known and most registered service ports.
PORT_FLOOR = 20000
_DEFAULT_EPHEMERAL = (32768, 60999)
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")

_mutex = threading.Lock()
_held: set[int] = set()
_lock_fd: int | None = None
_lock_pid: int | None = None
_origin = 0


def ephemeral_range(path: Path = _RANGE_FILE) -> tuple[int, int]:
    """The kernel's range for port-0 binds and outgoing connections (inclusive)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def reservable_range(path: Path = _RANGE_FILE) -> range:
    """The ports this module hands out: from PORT_FLOOR up to the ephemeral range."""
    low, high = ephemeral_range(path)
    if low > PORT_FLOOR + 1000:
        return range(PORT_FLOOR, low)
    if high < 65535 - 1000:  # an unusual range starting low: use the space above it
        return range(max(high + 1, PORT_FLOOR), 65536)
    raise RuntimeError(f"no port space outside the ephemeral range {low}-{high}")


def reserve_port(host: str = "127.0.0.1") -> int:
    """A port outside the ephemeral range, free now and reserved for this process's life."""
    return reserve_port_block(1, host)


def reserve_port_block(size: int, host: str = "127.0.0.1") -> int:
    """The first of `size` consecutive ports reserved as `reserve_port` does."""
    space = reservable_range()
    if not 1 <= size <= len(space):
        raise ValueError(f"cannot reserve {size} consecutive ports")
    with _mutex:
        fd = _lock_file()
        # Every candidate base once, from this process's own random origin: one process's
        # reservations pack together instead of scattering over the space (random draws left
        # no room for a block once a long test session held thousands of single ports), and
        # processes started at once rarely meet.
        bases = range(space.start, space.stop - size + 1)
        first = _origin % len(bases)
        for index in range(len(bases)):
            base = bases[(first + index) % len(bases)]
            ports = range(base, base + size)
            if any(port in _held for port in ports):
                continue
            if not _lock(fd, base, size):
                continue
            if all(_bindable(port, host) for port in ports):
                _held.update(ports)
                return base
            _unlock(fd, base, size)
    raise RuntimeError(f"found no {size} free consecutive ports in {space.start}-{space.stop - 1}")


def release_ports(base: int, size: int = 1) -> None:
    """Give back a reservation early (otherwise it ends with the process)."""
    with _mutex:
        ports = range(base, base + size)
        if _lock_fd is not None and _lock_pid == os.getpid():
            _unlock(_lock_fd, base, size)
        _held.difference_update(ports)


def _lock_file() -> int:
    global _lock_fd, _lock_pid, _origin
    if _lock_fd is None or _lock_pid != os.getpid():  # a forked child holds no locks
        _held.clear()
        _origin = random.randrange(1 << 30)
        path = Path(os.environ.get("OPENLINES_PORT_LOCK_DIR") or tempfile.gettempdir())
        path = path / "openlines-ports.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError as exc:  # another user's file: an exclusive lock needs write
            raise RuntimeError(f"cannot open {path} (set OPENLINES_PORT_LOCK_DIR)") from exc
        _lock_fd, _lock_pid = fd, os.getpid()
    return _lock_fd


def _lock(fd: int, start: int, length: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start, os.SEEK_SET)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


def _unlock(fd: int, start: int, length: int) -> None:
    fcntl.lockf(fd, fcntl.LOCK_UN, length, start, os.SEEK_SET)


def _bindable(port: int, host: str) -> bool:
    return all(port_is_free(port, address) for address in {host, "0.0.0.0"})


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    # Without SO_REUSEADDR, so a port with connections lingering in TIME_WAIT is taken too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
