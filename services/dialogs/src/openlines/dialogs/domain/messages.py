"""The timeline's messages: inbound, replies, notes, delivery, the operator's edits and
deletions, and the staff-only system lines other services' facts add."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from openlines.dialogs.domain.descriptions import describe_sla
from openlines.dialogs.domain.handover import Handover
from openlines.dialogs.domain.refusals import (
    ChangeNotSupported,
    DialogIsClosed,
    MessageIsDeleted,
    MessageNotFound,
    NotAssignedToYou,
    NotAuthor,
    NotChangeable,
    UnknownMessage,
    WindowExpired,
)
from openlines.dialogs.domain.rules import (
    CHANGE_WINDOWS,
    NO_LIMIT,
    Load,
    delivery_advances,
    validate_text,
)
from openlines.dialogs.domain.state import MessageState
from openlines.dialogs.domain.window import require_window_open
from openlines.events.catalog import (
    Attachment,
    DeliveryStatus,
    DialogMessageEdited,
    DialogOpened,
    DialogPinned,
    Direction,
    MessageAppended,
    MessageChange,
    MessageDeleted,
    MessageDeliveryUpdated,
    MessageReceived,
    MessageTemplate,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.envelope import EventPayload


class Messages(Handover):
    """Decisions about the timeline (a reply may take the dialog first, hence `Handover`)."""

    def open_from_inbound(
        self,
        message: MessageReceived,
        *,
        message_id: UUID,
        line_id: str,
        previous_dialog_id: UUID | None = None,
        customer_id: UUID | None = None,
        pinned_to: str | None = None,
    ) -> list[EventPayload]:
        """`pinned_to`: the conversation's pin (from its previous dialog), which the new
        dialog keeps: its operator can still see and lift it there."""
        if self.exists:
            return []  # the same inbound event was processed before: nothing new
        customer = message.customer
        events: list[EventPayload] = [
            DialogOpened(
                dialog_id=self.id,
                line_id=line_id,
                channel_id=message.channel_id,
                channel_type=message.channel_type,
                conversation_key=message.conversation_key,
                customer=customer,
                external_user_id=message.external_user_id,
                external_chat_id=message.external_chat_id,
                title=customer.name or customer.username or customer.external_id,
                previous_dialog_id=previous_dialog_id,
                customer_id=customer_id,
            )
        ]
        if pinned_to is not None:
            events.append(
                DialogPinned(
                    dialog_id=self.id,
                    operator_id=pinned_to,
                    pinned=True,
                    line_id=line_id,
                    conversation_key=message.conversation_key,
                )
            )
        events.append(self._inbound_appended(message, message_id))
        return events

    def receive(self, message: MessageReceived, *, message_id: UUID) -> list[EventPayload]:
        self._require_exists()
        if self.message_by_external_id(message.external_message_id) is not None:
            return []
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed; the message opens a new one")
        return [self._inbound_appended(message, message_id)]

    def reply(
        self,
        actor_id: str,
        text: str,
        *,
        message_id: UUID,
        client_message_id: str,
        now: datetime,
        max_text_length: int,
        reply_to: UUID | None = None,
        is_supervisor: bool = False,
        load: Load | None = NO_LIMIT,
        template: MessageTemplate | None = None,
    ) -> list[EventPayload]:
        """An operator's message to the customer; the first to answer an unassigned dialog
        becomes responsible for it (a take: `load` as for `take`). `template`: sent as the
        provider's approved template (`text` is it filled in), which the customer-service
        window does not limit."""
        self._require_exists()
        if self.message_by_client_id(actor_id, client_message_id) is not None:
            return []  # a client retry: the message is already recorded
        validate_text(text, max_text_length)
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed")
        if template is None:
            require_window_open(self.channel_type, self.last_inbound_at, now)
        if reply_to is not None and reply_to not in self.messages:
            raise UnknownMessage("reply_to is not a message of this dialog")
        events: list[EventPayload] = []
        if self.assignee_id is None:
            events += self.take(actor_id, may_take_over=False, load=load)
        elif not (self.is_on_dialog(actor_id) or is_supervisor):
            raise NotAssignedToYou("the dialog is assigned to another operator")
        else:
            events += self.join_by_writing(actor_id)
        events.append(
            MessageAppended(
                dialog_id=self.id,
                message_id=message_id,
                direction=Direction.OUT,
                author_id=actor_id,
                text=text,
                reply_to=reply_to,
                client_message_id=client_message_id,
                status=DeliveryStatus.QUEUED,
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
                template=template,
            )
        )
        return events

    def add_note(
        self,
        actor_id: str,
        text: str,
        *,
        message_id: UUID,
        mentions: Sequence[str],
        now: datetime,
        max_text_length: int,
        client_message_id: str | None = None,
    ) -> list[EventPayload]:
        """A staff-only note, never sent to the customer; `mentions` may read the dialog."""
        self._require_exists()
        if message_id in self.messages:
            return []  # a client retry
        validate_text(text, max_text_length)
        return [
            *self.join_by_writing(actor_id),
            MessageAppended(
                dialog_id=self.id,
                message_id=message_id,
                direction=Direction.NOTE,
                author_id=actor_id,
                text=text,
                mentions=tuple(mentions),
                client_message_id=client_message_id,
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            ),
        ]

    def update_delivery(
        self,
        message_id: UUID,
        status: DeliveryStatus,
        *,
        provider_message_id: str | None = None,
        reason: str | None = None,
    ) -> list[EventPayload]:
        self._require_exists()
        message = self.messages.get(message_id)
        if message is None or message.direction != Direction.OUT:
            raise UnknownMessage(f"no outbound message {message_id} in this dialog")
        if not delivery_advances(message.status, status):
            return []
        return [
            MessageDeliveryUpdated(
                dialog_id=self.id,
                message_id=message_id,
                status=status,
                reason=reason,
                provider_message_id=provider_message_id,
            )
        ]

    def edit_outbound(
        self,
        actor_id: str,
        message_id: UUID,
        text: str,
        *,
        now: datetime,
        max_text_length: int,
        is_supervisor: bool = False,
    ) -> list[EventPayload]:
        """The author (or a supervisor) corrects a message sent to the customer; outbound
        applies it at the provider."""
        message = self._changeable(actor_id, message_id, MessageChange.EDIT, now, is_supervisor)
        if message.deleted:
            raise MessageIsDeleted("the message was deleted")
        validate_text(text, max_text_length)
        return [
            DialogMessageEdited(
                dialog_id=self.id,
                message_id=message_id,
                text=text,
                actor_id=actor_id,
                edited_at=now,
            )
        ]

    def delete_outbound(
        self, actor_id: str, message_id: UUID, *, now: datetime, is_supervisor: bool = False
    ) -> list[EventPayload]:
        """The author (or a supervisor) takes a message back from the customer; the timeline
        keeps it, marked deleted, for the staff."""
        self._require_exists()
        found = self.messages.get(message_id)
        if found is not None and found.deleted:
            return []  # deleted before (a client retry)
        self._changeable(actor_id, message_id, MessageChange.DELETE, now, is_supervisor)
        return [MessageDeleted(dialog_id=self.id, message_id=message_id, actor_id=actor_id)]

    def _changeable(
        self,
        actor_id: str,
        message_id: UUID,
        change: MessageChange,
        now: datetime,
        is_supervisor: bool,
    ) -> MessageState:
        """The rules edit and delete share: an operator message of an open dialog, by its
        author or a supervisor, within the channel's window."""
        self._require_exists()
        message = self.messages.get(message_id)
        if message is None:
            raise MessageNotFound(f"no message {message_id} in this dialog")
        if message.direction != Direction.OUT:
            raise NotChangeable("only operator messages to the customer can be changed")
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed")
        if message.author_id != actor_id and not is_supervisor:
            raise NotAuthor("only the author or a supervisor may change this message")
        windows = CHANGE_WINDOWS.get(self.channel_type)
        if windows is None:
            raise ChangeNotSupported(f"{self.channel_type} cannot change a sent message")
        window = windows.of(change)
        if window is not None and message.sent_at is not None and now - message.sent_at > window:
            hours = window.total_seconds() / 3600
            raise WindowExpired(
                f"{self.channel_type} allows this only within {hours:g} h of sending"
            )
        return message

    def note_change_refused(
        self,
        message_id: UUID,
        change: MessageChange,
        reason: str,
        *,
        system_message_id: UUID,
        now: datetime,
    ) -> list[EventPayload]:
        """Outbound could not apply an edit or deletion (the provider refused it, or never had
        the message): a staff-only line, quoting the message, says so."""
        self._require_exists()
        if system_message_id in self.messages:
            return []
        what = "edit" if change is MessageChange.EDIT else "deletion"
        return [
            MessageAppended(
                dialog_id=self.id,
                message_id=system_message_id,
                direction=Direction.SYSTEM,
                text=(
                    f"The {what} of this message was not applied at the provider ({reason}): "
                    "if the customer got the message, they see it as it was"
                ),
                reply_to=message_id if message_id in self.messages else None,
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            )
        ]

    def edit_inbound(
        self,
        external_message_id: str,
        *,
        text: str | None,
        attachments: Sequence[Attachment],
        edited_at: datetime,
    ) -> list[EventPayload]:
        self._require_exists()
        message = self.message_by_external_id(external_message_id)
        if message is None:
            raise UnknownMessage(f"no inbound message {external_message_id!r} in this dialog")
        return [
            DialogMessageEdited(
                dialog_id=self.id,
                message_id=message.message_id,
                text=text,
                attachments=tuple(attachments),
                edited_at=edited_at,
                external_message_id=external_message_id,
            )
        ]

    def note_sla(
        self, reached: SlaWarningReached | SlaBreached, *, system_message_id: UUID, now: datetime
    ) -> list[EventPayload]:
        """Routing's SLA marker as a staff-only line of the timeline, while it still holds
        (the customer's message it counts from is still the unanswered one)."""
        self._require_exists()
        if not self.is_open or self.waiting_since != reached.waiting_since:
            return []
        if system_message_id in self.messages:
            return []
        return [
            MessageAppended(
                dialog_id=self.id,
                message_id=system_message_id,
                direction=Direction.SYSTEM,
                text=describe_sla(reached),
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            )
        ]

    def _inbound_appended(self, message: MessageReceived, message_id: UUID) -> MessageAppended:
        quoted = message.reply_to_external_id
        # The customer may quote their own message or one of ours (its provider id).
        reply_to = (
            self._by_external_id.get(quoted) or self._by_provider_id.get(quoted) if quoted else None
        )
        return MessageAppended(
            dialog_id=self.id,
            message_id=message_id,
            direction=Direction.IN,
            text=message.text,
            attachments=message.attachments,
            reply_to=reply_to,
            external_message_id=message.external_message_id,
            channel_id=message.channel_id,
            conversation_key=message.conversation_key,
            sent_at=message.sent_at,
        )
