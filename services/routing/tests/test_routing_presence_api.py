"""Presence rules, the presence event, and who sees which queues and operators."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from openlines.events.catalog import OperatorPresenceChanged, PresenceStatus
from openlines.kit.http.auth import issue_token

from .routing_support import Routing


async def _put(routing: Routing, target: str, body: Any, headers: dict[str, str]) -> Any:
    async with routing.http.put(
        f"{routing.url}/api/v1/operators/{target}/presence",
        headers=headers,
        **({"data": body} if isinstance(body, str) else {"json": body}),
    ) as resp:
        return resp.status, await resp.json()


REFUSALS = [
    ("ann", "operator", "bob", {"status": "online"}, 403, "forbidden"),
    ("ann", "operator", "zed", {"status": "online"}, 403, "forbidden"),
    ("sue", "supervisor", "zed", {"status": "online"}, 404, "not_found"),
    ("zed", "operator", "zed", {"status": "online"}, 404, "not_found"),
    ("ann", "operator", "ann", {"status": "busy"}, 422, "invalid_body"),
    ("ann", "operator", "ann", {"state": "online"}, 422, "invalid_body"),
    ("ann", "operator", "ann", ["online"], 422, "invalid_body"),
    # An unknown field is refused, not ignored.
    ("ann", "operator", "ann", {"status": "online", "until": "18:00"}, 422, "invalid_body"),
    ("ann", "operator", "ann", "{not json", 400, "malformed_json"),
]


async def test_presence_refusals_change_nothing(routing: Routing) -> None:
    # One running service for all cases (starting one takes seconds).
    for actor, role, target, body, status, code in REFUSALS:
        got_status, got = await _put(routing, target, body, routing.auth(actor, role))
        assert (got_status, got["error"]["code"]) == (status, code), (actor, target, body)
        assert set(got["error"]) >= {"code", "message"}
    status, body = await _put(routing, "ann", {"status": "online"}, {})
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert (await routing.load())["bob"] == (0, 0, 2)
    async with routing.runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT operator_id, status FROM operators"))
        assert {r.operator_id: r.status for r in rows} == dict.fromkeys(
            ["ann", "bob", "carl", "sue"], "offline"
        )


async def test_own_presence_and_supervisor_for_anyone_emit_presence_events(
    routing: Routing,
) -> None:
    status, body = await routing.presence("ann", "online")
    assert (status, body) == (
        200,
        {"operator_id": "ann", "status": "online", "previous_status": "offline"},
    )
    status, body = await routing.presence("bob", "away", actor="sue", role="supervisor")
    assert (status, body["previous_status"]) == (200, "offline")
    status, body = await routing.presence("ann", "online")  # no change: no event
    assert (status, body["previous_status"]) == (200, "online")
    status, _ = await routing.presence("ann", "offline", actor="sue", role="admin")
    assert status == 200

    await routing.routing_events.wait_for(
        lambda r: len(r.of(OperatorPresenceChanged)) >= 3, "three presence events"
    )
    events = routing.routing_events.of(OperatorPresenceChanged)
    # Keyed by operator: ordered per operator (partitions interleave across operators).
    per_operator = {
        op: [(e.status, e.previous_status) for e in events if e.operator_id == op]
        for op in ("ann", "bob")
    }
    assert per_operator == {
        "ann": [
            (PresenceStatus.ONLINE, PresenceStatus.OFFLINE),
            (PresenceStatus.OFFLINE, PresenceStatus.ONLINE),
        ],
        "bob": [(PresenceStatus.AWAY, PresenceStatus.OFFLINE)],
    }
    assert all(e.line_ids == ("demo",) for e in events)
    envelopes = [e for e in routing.routing_events.seen if e.type == "OperatorPresenceChanged"]
    assert all(e.stream_id == e.payload.operator_id for e in envelopes)


async def _get(routing: Routing, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with routing.http.get(f"{routing.url}{path}", headers=headers) as resp:
        return resp.status, await resp.json()


async def test_queues_and_operators_are_scoped_to_the_callers_lines(routing: Routing) -> None:
    status, body = await _get(routing, "/api/v1/queues", routing.auth("sue", "supervisor"))
    assert status == 200
    assert [q["line_id"] for q in body["lines"]] == ["demo", "vip"]
    assert body["lines"][0] == {
        "line_id": "demo",
        "waiting": 0,
        "oldest_waiting_since": None,
        "oldest_wait_seconds": 0,
    }
    status, body = await _get(routing, "/api/v1/queues", routing.auth("carl"))
    assert [q["line_id"] for q in body["lines"]] == ["vip"]
    status, body = await _get(routing, "/api/v1/queues", routing.auth("zed"))
    assert (status, body) == (200, {"lines": []})
    status, body = await _get(routing, "/api/v1/queues", {})
    assert status == 401

    await routing.presence("ann", "online")
    status, body = await _get(routing, "/api/v1/operators", routing.auth("bob"))
    assert status == 200
    assert body["operators"] == [
        {
            "operator_id": "ann",
            "status": "online",
            "status_changed_at": body["operators"][0]["status_changed_at"],
            "active_dialogs": 0,
            "reserved_dialogs": 0,
            "max_dialogs": 2,
            "line_ids": ["demo"],
        },
        {
            "operator_id": "bob",
            "status": "offline",
            "status_changed_at": None,
            "active_dialogs": 0,
            "reserved_dialogs": 0,
            "max_dialogs": 2,
            "line_ids": ["demo"],
        },
    ]
    assert body["operators"][0]["status_changed_at"] is not None
    status, body = await _get(routing, "/api/v1/operators", routing.auth("sue", "supervisor"))
    assert [o["operator_id"] for o in body["operators"]] == ["ann", "bob", "carl", "sue"]


async def test_a_supervisor_token_restricted_to_lines_reaches_only_their_operators(
    routing: Routing,
) -> None:
    token = issue_token("sue", ["supervisor"], secret=routing.settings.jwt_secret, lines=["demo"])
    headers = {"Authorization": f"Bearer {token}"}
    status, body = await _put(routing, "carl", {"status": "online"}, headers)  # carl: vip only
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = await _put(routing, "bob", {"status": "online"}, headers)  # bob serves demo
    assert status == 200
    async with routing.http.get(f"{routing.url}/api/v1/operators", headers=headers) as resp:
        listed = {op["operator_id"] for op in (await resp.json())["operators"]}
    assert "carl" not in listed and "bob" in listed
