"""Quick replies and drafts on the real database and broker: who reads and writes them, the
filters and pages, sending one rendered (retries included), saving a message as one, drafts
kept per operator and cleared by sending, and a rebuild of the read model leaving them be."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from openlines.dialogs.projection import rebuild
from openlines.dialogs.tables import drafts, quick_replies
from openlines.events.catalog import Direction, MessageAppended
from openlines.events.envelope import Envelope
from openlines.kit.testing.auth import bearer
from openlines.kit.testing.lines import write_lines

from .dialogs_stack import REPO, DialogsStack, Reply

QR = "/api/v1/quick-replies"


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    """The demo line, plus `vip` (nobody's but the supervisors')."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["lines"].append(
        {"id": "vip", "name": "VIP line", "channels": [{"id": "tg-vip", "type": "telegram"}]}
    )
    return write_lines(tmp_path, config)


async def create(stack: DialogsStack, who: str = "sue", **fields: Any) -> Reply:
    body = {"title": "Greeting", "text": "Hello!", "lines": ["demo"], **fields}
    return await stack.post(QR, who, json=body)


def titles(reply: Reply) -> list[str]:
    assert reply.status == 200, reply.body
    return [item["title"] for item in reply.body["items"]]


async def send_quick(
    stack: DialogsStack, dialog_id: uuid.UUID, reply_id: str, client: str, who: str = "ann"
) -> Reply:
    return await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        who,
        json={"quick_reply_id": reply_id, "client_message_id": client},
    )


async def test_supervisors_write_quick_replies_and_operators_of_the_line_read_them(
    stack: DialogsStack,
) -> None:
    created = await create(stack, title="Shipping", text="Ships today.", category="orders")
    assert created.status == 201, created.body
    reply = created.body
    assert (reply["lines"], reply["category"], reply["created_by"]) == (["demo"], "orders", "sue")
    one = f"{QR}/{reply['id']}"

    # ann works on demo: she reads it; zed works on no line: it does not exist for him.
    assert (await stack.get(one, "ann")).body == reply
    assert (await stack.get(one, "zed")).code == "not_found"
    assert titles(await stack.get(QR, "zed")) == []
    # Writes are the supervisors' (Bitrix24's chat admin): 403 to the operator who reads it.
    assert (await create(stack, "ann")).code == "not_allowed"
    assert (await stack.request("PATCH", one, "ann", json={"title": "x"})).code == "not_allowed"
    assert (await stack.request("DELETE", one, "ann")).code == "not_allowed"
    # ... and 404, not 403, to one who may not even read it.
    assert (await stack.request("DELETE", one, "zed")).code == "not_found"

    changed = await stack.request(
        "PATCH", one, json={"text": "Ships today, {{ customer.first_name }}.", "category": None}
    )
    assert changed.status == 200, changed.body
    assert (changed.body["text"], changed.body["category"]) == (
        "Ships today, {{ customer.first_name }}.",
        None,
    )
    assert changed.body["updated_at"] > reply["updated_at"]
    # Moved to vip (no operator's line): ann no longer reads it.
    assert (await stack.request("PATCH", one, json={"lines": ["vip"]})).status == 200
    assert (await stack.get(one, "ann")).code == "not_found"
    assert (await stack.request("DELETE", one)).status == 204
    assert (await stack.get(one)).code == "not_found"
    assert (await stack.request("DELETE", one)).code == "not_found"


async def test_a_supervisor_limited_to_lines_writes_only_replies_of_those_lines(
    stack: DialogsStack,
) -> None:
    narrowed = bearer("sue", "supervisor", secret=stack.runtime.settings.jwt_secret, lines=["demo"])
    async with stack.http.post(
        stack.url + QR,
        headers=narrowed,
        json={"title": "t", "text": "x", "lines": ["demo", "vip"]},
    ) as answer:
        assert answer.status == 403
        assert (await answer.json())["error"]["code"] == "not_allowed"
    async with stack.http.post(
        stack.url + QR, headers=narrowed, json={"title": "t", "text": "x", "lines": ["demo"]}
    ) as answer:
        assert answer.status == 201


async def test_bad_quick_replies_are_refused_with_clear_codes(stack: DialogsStack) -> None:
    refused = {
        "template_syntax": await create(stack, text="Hi {{ customer.name "),
        "unknown_variable": await create(stack, text="Hi {{ customer.age }}"),
        "template_not_allowed": await create(stack, text="{{ customer.__class__.__mro__[1] }}"),
        "unknown_line": await create(stack, lines=["demo", "nowhere"]),
    }
    for code, answer in refused.items():
        assert (answer.status, answer.code) == (422, code), answer.body
    for body in (
        {"title": "t", "text": "x" * 2001, "lines": ["demo"]},  # 2,000 characters at most
        {"title": "t", "text": "x", "lines": []},
        {"title": "t", "lines": ["demo"]},
        {"title": "t", "text": "x", "lines": ["demo"], "from_message_id": str(uuid.uuid4())},
        {"title": "t", "text": "x", "lines": ["demo"], "extra": 1},
    ):
        assert (await stack.post(QR, json=body)).code == "invalid_body", body
    created = (await create(stack)).body
    empty = await stack.request("PATCH", f"{QR}/{created['id']}", json={})
    assert empty.code == "invalid_body"
    bad = await stack.request("PATCH", f"{QR}/{created['id']}", json={"text": "{{ x }}"})
    assert bad.code == "unknown_variable"
    assert (await stack.get(QR, q="x", wat="1")).code == "invalid_query"
    assert (await stack.get(QR, cursor="bogus")).code == "bad_cursor"


async def test_the_list_filters_by_text_category_and_line_and_pages_by_title(
    stack: DialogsStack,
) -> None:
    for title, text, category, lines in [
        ("Refund", "Your refund is on its way.", "money", ["demo"]),
        ("Delivery", "The courier comes at 5.", "orders", ["demo"]),
        ("Bye", "Thanks for writing, bye!", None, ["demo", "vip"]),
        ("VIP hello", "Welcome back.", "vip", ["vip"]),
        ("100%_sure", "Literal wildcards.", None, ["demo"]),
    ]:
        assert (
            await create(stack, title=title, text=text, category=category, lines=lines)
        ).status == 201
    assert titles(await stack.get(QR, "ann")) == ["100%_sure", "Bye", "Delivery", "Refund"]
    assert titles(await stack.get(QR)) == ["100%_sure", "Bye", "Delivery", "Refund", "VIP hello"]
    assert titles(await stack.get(QR, "ann", q="COURIER")) == ["Delivery"]
    assert titles(await stack.get(QR, "ann", q="bye")) == ["Bye"]
    assert titles(await stack.get(QR, "ann", q="%")) == ["100%_sure"]  # not a wildcard
    assert titles(await stack.get(QR, category="vip")) == ["VIP hello"]
    assert titles(await stack.get(QR, "ann", category="vip")) == []
    assert titles(await stack.get(QR, line="vip")) == ["Bye", "VIP hello"]

    pages, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await stack.get(QR, **params)
        pages.append(titles(page))
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["100%_sure", "Bye"], ["Delivery", "Refund"], ["VIP hello"]]


async def test_a_quick_reply_is_sent_rendered_and_a_retry_is_the_same_message(
    stack: DialogsStack,
) -> None:
    dialog_id = await stack.open_dialog("4001", "hello?")
    template = (
        "Hi {{ customer.first_name }}, {{ operator.name }} of {{ line.name }}"
        " here ({{ dialog.id }})."
    )
    reply_id = (await create(stack, text=template)).body["id"]
    vip_only = (await create(stack, text="VIP", lines=["vip"])).body["id"]

    assert (await send_quick(stack, dialog_id, vip_only, "q-0")).code == "quick_reply_not_for_line"
    missing = await send_quick(stack, dialog_id, str(uuid.uuid4()), "q-0")
    assert missing.code == "unknown_quick_reply"
    both = await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        "ann",
        json={"text": "hi", "quick_reply_id": reply_id, "client_message_id": "q-0"},
    )
    assert both.code == "invalid_body"

    sent = await send_quick(stack, dialog_id, reply_id, "q-1")
    assert (sent.status, sent.body["status"]) == (202, "queued")
    rendered = f"Hi Customer, Ann Operator of Demo line here ({dialog_id})."
    timeline = await stack.timeline(dialog_id, "ann")
    assert [(m["direction"], m["text"]) for m in timeline][-1] == ("out", rendered)

    # The quick reply changes or goes; a retry of the send is still the same message.
    await stack.request("DELETE", f"{QR}/{reply_id}")
    retried = await send_quick(stack, dialog_id, reply_id, "q-1")
    assert (retried.status, retried.body["message_id"]) == (202, sent.body["message_id"])

    def out(seen: list[Envelope]) -> list[MessageAppended]:
        return [
            e.payload
            for e in seen
            if isinstance(e.payload, MessageAppended) and e.payload.direction is Direction.OUT
        ]

    events = await stack.dialog_events(lambda seen: bool(out(seen)))
    assert [m.text for m in out(events)] == [rendered]  # what outbound sends


async def test_a_message_is_saved_as_a_quick_reply_as_it_is(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("4002", "Is {{ this }} a template? No.")
    message_id = (await stack.timeline(dialog_id))[0]["id"]

    saved = await stack.post(QR, json={"from_message_id": message_id, "category": "faq"})
    assert saved.status == 201, saved.body
    assert (saved.body["title"], saved.body["lines"], saved.body["category"]) == (
        "Is {{ this }} a template? No.",
        ["demo"],
        "faq",
    )
    # Kept as text: sending it gives the message back, braces and all.
    await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")
    await send_quick(stack, dialog_id, saved.body["id"], "q-1")
    assert (await stack.timeline(dialog_id))[-1]["text"] == "Is {{ this }} a template? No."

    # A message one may not read, or none at all, is not there to save.
    hidden = await stack.post(QR, "zed", json={"from_message_id": message_id})
    assert hidden.code == "unknown_message"
    assert (await stack.post(QR, json={"from_message_id": str(uuid.uuid4())})).code == (
        "unknown_message"
    )
    # An operator who may read it still may not write quick replies.
    assert (await stack.post(QR, "ann", json={"from_message_id": message_id})).code == (
        "not_allowed"
    )


async def test_a_draft_is_kept_per_operator_and_cleared_by_sending(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("4003")
    draft = f"/api/v1/dialogs/{dialog_id}/draft"
    await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")

    assert (await stack.get(draft, "ann")).code == "no_draft"
    put = await stack.request("PUT", draft, "ann", json={"text": "Let me check th"})
    assert (put.status, put.body["text"]) == (200, "Let me check th")
    put = await stack.request("PUT", draft, "ann", json={"text": "Let me check that"})
    assert (await stack.get(draft, "ann")).body == put.body  # another session reads it
    # Per operator: sue's own draft in the same dialog is hers alone.
    await stack.request("PUT", draft, "sue", json={"text": "sue's note to self"})
    assert (await stack.get(draft, "ann")).body["text"] == "Let me check that"
    # bob reads ann's dialog (his line) but may not write in it; zed does not even see it.
    assert (await stack.request("PUT", draft, "bob", json={"text": "x"})).code == "not_allowed"
    assert (await stack.request("PUT", draft, "zed", json={"text": "x"})).code == "not_found"
    assert (await stack.get(f"/api/v1/dialogs/{uuid.uuid4()}/draft", "ann")).code == "not_found"
    assert (await stack.request("PUT", draft, "ann", json={})).code == "invalid_body"

    sent = await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        "ann",
        json={"text": "Let me check that.", "client_message_id": "d-1"},
    )
    assert sent.status == 202
    assert (await stack.get(draft, "ann")).code == "no_draft"
    assert (await stack.get(draft, "sue")).body["text"] == "sue's note to self"
    assert (await stack.request("DELETE", draft, "sue")).status == 204
    assert (await stack.get(draft, "sue")).code == "no_draft"
    assert (await stack.request("DELETE", draft, "sue")).status == 204  # idempotent


async def test_a_failed_send_keeps_the_draft(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("4004")
    draft = f"/api/v1/dialogs/{dialog_id}/draft"
    await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")
    await stack.request("PUT", draft, "ann", json={"text": "keep me"})
    refused = await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        "ann",
        json={"text": "   ", "client_message_id": "d-1"},
    )
    assert refused.code == "empty_message"
    assert (await stack.get(draft, "ann")).body["text"] == "keep me"  # same transaction


async def test_rebuilding_the_read_model_keeps_quick_replies_and_drafts(
    stack: DialogsStack,
) -> None:
    dialog_id = await stack.open_dialog("4005")
    await create(stack)
    await stack.request("PUT", f"/api/v1/dialogs/{dialog_id}/draft", json={"text": "draft"})

    async def counts() -> tuple[int, int]:
        async with stack.runtime.engine.connect() as conn:
            replies = await conn.scalar(select(func.count()).select_from(quick_replies))
            kept = await conn.scalar(select(func.count()).select_from(drafts))
        return int(replies or 0), int(kept or 0)

    assert await counts() == (1, 1)
    async with stack.runtime.engine.begin() as conn:
        assert await rebuild(conn, stack.runtime.event_store) == 1
    assert await counts() == (1, 1)
