"""The pure Customer aggregate: identity, auto and manual leads, linking, access."""

from __future__ import annotations

import uuid

import pytest

from openlines.crm_link import domain
from openlines.crm_link.domain import AlreadyLinked, DialogFacts
from openlines.events.catalog import (
    ChannelType,
    CustomerIdentified,
    DialogLinkedToCrm,
    LeadCreated,
)
from openlines.events.envelope import EventPayload


def facts(n: int, channel_id: str = "tg-demo", user: str = "42") -> DialogFacts:
    return DialogFacts(
        dialog_id=uuid.UUID(int=n),
        line_id="demo",
        channel_id=channel_id,
        channel_type=ChannelType.TELEGRAM,
        external_user_id=user,
        customer_name="Carla",
        title=f"dialog {n}",
    )


def history(*decisions: list[EventPayload]) -> domain.Customer | None:
    return domain.replay(event for batch in decisions for event in batch)


def test_customer_id_is_the_identity() -> None:
    assert domain.customer_id_for("telegram", "42") == domain.customer_id_for("telegram", "42")
    assert domain.customer_id_for("telegram", "42") != domain.customer_id_for("whatsapp", "42")
    assert domain.customer_id_for("telegram", "42") != domain.customer_id_for("telegram", "43")
    assert facts(1).customer_id == domain.customer_id_for("telegram", "42")


def test_unknown_identity_on_an_auto_lead_line() -> None:
    first = domain.on_dialog_opened(None, facts(1), auto_lead=True)
    assert [type(e) for e in first] == [CustomerIdentified, LeadCreated, DialogLinkedToCrm]
    identified, lead, link = first
    assert isinstance(identified, CustomerIdentified) and identified.is_new
    assert (
        isinstance(lead, LeadCreated) and lead.auto and lead.source_dialog_id == facts(1).dialog_id
    )
    assert isinstance(link, DialogLinkedToCrm) and link.lead_id == lead.lead_id
    assert lead.lead_id == domain.lead_id_for(facts(1).customer_id, facts(1).dialog_id)


def test_known_identity_links_to_the_same_lead_and_never_twice() -> None:
    first = domain.on_dialog_opened(None, facts(1), auto_lead=True)
    state = history(first)
    assert state is not None and state.current_lead == first[1].lead_id  # type: ignore[attr-defined]
    second = domain.on_dialog_opened(state, facts(2), auto_lead=True)
    assert second == [
        DialogLinkedToCrm(
            dialog_id=facts(2).dialog_id,
            customer_id=facts(2).customer_id,
            lead_id=state.current_lead,
        )
    ]
    # The same dialog again (redelivery, or a retry after a lost race): nothing.
    assert domain.on_dialog_opened(history(first, second), facts(2), auto_lead=True) == []
    assert domain.on_dialog_opened(state, facts(1), auto_lead=True) == []


def test_a_new_channel_of_a_known_customer_is_identified_not_new() -> None:
    state = history(domain.on_dialog_opened(None, facts(1), auto_lead=True))
    events = domain.on_dialog_opened(state, facts(2, channel_id="tg-other"), auto_lead=True)
    assert [type(e) for e in events] == [CustomerIdentified, DialogLinkedToCrm]
    assert isinstance(events[0], CustomerIdentified) and not events[0].is_new


def test_no_auto_lead_links_the_customer_only_and_a_later_auto_line_creates_the_lead() -> None:
    first = domain.on_dialog_opened(None, facts(1), auto_lead=False)
    assert [type(e) for e in first] == [CustomerIdentified, DialogLinkedToCrm]
    assert isinstance(first[1], DialogLinkedToCrm) and first[1].lead_id is None
    later = domain.on_dialog_opened(history(first), facts(2), auto_lead=True)
    assert [type(e) for e in later] == [LeadCreated, DialogLinkedToCrm]


def test_manual_lead_for_a_dialog_without_one_then_already_linked() -> None:
    first = domain.on_dialog_opened(None, facts(1), auto_lead=False)
    manual = domain.create_lead(history(first), facts(1), "bob", "Quote")
    assert [type(e) for e in manual] == [LeadCreated, DialogLinkedToCrm]
    lead = manual[0]
    assert isinstance(lead, LeadCreated)
    assert (lead.auto, lead.actor_id, lead.title) == (False, "bob", "Quote")
    with pytest.raises(AlreadyLinked) as raised:
        domain.create_lead(history(first, manual), facts(1), "bob", None)
    assert raised.value.lead_id == lead.lead_id
    # The customer's next dialog joins the manual lead.
    nxt = domain.on_dialog_opened(history(first, manual), facts(2), auto_lead=False)
    assert isinstance(nxt[-1], DialogLinkedToCrm) and nxt[-1].lead_id == lead.lead_id


def test_a_customer_with_a_lead_gets_no_second_one_from_an_older_dialog() -> None:
    # D1 on a line without auto-lead (customer only); D2 on an auto-lead line makes L1;
    # creating a lead from D1 then links D1 to L1 (DESIGN §9: no duplicate leads).
    first = domain.on_dialog_opened(None, facts(1), auto_lead=False)
    second = domain.on_dialog_opened(history(first), facts(2), auto_lead=True)
    lead = next(e for e in second if isinstance(e, LeadCreated))
    joined = domain.create_lead(history(first, second), facts(1), "bob", "Quote")
    assert joined == [
        DialogLinkedToCrm(
            dialog_id=facts(1).dialog_id, customer_id=lead.customer_id, lead_id=lead.lead_id
        )
    ]


def test_auto_lead_dialog_cannot_get_a_manual_lead() -> None:
    state = history(domain.on_dialog_opened(None, facts(1), auto_lead=True))
    with pytest.raises(AlreadyLinked):
        domain.create_lead(state, facts(1), "ann", None)


def test_parse_uuid() -> None:
    assert domain.parse_uuid(str(uuid.UUID(int=5))) == uuid.UUID(int=5)
    assert domain.parse_uuid("not-a-uuid") is None
    assert domain.parse_uuid("42") is None
