"""Is a Docker daemon answering? Asked once, quickly, without the docker SDK."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

_PING = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"


@functools.cache
def docker_available(timeout: float = 0.5) -> bool:
    return any(_ping(endpoint, timeout) for endpoint in _endpoints())


def _endpoints() -> list[str]:
    if host := os.environ.get("DOCKER_HOST"):
        return [host]
    endpoints = ["unix:///var/run/docker.sock"]
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        endpoints.append(f"unix://{runtime}/docker.sock")  # rootless Docker
    return endpoints


def _ping(endpoint: str, timeout: float) -> bool:
    url = urlsplit(endpoint)
    try:
        if url.scheme == "unix":
            if not Path(url.path).exists():
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(url.path)
        elif url.scheme in ("tcp", "http"):
            sock = socket.create_connection(
                (url.hostname or "localhost", url.port or 2375), timeout
            )
        else:
            return False
        with sock:
            sock.sendall(_PING)
            status_line = sock.recv(128).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.startswith(b"HTTP/") and b" 200" in status_line
