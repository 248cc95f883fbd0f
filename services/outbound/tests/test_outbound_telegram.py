"""Which failures of the sendMessage call may be retried: only those before the request left."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from openlines.outbound.domain import Rejected, Transient, Unknown
from openlines.outbound.telegram import call_timeout, classify_failure

_KEY = ConnectionKey("api.telegram.org", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        aiohttp.ClientConnectorError(_KEY, ConnectionRefusedError(111, "refused")),
        aiohttp.ClientConnectorDNSError(_KEY, OSError(-2, "Name or service not known")),
        aiohttp.ClientConnectorSSLError(_KEY, OSError(1, "handshake failed")),
    ],
)
def test_failures_before_the_request_left_are_retried(exc: BaseException) -> None:
    assert isinstance(classify_failure(exc), Transient)


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        aiohttp.ServerTimeoutError("read timeout"),
        TimeoutError(),  # the overall timeout, after the connect phase
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("Response payload is not completed"),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
    ],
)
def test_failures_after_the_request_left_are_outcome_unknown(exc: BaseException) -> None:
    assert isinstance(classify_failure(exc), Unknown)


def test_an_invalid_url_is_refused_without_a_retry() -> None:
    assert isinstance(classify_failure(aiohttp.InvalidURL("bot123:secret")), Rejected)


def test_reasons_never_carry_the_url_and_its_bot_token() -> None:
    exc = aiohttp.ClientConnectorError(
        ConnectionKey("127.0.0.1", 1, False, True, None, None, None),
        ConnectionRefusedError(111, "refused /bot123:secret/sendMessage"),
    )
    outcome = classify_failure(exc)
    assert isinstance(outcome, Transient) and "secret" not in outcome.reason


def test_the_connect_phase_always_ends_before_the_overall_timeout() -> None:
    # Otherwise a bare timeout could also mean "never connected" and be wrongly unknown.
    assert call_timeout(10.0, 5.0).connect == 5.0
    assert call_timeout(10.0, 8.0).connect == 5.0
    assert call_timeout(1.0, 5.0).connect == 0.5
    assert call_timeout(1.0, 5.0).total == 1.0
