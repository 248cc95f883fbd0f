"""The dialog list (tabs, filters, keyset pages) and bad input on every endpoint."""

from __future__ import annotations

import base64
import uuid

from openlines.kit.http.auth import issue_token

from .dialogs_stack import DialogsStack


async def test_pages_return_every_dialog_once_newest_first(stack: DialogsStack) -> None:
    opened = [await stack.open_dialog(f"40{i:02d}", f"question {i}") for i in range(7)]

    async def all_pages(who: str, **params: str) -> list[dict]:
        items: list[dict] = []
        cursor = None
        while True:
            query = {**params, "limit": "3", **({"cursor": cursor} if cursor else {})}
            page = await stack.get("/api/v1/dialogs", who, **query)
            assert page.status == 200, page.body
            assert len(page.body["items"]) <= 3
            items += page.body["items"]
            cursor = page.body["next_cursor"]
            if cursor is None:
                return items

    for who, tab in (("sue", "all"), ("ann", "unassigned"), ("bob", "all")):
        items = await all_pages(who, tab=tab)
        ids = [d["id"] for d in items]
        assert sorted(ids) == sorted(str(d) for d in opened), (who, tab)
        assert len(set(ids)) == len(ids)
        stamps = [(d["updated_at"], d["id"]) for d in items]
        assert stamps == sorted(stamps, reverse=True)
        # Opened one after the other, so newest first is the reverse of opening order.
        assert ids == [str(d) for d in reversed(opened)]

    # A reply moves its dialog to the top (and into ann's Active tab).
    oldest = opened[0]
    reply = await stack.post(
        f"/api/v1/dialogs/{oldest}/messages", "ann", json={"text": "hi", "client_message_id": "1"}
    )
    assert reply.status == 202
    top = (await stack.get("/api/v1/dialogs", "sue", limit="1")).body["items"]
    assert [d["id"] for d in top] == [str(oldest)]
    mine = (await stack.get("/api/v1/dialogs", "ann", tab="active")).body["items"]
    assert [d["id"] for d in mine] == [str(oldest)]
    assert (await stack.get("/api/v1/dialogs", "bob", tab="active")).body["items"] == []

    # Filters.
    found = (await stack.get("/api/v1/dialogs", "sue", q="question 3")).body["items"]
    assert [d["id"] for d in found] == [str(opened[3])]
    assert (await stack.get("/api/v1/dialogs", "sue", q="100%")).body["items"] == []
    assert len((await stack.get("/api/v1/dialogs", "sue", channel="tg-demo")).body["items"]) == 7
    assert (await stack.get("/api/v1/dialogs", "sue", line="other")).body["items"] == []
    by_ann = (await stack.get("/api/v1/dialogs", "sue", assignee="ann")).body["items"]
    assert [d["id"] for d in by_ann] == [str(oldest)]


async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("4101")
    messages = f"/api/v1/dialogs/{dialog_id}/messages"

    async def code(reply_coro) -> tuple[int, str | None]:
        reply = await reply_coro
        return reply.status, reply.code

    list_url = "/api/v1/dialogs"
    assert await code(stack.get(list_url, tab="mine")) == (400, "invalid_query")
    for limit in ("0", "201", "ten"):
        assert await code(stack.get(list_url, limit=limit)) == (400, "invalid_query")
    forged = base64.urlsafe_b64encode(b'["yesterday", "x"]').decode()
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode()  # json.loads: RecursionError
    for cursor in ("not-a-cursor!", forged, base64.urlsafe_b64encode(b"{}").decode(), deep):
        assert await code(stack.get(list_url, cursor=cursor)) == (400, "bad_cursor")
    # Postgres text cannot hold NUL: a filter or a reply carrying one is refused up front.
    for param in ("q", "line", "channel", "assignee"):
        assert await code(stack.get(list_url, **{param: "a\x00b"})) == (400, "invalid_query")
    assert await code(
        stack.post(messages, "ann", json={"text": "a\u0000b", "client_message_id": "nul"})
    ) == (400, "invalid_text")

    # Unknown parameters are refused, not ignored (they once gave an unfiltered list).
    for params in (
        {"unanswered": "maybe"},
        {"sort": "oldest"},
        {"order": "up"},
        {"participant": "you"},
        {"sla": "ok"},
        {"tab": "all", "limit": "5", "x": ""},
    ):
        assert await code(stack.get(list_url, **params)) == (400, "invalid_query"), params

    assert await code(stack.get("/api/v1/dialogs/not-a-uuid")) == (404, "not_found")
    assert await code(stack.get(f"/api/v1/dialogs/{uuid.uuid4()}")) == (404, "not_found")
    assert await code(stack.post(f"/api/v1/dialogs/{uuid.uuid4()}/take", "ann")) == (
        404,
        "not_found",
    )
    assert await code(stack.post(messages, "ann", data=b'{"text": "hi"')) == (
        400,
        "malformed_json",
    )
    oversize = b'{"text": "' + b"x" * (2 << 20) + b'", "client_message_id": "big"}'
    assert await code(stack.post(messages, "ann", data=oversize)) == (413, "payload_too_large")
    assert await code(stack.post(messages, "ann", json=["hi"])) == (422, "invalid_body")
    assert await code(stack.post(messages, "ann", json={"text": "hi"})) == (422, "invalid_body")
    assert await code(stack.post(messages, "ann", json={"text": 5, "client_message_id": "a"})) == (
        422,
        "invalid_body",
    )
    assert await code(stack.post(messages, "ann", json={"text": "", "client_message_id": "a"})) == (
        422,
        "empty_message",
    )
    assert await code(
        stack.post(
            messages, "ann", json={"text": "hi", "client_message_id": "a", "reply_to": "nope"}
        )
    ) == (422, "invalid_body")
    assert await code(
        stack.post(
            messages,
            "ann",
            json={"text": "hi", "client_message_id": "a", "reply_to": str(uuid.uuid4())},
        )
    ) == (422, "unknown_message")
    async with stack.http.get(stack.url + "/api/v1/dialogs") as unauthenticated:
        assert unauthenticated.status == 401
        assert (await unauthenticated.json())["error"]["code"] == "unauthorized"

    # None of that touched the dialog; a good request still works.
    dialog = (await stack.dialog(dialog_id)).body
    assert (dialog["status"], dialog["assignee_id"]) == ("unassigned", None)
    assert [m["direction"] for m in await stack.timeline(dialog_id)] == ["in"]
    quoted = (await stack.timeline(dialog_id))[0]["id"]
    ok = await stack.post(
        messages, "ann", json={"text": "hi", "client_message_id": "a", "reply_to": quoted}
    )
    assert ok.status == 202
    assert [m["reply_to"] for m in await stack.timeline(dialog_id) if m["direction"] == "out"] == [
        quoted
    ]


async def test_read_resets_the_unread_count(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("4201", "one")
    env = await stack.customer_writes("4201", "two")
    await stack.wait_handled(env)
    assert (await stack.dialog(dialog_id, "ann")).body["unread_count"] == 2
    read = await stack.post(f"/api/v1/dialogs/{dialog_id}/read", "ann")
    assert (read.status, read.body["unread_count"]) == (200, 0)


async def test_a_supervisor_token_restricted_to_other_lines_sees_none_of_demos(
    stack: DialogsStack,
) -> None:
    dialog_id = await stack.open_dialog("4301")
    secret = stack.runtime.settings.jwt_secret
    elsewhere = issue_token("sue", ["supervisor"], secret=secret, lines=["vip"])
    headers = {"Authorization": f"Bearer {elsewhere}"}
    async with stack.http.get(f"{stack.url}/api/v1/dialogs/{dialog_id}", headers=headers) as r:
        assert r.status == 404
    async with stack.http.get(f"{stack.url}/api/v1/dialogs", headers=headers) as r:
        assert str(dialog_id) not in {item["id"] for item in (await r.json())["items"]}
    # Unrestricted, the same supervisor sees it.
    assert (await stack.dialog(dialog_id, "sue")).status == 200


async def test_forged_cursors_of_any_decoded_type_are_400_bad_cursor(stack: DialogsStack) -> None:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    assert b64(b'["2024-01-01T00:00:00+00:00", 1]') == "WyIyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgMV0"
    forged = [
        b'["2024-01-01T00:00:00+00:00", 1]',  # a 500 before: UUID(1)
        b'["2024-01-01T00:00:00+00:00", [1]]',
        b'["2024-01-01T00:00:00+00:00", {"a": 1}]',
        b'["2024-01-01T00:00:00+00:00", 1.5]',
        b'[1.5, "00000000-0000-0000-0000-000000000001"]',
        b'[{}, "00000000-0000-0000-0000-000000000001"]',
        b'["2024-01-01T00:00:00", "00000000-0000-0000-0000-000000000001"]',  # naive
        b'["2024-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000001", 3]',
        b"1.5",
        b'"x"',
        b"null",
    ]
    for raw in forged:
        reply = await stack.get("/api/v1/dialogs", cursor=b64(raw))
        assert (reply.status, reply.code) == (400, "bad_cursor"), raw


async def test_unknown_body_fields_are_refused_and_nothing_reaches_the_customer(
    stack: DialogsStack,
) -> None:
    dialog_id = await stack.open_dialog("4102")
    messages = f"/api/v1/dialogs/{dialog_id}/messages"
    # Before: 202, and the "internal note" went to the customer.
    note = await stack.post(
        messages, "ann", json={"text": "note", "client_message_id": "n1", "internal": True}
    )
    assert (note.status, note.code) == (422, "invalid_body")
    assert note.body["error"]["details"]["errors"][0]["field"] == "internal"
    # Strict types: no coercion of a number into an id.
    numeric = await stack.post(messages, "ann", json={"text": "x", "client_message_id": 7})
    assert (numeric.status, numeric.code) == (422, "invalid_body")
    # Commands without a body refuse one instead of ignoring it.
    take = await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann", json={"as": "bob"})
    assert (take.status, take.code) == (422, "invalid_body")
    assert [m["direction"] for m in await stack.timeline(dialog_id)] == ["in"]
    dialog = (await stack.dialog(dialog_id)).body
    assert (dialog["status"], dialog["assignee_id"]) == ("unassigned", None)
