"""`/api/v1/webhooks...` contracts: the chat admin's only, strict bodies, the secret shown
once, SSRF refusals (this notify allows no private addresses, as in production)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from openlines.kit.testing import auth

from .notify_support import Running

PUBLIC = "http://93.184.215.14/hook"  # an address literal: no DNS needed to accept it
ADMIN = auth.bearer("ada", "admin")


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    async with http.request(method, url, headers=headers or {}, json=body) as response:
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data


async def test_create_read_change_delete(notify: Running, http: aiohttp.ClientSession) -> None:
    base = f"{notify.url}/api/v1/webhooks"
    status, created = await call(
        http, "POST", base, ADMIN, {"url": PUBLIC, "event_types": ["DialogOpened"]}
    )
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["lines"] == [] and created["enabled"] is True
    assert created["created_by"] == "ada"
    hook = f"{base}/{created['id']}"

    status, shown = await call(http, "GET", hook, ADMIN)
    assert status == 200 and "secret" not in shown  # shown once, at creation
    status, listed = await call(http, "GET", base, ADMIN)
    assert status == 200 and created["id"] in [w["id"] for w in listed["items"]]
    assert all("secret" not in w for w in listed["items"])

    status, given = await call(
        http,
        "POST",
        base,
        ADMIN,
        {"url": PUBLIC, "event_types": ["*"], "lines": ["demo"], "secret": "s" * 16},
    )
    assert status == 201 and given["secret"] == "s" * 16 and given["lines"] == ["demo"]

    status, changed = await call(
        http, "PATCH", hook, ADMIN, {"event_types": ["*"], "enabled": False}
    )
    assert status == 200, changed
    assert changed["event_types"] == ["*"] and changed["enabled"] is False

    status, page = await call(http, "GET", f"{hook}/deliveries?status=failed", ADMIN)
    assert status == 200 and page == {"items": [], "next_cursor": None}

    assert (await call(http, "DELETE", hook, ADMIN))[0] == 204
    assert (await call(http, "GET", hook, ADMIN))[0] == 404
    assert (await call(http, "DELETE", f"{base}/{given['id']}", ADMIN))[0] == 204


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        (auth.bearer("ann"), 403, "not_allowed"),
        (auth.bearer("sue", "supervisor"), 403, "not_allowed"),
    ],
)
async def test_webhooks_are_the_chat_admins_only(
    notify: Running, http: aiohttp.ClientSession, headers: dict[str, str], status: int, code: str
) -> None:
    base = f"{notify.url}/api/v1/webhooks"
    for method, url, body in [
        ("GET", base, None),
        ("POST", base, {"url": PUBLIC, "event_types": ["*"]}),
        ("GET", f"{base}/00000000-0000-0000-0000-000000000000", None),
    ]:
        got, error = await call(http, method, url, headers, body)
        assert (got, error["error"]["code"]) == (status, code), (method, url)


async def test_an_admin_narrowed_to_some_lines_manages_only_those(
    notify: Running, http: aiohttp.ClientSession
) -> None:
    base = f"{notify.url}/api/v1/webhooks"
    narrowed = auth.bearer("ada", "admin", lines=["demo"])
    status, every = await call(http, "POST", base, ADMIN, {"url": PUBLIC, "event_types": ["*"]})
    assert status == 201
    status, error = await call(http, "POST", base, narrowed, {"url": PUBLIC, "event_types": ["*"]})
    assert (status, error["error"]["code"]) == (403, "not_allowed")  # every line: not hers
    assert (await call(http, "GET", f"{base}/{every['id']}", narrowed))[0] == 404
    status, demo = await call(
        http, "POST", base, narrowed, {"url": PUBLIC, "event_types": ["*"], "lines": ["demo"]}
    )
    assert status == 201
    status, listed = await call(http, "GET", base, narrowed)
    assert [w["id"] for w in listed["items"]] == [demo["id"]]
    for hook in (every, demo):
        await call(http, "DELETE", f"{base}/{hook['id']}", ADMIN)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": PUBLIC}, 422, "invalid_body"),
        ({"event_types": ["*"]}, 422, "invalid_body"),
        ({"url": PUBLIC, "event_types": []}, 422, "invalid_body"),
        ({"url": PUBLIC, "event_types": ["*"], "extra": 1}, 422, "invalid_body"),
        ({"url": PUBLIC, "event_types": "*"}, 422, "invalid_body"),
        ({"url": PUBLIC, "event_types": ["*"], "secret": "short"}, 422, "invalid_body"),
        ({"url": PUBLIC, "event_types": ["NoSuchEvent"]}, 422, "unknown_event_type"),
        ({"url": PUBLIC, "event_types": ["*", "DialogOpened"]}, 422, "unknown_event_type"),
        ({"url": PUBLIC, "event_types": ["AssignDialog"]}, 422, "unknown_event_type"),  # a command
        ({"url": PUBLIC, "event_types": ["*"], "lines": ["nope"]}, 422, "unknown_line"),
        ({"url": "ftp://example.com/", "event_types": ["*"]}, 422, "invalid_url"),
        ({"url": "example.com/hook", "event_types": ["*"]}, 422, "invalid_url"),
        ({"url": "http://u:p@93.184.215.14/", "event_types": ["*"]}, 422, "invalid_url"),
        # SSRF: private, loopback, link-local and mapped addresses, by literal or by name.
        ({"url": "http://127.0.0.1:8080/hook", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://localhost/hook", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://10.0.0.7/hook", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://192.168.0.1/", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://169.254.169.254/latest/", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://[::1]:9/", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://[::ffff:10.0.0.1]/", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://0.0.0.0/", "event_types": ["*"]}, 422, "url_not_allowed"),
        ({"url": "http://no-such-host.invalid/", "event_types": ["*"]}, 422, "unresolvable_host"),
    ],
)
async def test_bad_subscriptions_are_refused_with_a_code(
    notify: Running, http: aiohttp.ClientSession, body: dict[str, Any], status: int, code: str
) -> None:
    got, error = await call(http, "POST", f"{notify.url}/api/v1/webhooks", ADMIN, body)
    assert (got, error["error"]["code"]) == (status, code), error


async def test_bad_changes_queries_and_ids(notify: Running, http: aiohttp.ClientSession) -> None:
    base = f"{notify.url}/api/v1/webhooks"
    _, hook = await call(http, "POST", base, ADMIN, {"url": PUBLIC, "event_types": ["*"]})
    url = f"{base}/{hook['id']}"
    cases: list[tuple[str, str, Any, int, str]] = [
        ("PATCH", url, {}, 422, "invalid_body"),
        ("PATCH", url, {"url": None}, 422, "invalid_body"),
        ("PATCH", url, {"enabled": "yes"}, 422, "invalid_body"),
        ("PATCH", url, {"url": "http://127.0.0.1/"}, 422, "url_not_allowed"),
        ("PATCH", url, {"lines": ["nope"]}, 422, "unknown_line"),
        ("GET", f"{url}/deliveries?status=lost", None, 400, "invalid_query"),
        ("GET", f"{url}/deliveries?limit=0", None, 400, "invalid_query"),
        ("GET", f"{url}/deliveries?cursor=abc", None, 400, "invalid_cursor"),
        ("GET", f"{base}/not-a-uuid", None, 404, "not_found"),
        (
            "PATCH",
            f"{base}/00000000-0000-0000-0000-000000000000",
            {"enabled": True},
            404,
            "not_found",
        ),
        ("POST", f"{url}/deliveries/not-a-uuid/redeliver", None, 404, "not_found"),
        (
            "POST",
            f"{url}/deliveries/00000000-0000-0000-0000-000000000000/redeliver",
            None,
            404,
            "not_found",
        ),
    ]
    for method, target, body, status, code in cases:
        got, error = await call(http, method, target, ADMIN, body)
        assert (got, error["error"]["code"]) == (status, code), (method, target, body, error)
    await call(http, "DELETE", url, ADMIN)
