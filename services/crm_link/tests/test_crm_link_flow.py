"""crm-link end to end on the real broker: identities, auto leads, returning customers,
redelivery, manual leads and who may see them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from openlines.crm_link.domain import customer_id_for
from openlines.events.catalog import (
    ChannelType,
    CustomerIdentified,
    DialogLinkedToCrm,
    Direction,
    LeadCreated,
)

from .crm_support import Crm, assigned, message, now, opened


def user() -> str:
    return str(uuid.uuid4().int % 10**9)


async def test_first_dialog_of_an_unknown_identity_creates_customer_lead_and_link(
    crm: Crm,
) -> None:
    dialog, who = uuid.uuid4(), user()
    cause = await crm.publish(opened(dialog, who, name="Carla Customer"))

    await crm.crm_events.wait_for(lambda r: len(r.seen) >= 3, "three CRM events")
    customer_id = customer_id_for("telegram", who)
    assert crm.crm_events.types() == ["CustomerIdentified", "LeadCreated", "DialogLinkedToCrm"]
    assert [(e.stream_id, e.stream_version) for e in crm.crm_events.seen] == [
        (str(customer_id), 1),
        (str(customer_id), 2),
        (str(customer_id), 3),
    ]
    assert all(e.causation_id == cause.event_id for e in crm.crm_events.seen)
    [identified] = crm.crm_events.of(CustomerIdentified)
    assert identified == CustomerIdentified(
        customer_id=customer_id,
        channel_type=ChannelType.TELEGRAM,
        channel_id="tg-demo",
        external_user_id=who,
        name="Carla Customer",
        dialog_id=dialog,
        is_new=True,
    )
    [lead] = crm.crm_events.of(LeadCreated)
    assert (lead.customer_id, lead.auto, lead.source_dialog_id) == (customer_id, True, dialog)
    [link] = crm.crm_events.of(DialogLinkedToCrm)
    assert (link.dialog_id, link.customer_id, link.lead_id) == (dialog, customer_id, lead.lead_id)

    await crm.publish(message(dialog, "Where is my order?", now()))

    async def shown() -> dict:
        async with asyncio.timeout(30):
            while True:
                status, body = await crm.get(f"/api/v1/crm/leads/{lead.lead_id}", "ann")
                assert status == 200, body
                last = body["dialogs"][0]["last_message"]
                if last is not None and last["text"] == "Where is my order?":
                    return body
                await asyncio.sleep(0.05)

    body = await shown()
    assert body["id"] == str(lead.lead_id) and body["customer_id"] == str(customer_id)
    assert (body["status"], body["title"]) == ("new", "Carla Customer (tg-demo)")
    [shown_dialog] = body["dialogs"]
    assert (shown_dialog["dialog_id"], shown_dialog["line_id"], shown_dialog["channel_id"]) == (
        str(dialog),
        "demo",
        "tg-demo",
    )
    assert shown_dialog["last_message"]["direction"] == "in"
    assert body["channels"] == [
        {
            "channel_type": "telegram",
            "channel_id": "tg-demo",
            "external_user_id": who,
            "name": "Carla Customer",
        }
    ]


async def test_returning_customer_is_linked_to_the_same_lead(crm: Crm) -> None:
    who = user()
    first, second, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await crm.publish(opened(first, who))
    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 1, "first link")
    await crm.publish(message(first, "first dialog", now() - timedelta(minutes=5)))
    await crm.publish(opened(second, who))
    await crm.publish(message(second, "second dialog", now() - timedelta(minutes=1)))
    # The same person on another channel of the same messenger is the same customer.
    await crm.publish(opened(elsewhere, who, channel_id="tg-other"))
    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 3, "three links")

    [lead] = crm.crm_events.of(LeadCreated)
    links = crm.crm_events.of(DialogLinkedToCrm)
    assert {link.dialog_id for link in links} == {first, second, elsewhere}
    assert {link.lead_id for link in links} == {lead.lead_id}
    identified = crm.crm_events.of(CustomerIdentified)
    assert [(i.channel_id, i.is_new) for i in identified] == [
        ("tg-demo", True),
        ("tg-other", False),
    ]
    versions = [e.stream_version for e in crm.crm_events.seen]
    assert versions == list(range(1, len(versions) + 1))  # one stream, no gaps

    await crm.caught_up(elsewhere, channel_id="tg-other")
    status, body = await crm.get(f"/api/v1/crm/leads/{lead.lead_id}", "sue", "supervisor")
    assert status == 200
    # Newest activity first: the marker message just made `elsewhere` the newest.
    assert [d["dialog_id"] for d in body["dialogs"]] == [str(elsewhere), str(second), str(first)]
    assert [c["channel_id"] for c in body["channels"]] == ["tg-demo", "tg-other"]

    # Activity moves a dialog up; notes do not count as activity.
    await crm.publish(message(first, "back again", now()))
    await crm.publish(message(second, "internal", now(), direction=Direction.NOTE))
    await crm.caught_up(second)
    status, body = await crm.get(f"/api/v1/crm/leads/{lead.lead_id}", "sue", "supervisor")
    order = [d["dialog_id"] for d in body["dialogs"]]
    assert order[0] == str(second)  # the marker (inbound) is the newest activity
    assert order.index(str(first)) < order.index(str(elsewhere))


async def test_redelivered_dialog_opened_emits_nothing_more(crm: Crm) -> None:
    dialog, who = uuid.uuid4(), user()
    envelope = await crm.publish(opened(dialog, who))
    await crm.crm_events.wait_for(lambda r: len(r.seen) == 3, "first three events")
    await crm.send(envelope)  # the broker redelivers the same record
    await crm.publish(opened(dialog, who))  # and the same dialog under another event id
    await crm.caught_up(dialog)
    await crm.published_all()  # anything emitted by then is on the topic, and read
    assert crm.crm_events.types() == ["CustomerIdentified", "LeadCreated", "DialogLinkedToCrm"]


async def test_line_without_auto_lead_and_a_manual_lead(crm: Crm) -> None:
    dialog, who = uuid.uuid4(), user()
    await crm.publish(opened(dialog, who, channel_id="tg-manual"))
    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 1, "the link")
    assert crm.crm_events.types() == ["CustomerIdentified", "DialogLinkedToCrm"]
    [link] = crm.crm_events.of(DialogLinkedToCrm)
    assert link.lead_id is None  # linked to the customer only

    path = f"/api/v1/dialogs/{dialog}/lead"
    status, body = await crm.post(path, "ann")  # ann does not serve the manual line
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, lead = await crm.post(path, "bob", body={"title": "Wants a quote"})
    assert status == 201, lead
    assert (lead["title"], lead["auto"], lead["status"]) == ("Wants a quote", False, "new")
    assert [d["dialog_id"] for d in lead["dialogs"]] == [str(dialog)]
    status, body = await crm.post(path, "bob")
    assert (status, body["error"]["code"]) == (409, "already_linked")
    assert body["error"]["details"]["lead_id"] == lead["id"]

    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 2, "the lead link")
    [created] = crm.crm_events.of(LeadCreated)
    assert (str(created.lead_id), created.auto, created.actor_id) == (lead["id"], False, "bob")
    assert crm.crm_events.of(DialogLinkedToCrm)[1].lead_id == created.lead_id

    # The customer's next dialog, even on a line without auto leads, joins that lead.
    again = uuid.uuid4()
    await crm.publish(opened(again, who, channel_id="tg-manual"))
    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 3, "third link")
    assert crm.crm_events.of(DialogLinkedToCrm)[2].lead_id == created.lead_id
    assert len(crm.crm_events.of(LeadCreated)) == 1
    status, body = await crm.post(f"/api/v1/dialogs/{again}/lead", "bob")
    assert (status, body["error"]["code"]) == (409, "already_linked")


async def test_lead_and_dialog_access_and_bad_ids(crm: Crm) -> None:
    auto_dialog, manual_dialog = uuid.uuid4(), uuid.uuid4()
    await crm.publish(opened(auto_dialog, user()))
    await crm.publish(opened(manual_dialog, user(), channel_id="wa-manual"))
    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 2, "two links")
    [lead] = crm.crm_events.of(LeadCreated)
    lead_path = f"/api/v1/crm/leads/{lead.lead_id}"

    assert (await crm.get(lead_path, "ann"))[0] == 200  # a dialog on ann's line
    assert (await crm.get(lead_path, "sue", "supervisor"))[0] == 200
    assert (await crm.get(lead_path, "admin", "admin"))[0] == 200
    for path, who in [
        (lead_path, "bob"),  # operator of another line: no existence leak
        (f"/api/v1/crm/leads/{uuid.uuid4()}", "sue"),
        ("/api/v1/crm/leads/not-a-uuid", "sue"),
    ]:
        status, body = await crm.get(path, who, "supervisor" if who == "sue" else "operator")
        assert (status, body["error"]["code"]) == (404, "not_found"), path

    for path, who, expected in [
        (f"/api/v1/dialogs/{uuid.uuid4()}/lead", "sue", 404),
        ("/api/v1/dialogs/42/lead", "sue", 404),
        (f"/api/v1/dialogs/{manual_dialog}/lead", "ann", 404),
        (f"/api/v1/dialogs/{auto_dialog}/lead", "ann", 409),
    ]:
        status, body = await crm.post(path, who, "supervisor" if who == "sue" else "operator")
        assert status == expected, (path, body)

    async with crm.http.post(
        f"{crm.url}/api/v1/dialogs/{manual_dialog}/lead",
        headers={**crm.auth("bob"), "Content-Type": "application/json"},
        data="{oops",
    ) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "malformed_json")
    for bad in ({"title": 7}, {"title": "  "}, {"title": "x" * 256}, {"title": "t", "deal": 1}):
        status, body = await crm.post(f"/api/v1/dialogs/{manual_dialog}/lead", "bob", body=bad)
        assert (status, body["error"]["code"]) == (422, "invalid_body"), bad
    async with crm.http.get(f"{crm.url}{lead_path}") as resp:
        assert resp.status == 401

    # Two operators pressing "create lead" at once: one lead.
    path = f"/api/v1/dialogs/{manual_dialog}/lead"
    results = await asyncio.gather(
        crm.post(path, "bob"), crm.post(path, "sue", "supervisor"), crm.post(path, "bob")
    )
    assert sorted(status for status, _ in results) == [201, 409, 409]
    ids = {body["id"] for status, body in results if status == 201} | {
        body["error"]["details"]["lead_id"] for status, body in results if status == 409
    }
    assert len(ids) == 1


async def test_an_older_dialog_joins_the_customers_lead_and_each_sees_their_lines_only(
    crm: Crm,
) -> None:
    who = user()
    older, newer = uuid.uuid4(), uuid.uuid4()
    await crm.publish(opened(older, who, channel_id="tg-manual"))  # no auto lead: customer only
    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 1, "first link")
    await crm.publish(opened(newer, who))  # demo makes the lead
    await crm.crm_events.wait_for(lambda r: len(r.of(LeadCreated)) == 1, "the lead")
    [lead] = crm.crm_events.of(LeadCreated)

    # bob creates a lead from the older dialog: no second lead, it joins the customer's.
    status, body = await crm.post(f"/api/v1/dialogs/{older}/lead", "bob")
    assert (status, body["id"]) == (200, str(lead.lead_id)), body
    # The lead spans two lines: each operator sees the dialogs of their own line only.
    assert [d["dialog_id"] for d in body["dialogs"]] == [str(older)]
    status, body = await crm.get(f"/api/v1/crm/leads/{lead.lead_id}", "ann")
    assert (status, [d["dialog_id"] for d in body["dialogs"]]) == (200, [str(newer)])
    status, body = await crm.get(f"/api/v1/crm/leads/{lead.lead_id}", "sue", "supervisor")
    assert {d["dialog_id"] for d in body["dialogs"]} == {str(older), str(newer)}
    await crm.crm_events.wait_for(lambda r: len(r.of(DialogLinkedToCrm)) == 3, "older joins")
    assert len(crm.crm_events.of(LeadCreated)) == 1


async def test_a_dialog_assigned_to_a_colleague_is_not_found_as_in_dialogs(crm: Crm) -> None:
    """The policy of dialogs: an operator of the line lists an unassigned dialog, not one that
    a colleague holds (that one she reads only, so she may not make a lead of it); the
    assignee sees it wherever it is. Neither reading the lead nor creating one tells its id."""
    shown, hidden = uuid.uuid4(), uuid.uuid4()
    await crm.publish(opened(shown, user()))  # demo: ann's line, auto lead
    await crm.publish(opened(hidden, user()))
    await crm.publish(assigned(hidden, "bob"))  # taken over for bob, who is not on demo
    await crm.crm_events.wait_for(lambda r: len(r.of(LeadCreated)) == 2, "two leads")
    await crm.caught_up(hidden)
    leads = {lead.source_dialog_id: lead.lead_id for lead in crm.crm_events.of(LeadCreated)}

    status, body = await crm.get(f"/api/v1/crm/leads/{leads[hidden]}", "ann")
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    status, body = await crm.post(f"/api/v1/dialogs/{hidden}/lead", "ann")
    assert (status, body["error"]["code"]) == (403, "not_allowed"), body
    assert "lead_id" not in str(body) and str(leads[hidden]) not in str(body)
    status, body = await crm.post(f"/api/v1/dialogs/{hidden}/lead", "zed")  # no line of it
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    status, body = await crm.get(f"/api/v1/crm/leads/{leads[shown]}", "ann")
    assert status == 200
    [dialog] = body["dialogs"]
    assert (dialog["status"], dialog["assignee_id"], dialog["participants"]) == (
        "unassigned",
        None,
        [],
    )
    # bob holds it: he sees it, though demo is not his line.
    status, body = await crm.get(f"/api/v1/crm/leads/{leads[hidden]}", "bob")
    assert status == 200, body
    assert [(d["status"], d["assignee_id"]) for d in body["dialogs"]] == [("active", "bob")]
    status, body = await crm.post(f"/api/v1/dialogs/{hidden}/lead", "bob")
    assert (status, body["error"]["details"]["lead_id"]) == (409, str(leads[hidden]))
    # A supervisor token limited to another line sees neither.
    for dialog_id in (shown, hidden):
        status, body = await crm.get(
            f"/api/v1/crm/leads/{leads[dialog_id]}", "sue", "supervisor", lines=["manual"]
        )
        assert status == 404, body


async def test_no_lead_is_made_from_a_dialog_one_may_not_write(crm: Crm) -> None:
    dialog = uuid.uuid4()
    await crm.publish(opened(dialog, user(), channel_id="tg-manual"))  # bob's line, no auto lead
    await crm.publish(assigned(dialog, "ann", channel_id="tg-manual"))
    await crm.caught_up(dialog, channel_id="tg-manual")

    # bob reads his line's dialog (read-only), and may not make a lead of it; zed, of no
    # line, may not even know of it.
    status, body = await crm.post(f"/api/v1/dialogs/{dialog}/lead", "bob")
    assert (status, body["error"]["code"]) == (403, "not_allowed"), body
    status, body = await crm.post(f"/api/v1/dialogs/{dialog}/lead", "zed")
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    # ann holds it, though the manual line is not hers: she may.
    status, lead = await crm.post(f"/api/v1/dialogs/{dialog}/lead", "ann")
    assert status == 201, lead
    await crm.crm_events.wait_for(lambda r: len(r.of(LeadCreated)) == 1, "the lead")
    [created] = crm.crm_events.of(LeadCreated)
    assert (str(created.lead_id), created.actor_id) == (lead["id"], "ann")
