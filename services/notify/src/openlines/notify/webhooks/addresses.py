"""Which receivers notify may call (SSRF): a webhook URL is an admin's input, and without this
it would let anyone with the admin's token probe the cluster's insides (Postgres, the
metadata service at 169.254.169.254) through notify.

The host is resolved and EVERY address checked, once when a subscription is saved (a clear
422) and again at each delivery, by the resolver the HTTP client connects with: a name that
resolved to a public address when it was saved may point inside later (DNS rebinding), and
the address checked is the address connected to. Redirects are never followed. The local
stack allows private addresses (`webhook_allow_private_addresses`) for its demo receiver.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from openlines.notify.webhooks.domain import UrlRefused, is_public, url_host


class AddressNotAllowed(OSError):
    """The receiver's host is, or resolves to, a private or loopback address."""

    def __init__(self, message: str) -> None:
        # With an errno, `strerror` is set: the HTTP client quotes it in its own error.
        super().__init__(errno.EACCES, message)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class ReceiverAddresses:
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def refused(self, addresses: list[str]) -> list[str]:
        return [] if self.allow_private else [a for a in addresses if not is_public(a)]

    async def check_url(self, url: str) -> None:
        """Raise `UrlRefused` unless `url` is an http(s) URL whose every address may be called."""
        host, port = url_host(url)
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                message = f"url: cannot resolve {host}: {exc}"
                raise UrlRefused("unresolvable_host", message) from None
            addresses = sorted({str(info[4][0]) for info in infos})
        refused = self.refused(addresses)
        if refused:
            raise UrlRefused(
                "url_not_allowed",
                f"url: {host} is a private, loopback or reserved address ({', '.join(refused)})",
            )

    def check_literal(self, url: str) -> None:
        """An IP literal is connected to without any resolver: check it before the call."""
        literal = _literal(url_host(url)[0])
        if literal is not None and self.refused([literal]):
            raise AddressNotAllowed(f"address not allowed: {literal}")

    def resolver(self) -> AbstractResolver:
        return _GuardedResolver(self)


class _GuardedResolver(AbstractResolver):
    """The HTTP client's resolver: a name with any refused address is not connected to."""

    def __init__(self, addresses: ReceiverAddresses) -> None:
        self._addresses = addresses
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        refused = self._addresses.refused([info["host"] for info in infos])
        if refused:
            raise AddressNotAllowed(f"{host} resolves to an address not allowed: {refused[0]}")
        return infos

    async def close(self) -> None:
        await self._inner.close()
