"""The log survives a restart of the embedded stack (Tansu keeps topics in memory only): up,
traffic, down, up, then `openlines replay dialogs` and `openlines export events` still hold
every dialog and every stored event from before the restart."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import aiohttp
import duckdb
import psycopg
import pytest

from .conftest import Stack, _openlines, start_stack, stop_stack
from .steps import customer_says, eventually, json_if_ok

pytestmark = pytest.mark.infra  # starts a whole stack of its own, twice

CHATS = [4101, 4102, 4103]


def _stored_events(database_url: str) -> dict[str, set[uuid.UUID]]:
    """Event ids per logical topic in every event store."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT topic, event_id FROM dialogs.events UNION ALL "
            "SELECT topic, event_id FROM crm_link.events"
        ).fetchall()
    found: dict[str, set[uuid.UUID]] = {}
    for topic, event_id in rows:
        found.setdefault(topic, set()).add(event_id)
    return found


def _outboxes_empty(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM dialogs.outbox) + (SELECT count(*) FROM crm_link.outbox)"
        ).fetchone()
    return row is not None and row[0] == 0


async def test_replay_and_export_after_a_restart_include_everything_from_before() -> None:
    home = Path(tempfile.mkdtemp(prefix="ol-restart-", dir="/tmp"))
    running: list[Stack] = []  # stopped in the end, also after a failure
    try:
        stack = start_stack(home)
        running.append(stack)
        database_url = str(stack.state["postgres"]["url"])  # type: ignore[index]
        sue = stack.auth("sue", "supervisor")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            for chat in CHATS:
                await customer_says(http, stack.url, chat, f"Customer {chat}", "hello")
                await customer_says(http, stack.url, chat, f"Customer {chat}", "anyone there?")

            async def listed() -> list[str] | None:
                body = await json_if_ok(http, f"{stack.url}/api/v1/dialogs?tab=all", sue)
                ids = [d["id"] for d in (body or {}).get("items", [])]
                return ids if len(ids) == len(CHATS) else None

            before = sorted(await eventually(listed, "the dialogs", timeout=60))

            async def drained() -> bool:
                # crm-link made each customer's lead (it runs after the dialog is listed), and
                # both relays published everything they stored.
                leads = len(_stored_events(database_url).get("openlines.crm.v1", ()))
                return leads >= len(CHATS) and _outboxes_empty(database_url)

            await eventually(drained, "the relays to publish everything", timeout=60)
        stored = _stored_events(database_url)
        assert stored["openlines.dialogs.v1"] and stored["openlines.crm.v1"]
        stop_stack(running.pop())

        stack = start_stack(home)
        running.append(stack)
        # The new stack's servers (this process's environment names the tests' own).
        servers = [
            "--database-url",
            database_url,
            "--bootstrap",
            str(stack.state["kafka"]["bootstrap"]),  # type: ignore[index]
        ]
        replay = _openlines("replay", "dialogs", *servers, home=home)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "differences: none" in replay.stdout, replay.stdout
        # The other read models rebuild from the restored topics alike, and switch.
        for model in ("crm-link", "notify"):
            other = _openlines("replay", model, *servers, home=home)
            assert other.returncode == 0, other.stdout + other.stderr
            assert "differences: none" in other.stdout, other.stdout
            switched = _openlines("replay", model, "--switch", *servers, home=home)
            assert switched.returncode == 0, switched.stdout + switched.stderr
            again = _openlines("replay", model, *servers, home=home)
            assert "differences: none" in again.stdout, again.stdout
        # The switch from the console: the API then lists the same dialogs from the new tables.
        switched = _openlines("replay", "dialogs", "--switch", *servers, home=home)
        assert switched.returncode == 0, switched.stdout + switched.stderr
        assert "switched" in switched.stdout, switched.stdout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            body = await json_if_ok(http, f"{stack.url}/api/v1/dialogs?tab=all", sue)
        assert sorted(d["id"] for d in body["items"]) == before

        out = home / "export"
        export = _openlines("export", "events", str(out), servers[2], servers[3], home=home)
        assert export.returncode == 0, export.stdout + export.stderr
        db = duckdb.connect()
        for topic, ids in stored.items():
            exported = {
                uuid.UUID(str(row[0]))
                for row in db.execute(
                    f"SELECT event_id FROM read_parquet('{out}/{topic}/*.parquet', "
                    "union_by_name=true)"
                ).fetchall()
            }
            assert ids <= exported, f"{topic}: {len(ids - exported)} events missing"
    finally:
        for left in running:
            stop_stack(left)
        shutil.rmtree(home, ignore_errors=True)
