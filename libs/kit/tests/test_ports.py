"""Ports for local servers: never from the ephemeral range, never the same for two processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openlines.kit.embedded import free_port, ports, release_ports, reserve_port, reserve_port_block

# A child process that reserves ports, reports them, and holds them until its stdin closes.
_HOLDER = """
import json, sys
from openlines.kit.embedded import reserve_port
held = [reserve_port() for _ in range(int(sys.argv[1]))]
print(json.dumps(held), flush=True)
sys.stdin.read()
"""


def test_ports_never_come_from_the_ephemeral_range() -> None:
    low, high = ports.ephemeral_range()
    got = [reserve_port() for _ in range(300)]
    got += [free_port() for _ in range(50)]  # the old name is the same allocator now
    base = reserve_port_block(27)
    got += list(range(base, base + 27))
    assert all(ports.PORT_FLOOR <= port < low for port in got), [
        p for p in got if not ports.PORT_FLOOR <= p < low
    ]
    assert len(got) == len(set(got)), "a port was handed out twice in one process"
    assert not any(low <= port <= high for port in got)
    for port in got:  # the rest of the session's tests need the space
        release_ports(port)


def test_the_range_follows_the_kernel_setting(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t60999\n")
    assert ports.reservable_range(setting) == range(ports.PORT_FLOOR, 40000)
    setting.write_text("10000 50000\n")  # a low range: the space above it
    assert ports.reservable_range(setting) == range(50001, 65536)
    setting.write_text("1024 65535\n")
    with pytest.raises(RuntimeError, match="no port space"):
        ports.reservable_range(setting)
    assert ports.ephemeral_range(tmp_path / "missing") == (32768, 60999)


@pytest.mark.infra  # processes of its own
def test_two_processes_never_hold_the_same_port() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, "2000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        theirs = set(json.loads(holder.stdout.readline()))
        assert len(theirs) == 2000
        # 2000 each from ~12,700 ports, from random origins: without the lock they may clash.
        mine = {reserve_port() for _ in range(2000)}
        assert not mine & theirs
        for port in mine:  # the rest of the session's tests need the space
            release_ports(port)
        # Their ports are locked, not merely unlucky: this process cannot lock one of them.
        fd = ports._lock_file()
        assert not any(ports._lock(fd, port, 1) for port in sorted(theirs)[:50])
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    # A process's reservations end with it (also when it is killed).
    victim = sorted(theirs)[0]
    assert ports._lock(fd, victim, 1)
    ports._unlock(fd, victim, 1)


@pytest.mark.infra  # processes of its own
def test_a_released_port_can_be_reserved_again_by_another_process() -> None:
    port = reserve_port()
    fd = ports._lock_file()
    probe = [sys.executable, "-c", _LOCKS, str(port)]
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout == "False\n"
    release_ports(port)
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout == "True\n"
    assert fd == ports._lock_file()


_LOCKS = """
import sys
from openlines.kit.embedded import ports
print(ports._lock(ports._lock_file(), int(sys.argv[1]), 1))
"""


@pytest.mark.infra  # processes of its own
def test_a_block_is_found_while_most_single_ports_are_held() -> None:
    # A long session holds many single ports; a block must still be found while one exists
    # (random draws gave up after 500 tries with ~2,400 ports held: the e2e stack failed).
    space = ports.reservable_range()
    held = [reserve_port() for _ in range(len(space) // 5)]
    try:
        base = reserve_port_block(27)
        assert not set(range(base, base + 27)) & set(held)
        release_ports(base, 27)
    finally:
        for port in held:
            release_ports(port)
