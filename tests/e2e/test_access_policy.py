"""One access policy: the same principal gets the same see/act answer on the same dialog from
dialogs, crm-link, routing and notify, through the gateway (the table of rules is
libs/kit/tests/test_access.py).

The dialog is on `demo`, first waiting in the queue, then taken by bob. sue holds supervisor
tokens unlimited, limited to `demo`, and limited to a line the dialog is not on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from openlines.kit.http.auth import issue_token
from openlines.kit.settings import DEV_JWT_SECRET

from .conftest import Stack
from .steps import (
    customer_says,
    eventually,
    get_json,
    json_if_ok,
    next_ws_event,
    post_json,
    pushed,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own


@dataclass
class Who:
    name: str
    operator_id: str
    role: str
    lines: list[str] | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None

    @property
    def token(self) -> str:
        return issue_token(self.operator_id, [self.role], secret=DEV_JWT_SECRET, lines=self.lines)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def principals() -> list[Who]:
    return [
        Who("ann", "ann", "operator"),
        Who("bob", "bob", "operator"),
        Who("sue", "sue", "supervisor"),
        Who("sue@demo", "sue", "supervisor", ["demo"]),
        Who("sue@vip", "sue", "supervisor", ["vip"]),
    ]


async def _answers(
    stack: Stack,
    http: aiohttp.ClientSession,
    who: Who,
    dialog_id: str,
    lead_id: str,
    customer_text: str,
) -> dict[str, bool]:
    """What each service says this principal may do with the dialog."""
    base = stack.url
    # *list*: where the dialog shows. *read* (opening it by id, read-only where not written)
    # is wider, and asked apart (`_reads`).
    status, page = await get_json(http, f"{base}/api/v1/dialogs?limit=200", who.auth)
    assert status == 200, page
    answers = {"dialogs see": dialog_id in [d["id"] for d in page["items"]]}
    # *write*, probed with the caller's draft (marking read only needs *read*): 404: may not
    # read it; 403: reads it but may not write.
    status, body = await post_json(
        http, f"{base}/api/v1/dialogs/{dialog_id}/draft", who.auth, {"text": "probe"}, "PUT"
    )
    assert (status, (body.get("error") or {}).get("code")) in (
        (200, None),
        (404, "not_found"),
        (403, "not_allowed"),
    ), body
    answers["dialogs act"] = status == 200

    status, lead = await get_json(http, f"{base}/api/v1/crm/leads/{lead_id}", who.auth)
    assert status in (200, 404), lead
    listed = status == 200 and dialog_id in [d["dialog_id"] for d in lead["dialogs"]]
    answers["crm see"] = listed
    status, body = await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/lead", who.auth)
    # May act: the dialog has its (auto) lead already. May not: not found (lead id untold),
    # or, read-only, not allowed.
    assert (status, body["error"]["code"]) in (
        (409, "already_linked"),
        (404, "not_found"),
        (403, "not_allowed"),
    ), body
    answers["crm act"] = status == 409

    assert who.ws is not None
    answers["notify see"] = any(
        m["type"] == "MessageAppended"
        and m["dialog_id"] == dialog_id
        and m["event"]["payload"]["text"] == customer_text
        for m in await pushed(who.ws)
    )
    return answers


async def _reads(stack: Stack, http: aiohttp.ClientSession, who: Who, dialog_id: str) -> bool:
    """*read*: may open it by id (its JSON and timeline agree)."""
    base = f"{stack.url}/api/v1/dialogs/{dialog_id}"
    status, body = await get_json(http, base, who.auth)
    timeline_status, timeline = await get_json(http, base + "/timeline", who.auth)
    assert status == timeline_status and status in (200, 404), (body, timeline)
    if status == 200:
        assert body["can_write"] == timeline["can_write"]
    return status == 200


async def test_every_service_gives_a_principal_the_same_answer(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, chat = stack.url, random.randint(10**8, 10**9)
    sue, bob = stack.auth("sue", "supervisor"), stack.auth("bob")
    everyone = principals()
    dialog_id = None
    for op in ("ann", "bob"):  # nobody online: the dialog waits in demo's queue
        status, body = await post_json(
            http, f"{base}/api/v1/operators/{op}/presence", sue, {"status": "offline"}, "PUT"
        )
        assert status == 200, body
    stream = f"{base.replace('http', 'ws', 1)}/api/v1/stream"
    observer = await http.ws_connect(f"{stream}?token={stack.token('sue', 'supervisor')}")
    for who in everyone:
        who.ws = await http.ws_connect(f"{stream}?token={who.token}")
    try:
        await next_ws_event(observer, lambda m: m["type"] == "hello")
        for who in everyone:
            assert who.ws is not None
            await next_ws_event(who.ws, lambda m: m["type"] == "hello")

        # 1. Waiting in demo's queue: the line's operators and its supervisors see it.
        first = f"my card number is 4242 ({chat})"
        await customer_says(http, base, chat, "Pat Policy", first)

        async def linked() -> dict[str, Any] | None:
            body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=unassigned", sue)
            mine = [
                d
                for d in (body or {}).get("items", [])
                if d["customer"]["external_id"] == str(chat) and (d["crm"] or {}).get("lead_id")
            ]
            return mine[0] if mine else None

        dialog = await eventually(linked, "the waiting dialog and its lead")
        dialog_id, lead_id = dialog["id"], dialog["crm"]["lead_id"]
        await next_ws_event(
            observer,
            lambda m: m["type"] == "MessageAppended" and m["dialog_id"] == dialog_id,
        )
        status, queues = await get_json(http, f"{base}/api/v1/queues", sue)
        assert status == 200 and "demo" in [q["line_id"] for q in queues["lines"]], queues

        waiting = {"ann": True, "bob": True, "sue": True, "sue@demo": True, "sue@vip": False}
        for who in everyone:
            answers = await _answers(stack, http, who, dialog_id, lead_id, first)
            status, queues = await get_json(http, f"{base}/api/v1/queues", who.auth)
            assert status == 200, queues
            # Routing knows lines, not dialogs: a waiting dialog is seen where its queue is.
            answers["routing see"] = "demo" in [q["line_id"] for q in queues["lines"]]
            expected = waiting[who.name]
            assert answers == dict.fromkeys(answers, expected), (who.name, answers)
            assert await _reads(stack, http, who, dialog_id) is expected, who.name

        # 2. bob takes it: ann loses it, and so does every service's answer to her.
        status, body = await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/take", bob)
        assert (status, body["assignee_id"]) == (200, "bob"), body
        second = f"are you there? ({chat})"
        await customer_says(http, base, chat, "Pat Policy", second)
        await next_ws_event(
            observer,
            lambda m: m["type"] == "MessageAppended" and m["event"]["payload"]["text"] == second,
        )

        async def crm_caught_up() -> bool:
            # The message comes after the take in the dialog's stream (one partition).
            lead = await json_if_ok(http, f"{base}/api/v1/crm/leads/{lead_id}", sue)
            return any(
                d["dialog_id"] == dialog_id and (d["last_message"] or {}).get("text") == second
                for d in (lead or {}).get("dialogs", [])
            )

        await eventually(crm_caught_up, "crm-link to apply the take and the message after it")

        taken = {"ann": False, "bob": True, "sue": True, "sue@demo": True, "sue@vip": False}
        for who in everyone:
            answers = await _answers(stack, http, who, dialog_id, lead_id, second)
            # Routing: acting on the assignee (their presence) is for them and their line's
            # supervisors; offline again is no change.
            status, body = await post_json(
                http,
                f"{base}/api/v1/operators/bob/presence",
                who.auth,
                {"status": "offline"},
                "PUT",
            )
            assert status in (200, 403), body
            answers["routing act"] = status == 200
            expected = taken[who.name]
            assert answers == dict.fromkeys(answers, expected), (who.name, answers)
            # ann, an operator of its line, still opens it, read-only (Uspacy).
            reads = expected or who.name == "ann"
            assert await _reads(stack, http, who, dialog_id) is reads, who.name
    finally:
        if dialog_id is not None:  # free bob's capacity for the tests that follow
            await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/close", bob)
        await observer.close()
        for who in everyone:
            if who.ws is not None:
                await who.ws.close()
