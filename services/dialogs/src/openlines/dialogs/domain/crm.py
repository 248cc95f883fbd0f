"""The CRM link crm-link decided, mirrored into the dialog's stream."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from openlines.dialogs.domain.descriptions import describe_crm_link
from openlines.dialogs.domain.rules import Decider
from openlines.dialogs.domain.state import CrmLink, crm_fields
from openlines.events.catalog import DialogLinkedToCrm, Direction, MessageAppended
from openlines.events.envelope import EventPayload


class Crm(Decider):
    def link_crm(
        self, link: DialogLinkedToCrm, *, system_message_id: UUID, now: datetime
    ) -> list[EventPayload]:
        """Mirror crm-link's link into the stream, with a staff-only system message."""
        self._require_exists()
        wanted = CrmLink(
            customer_id=link.customer_id,
            lead_id=link.lead_id or self.crm.lead_id,
            contact_id=link.contact_id or self.crm.contact_id,
            company_id=link.company_id or self.crm.company_id,
            deal_id=link.deal_id or self.crm.deal_id,
        )
        if wanted == self.crm:
            return []
        mirrored = DialogLinkedToCrm(dialog_id=self.id, **crm_fields(wanted))
        # The system line names what this link added (a contact, then a deal...), not the
        # lead the dialog had already.
        before = crm_fields(self.crm)
        added = {k: v for k, v in crm_fields(wanted).items() if v != before[k]}
        news = DialogLinkedToCrm(dialog_id=self.id, **{**added, "customer_id": wanted.customer_id})
        return [
            mirrored,
            MessageAppended(
                dialog_id=self.id,
                message_id=system_message_id,
                direction=Direction.SYSTEM,
                text=describe_crm_link(news),
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            ),
        ]
