"""Who holds the dialog: routing's assignment, take, close and reopen, transfers, participants,
"close and start new", and timers' version guard."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from openlines.dialogs.domain.refusals import (
    AlreadyAssigned,
    AssigneeChanged,
    DialogChanged,
    DialogIsClosed,
    DialogNotClosed,
    DialogNotOpen,
    LastOperator,
    NewerDialogExists,
    NotOnLine,
)
from openlines.dialogs.domain.rules import NO_LIMIT, Decider, Load, require_room
from openlines.dialogs.domain.state import DialogState, DialogStatus
from openlines.events.catalog import (
    AssignedBy,
    CloseReason,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
    DialogPinned,
    DialogReopened,
    DialogTransferred,
    ParticipantJoined,
    ParticipantLeft,
)
from openlines.events.envelope import EventPayload


class Handover(Decider):
    """Decisions about the dialog's assignee, participants and open/closed status."""

    def assign_by_routing(
        self,
        operator_id: str,
        *,
        line_id: str,
        strategy: str | None = None,
        expected_operator_id: str | None = None,
    ) -> list[EventPayload]:
        """Routing's AssignDialog: valid only while open and unassigned (or, for a re-route,
        still held by the operator routing expects)."""
        self._require_exists()
        if line_id != self.line_id:
            raise DialogNotOpen(f"dialog is on line {self.line_id!r}, not {line_id!r}")
        if not self.is_open:
            raise DialogNotOpen("dialog is closed")
        if self.assignee_id == operator_id:
            return []
        if self.assignee_id is not None and self.assignee_id != expected_operator_id:
            raise DialogNotOpen(f"dialog is already assigned to {self.assignee_id}")
        return [
            DialogAssigned(
                dialog_id=self.id,
                operator_id=operator_id,
                assigned_by=AssignedBy.ROUTING,
                strategy=strategy,
                previous_operator_id=self.assignee_id,
                line_id=self.line_id,
            )
        ]

    def take(
        self, actor_id: str, *, may_take_over: bool, load: Load | None = NO_LIMIT
    ) -> list[EventPayload]:
        """Take (or, with the permission, take over) the dialog as the responsible operator.

        `load` is the caller's load for the max_dialogs rule (None: not counted yet, raises
        `LoadNeeded` if the take would record anything)."""
        self._require_exists()
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed")
        if self.assignee_id == actor_id:
            return []
        if self.assignee_id is not None and not may_take_over:
            # No name: the caller may not be allowed to see whose dialog this is.
            raise AlreadyAssigned("the dialog is already assigned to another operator")
        require_room(load)
        return [
            DialogAssigned(
                dialog_id=self.id,
                operator_id=actor_id,
                assigned_by=AssignedBy.SUPERVISOR if self.assignee_id else AssignedBy.OPERATOR,
                actor_id=actor_id,
                previous_operator_id=self.assignee_id,
                line_id=self.line_id,
            )
        ]

    def close(
        self, actor_id: str | None, reason: CloseReason, *, take_first: bool = False
    ) -> list[EventPayload]:
        """Close. `take_first`: an operator closing an unassigned dialog accepts it first
        ("accept and close"), so that it stays theirs, in their Closed tab; the take is
        momentary, so it is not held against their max_dialogs."""
        self._require_exists()
        if not self.is_open:
            return []  # closing twice is harmless (client retries, racing timers)
        return self._take_then_close(actor_id, reason, take_first)

    def mark_spam(self, actor_id: str, *, take_first: bool = False) -> list[EventPayload]:
        """A forced close with reason spam. A closed dialog may still be marked as spam (an
        operator often sees it is spam only after closing it): its status becomes spam."""
        self._require_exists()
        if self.status == DialogStatus.SPAM:
            return []
        return self._take_then_close(actor_id, CloseReason.SPAM, take_first)

    def _take_then_close(
        self, actor_id: str | None, reason: CloseReason, take_first: bool
    ) -> list[EventPayload]:
        events: list[EventPayload] = []
        operator_id = self.assignee_id
        if take_first and actor_id is not None and self.is_open and operator_id is None:
            events += self.take(actor_id, may_take_over=False)
            operator_id = actor_id
        events.append(
            DialogClosed(
                dialog_id=self.id,
                reason=reason,
                actor_id=actor_id,
                line_id=self.line_id,
                operator_id=operator_id,
            )
        )
        return events

    def reopen(
        self, actor_id: str, *, latest_dialog_id: UUID | None = None, load: Load | None = NO_LIMIT
    ) -> list[EventPayload]:
        """Reopen, if this is still the conversation's latest dialog (`latest_dialog_id`):
        the customer's next message goes to the latest one, so a reopened older dialog would
        never hear from them again. The actor becomes the assignee: a take (`load` as there)."""
        self._require_exists()
        if self.is_open:
            raise DialogNotClosed("the dialog is not closed")
        if latest_dialog_id is not None and latest_dialog_id != self.id:
            raise NewerDialogExists(
                f"the customer has a newer dialog ({latest_dialog_id}): reopen that one"
            )
        require_room(load)
        return [
            DialogReopened(
                dialog_id=self.id, actor_id=actor_id, operator_id=actor_id, line_id=self.line_id
            )
        ]

    def return_to_queue(
        self, reason: str, *, operator_id: str | None = None, actor_id: str = "routing"
    ) -> list[EventPayload]:
        """Unassign so routing queues it again: a transfer to the dialog's own line."""
        self._require_exists()
        if not self.is_open or self.assignee_id is None:
            raise DialogNotOpen("the dialog is not assigned")
        if operator_id is not None and operator_id != self.assignee_id:
            raise DialogNotOpen(f"the dialog is now assigned to {self.assignee_id}")
        return [
            DialogTransferred(
                dialog_id=self.id,
                from_operator_id=self.assignee_id,
                to_line_id=self.line_id,
                from_line_id=self.line_id,
                reason=reason,
                actor_id=actor_id,
            )
        ]

    def transfer_to_operator(
        self,
        actor_id: str,
        operator_id: str,
        *,
        line_operators: Sequence[str],
        by_supervisor: bool,
        reason: str | None = None,
        expected_assignee: str | None = None,
        load: Load | None = NO_LIMIT,
    ) -> list[EventPayload]:
        """Hand the dialog to `operator_id`, who must serve its line (`line_operators`).

        A closed dialog changes hands and stays closed (it then holds nobody's capacity, so
        `load`, the target's for the max_dialogs rule, is asked only of an open one).
        `expected_assignee`: the assignee the caller saw; if another transfer or take got
        there first, the caller is told instead of silently overriding it."""
        self._require_exists()
        self._require_assignee(expected_assignee)
        if operator_id not in line_operators:
            raise NotOnLine(f"{operator_id} does not serve line {self.line_id!r}")
        if operator_id == self.assignee_id:
            return []
        if self.is_open:
            require_room(load)
        by = AssignedBy.SUPERVISOR if by_supervisor else AssignedBy.OPERATOR
        return [
            DialogTransferred(
                dialog_id=self.id,
                from_operator_id=self.assignee_id,
                to_operator_id=operator_id,
                from_line_id=self.line_id,
                reason=reason,
                actor_id=actor_id,
            ),
            DialogAssigned(
                dialog_id=self.id,
                operator_id=operator_id,
                assigned_by=by,
                actor_id=actor_id,
                previous_operator_id=self.assignee_id,
                line_id=self.line_id,
            ),
        ]

    def transfer_to_line(
        self,
        actor_id: str,
        line_id: str,
        *,
        reason: str | None = None,
        expected_assignee: str | None = None,
    ) -> list[EventPayload]:
        """Move the dialog to another line: it waits in that line's queue and its routing
        assigns it (a closed one just changes line and stays closed, with no assignee)."""
        self._require_exists()
        self._require_assignee(expected_assignee)
        if line_id == self.line_id:
            return self.transfer_to_queue(actor_id, reason=reason)
        return [
            DialogTransferred(
                dialog_id=self.id,
                from_operator_id=self.assignee_id,
                to_line_id=line_id,
                from_line_id=self.line_id,
                reason=reason,
                actor_id=actor_id,
            )
        ]

    def transfer_to_queue(
        self, actor_id: str, *, reason: str | None = None, expected_assignee: str | None = None
    ) -> list[EventPayload]:
        """Back to its line's queue: ReturnToQueue's semantics (routing assigns it again)."""
        self._require_exists()
        self._require_assignee(expected_assignee)
        if not self.is_open:
            raise DialogIsClosed("a closed dialog waits in no queue; reopen it first")
        if self.assignee_id is None:
            return []  # it is in the queue already
        return self.return_to_queue(reason or "transferred to the queue", actor_id=actor_id)

    def join(self, operator_id: str, *, actor_id: str) -> list[EventPayload]:
        """`operator_id` takes part (joins, or is invited by `actor_id`)."""
        self._require_exists()
        if self.is_on_dialog(operator_id):
            return []
        return [ParticipantJoined(dialog_id=self.id, operator_id=operator_id, actor_id=actor_id)]

    def join_by_writing(self, actor_id: str) -> list[EventPayload]:
        """A supervisor writing into someone's dialog takes part in it from then on (the
        caller decided they may write; an assignee or participant joins nothing)."""
        if self.assignee_id is None:
            return []
        return self.join(actor_id, actor_id=actor_id)

    def leave(self, operator_id: str) -> list[EventPayload]:
        """A participant leaves. The assignee hands the dialog on instead (transfer), so the
        only operator on a dialog can never leave it to nobody."""
        self._require_exists()
        if not self.is_on_dialog(operator_id):
            return []
        members = {*self.participants, *([self.assignee_id] if self.assignee_id else [])}
        if members == {operator_id}:
            raise LastOperator("you are the only operator on this dialog")
        if operator_id == self.assignee_id:
            raise LastOperator("you are responsible for this dialog: transfer it to leave it")
        return [ParticipantLeft(dialog_id=self.id, operator_id=operator_id, actor_id=operator_id)]

    def _require_assignee(self, expected: str | None) -> None:
        if expected is not None and expected != self.assignee_id:
            raise AssigneeChanged(
                f"the dialog is no longer with {expected}; look again before transferring"
            )

    def close_for_new(self, actor_id: str, *, is_supervisor: bool) -> list[EventPayload]:
        """Bitrix24's "close and start new": this dialog closes (see `open_after`)."""
        self._require_exists()
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed: reopen it, or wait for the customer")
        return self.close(actor_id, CloseReason.OPERATOR, take_first=not is_supervisor)

    def open_after(
        self, previous: DialogState, actor_id: str, *, load: Load | None = NO_LIMIT
    ) -> list[EventPayload]:
        """This new dialog continues `previous`'s conversation, assigned to the actor (a take:
        `load` as there). It keeps the pin, as a dialog the customer opens would."""
        if self.exists:
            return []
        assert previous.customer is not None
        require_room(load)
        prefix = f"{previous.channel_id}:"
        key = previous.conversation_key
        events: list[EventPayload] = [
            DialogOpened(
                dialog_id=self.id,
                line_id=previous.line_id,
                channel_id=previous.channel_id,
                channel_type=previous.channel_type,
                conversation_key=key,
                customer=previous.customer,
                external_user_id=previous.customer.external_id,
                external_chat_id=key[len(prefix) :] if key.startswith(prefix) else None,
                title=previous.title,
                previous_dialog_id=previous.id,
                customer_id=previous.crm.customer_id,
            ),
            DialogAssigned(
                dialog_id=self.id,
                operator_id=actor_id,
                assigned_by=AssignedBy.OPERATOR,
                actor_id=actor_id,
                line_id=previous.line_id,
            ),
        ]
        if previous.pinned_to is not None:
            events.append(
                DialogPinned(
                    dialog_id=self.id,
                    operator_id=previous.pinned_to,
                    pinned=True,
                    line_id=previous.line_id,
                    conversation_key=key,
                )
            )
        return events

    def require_version(self, expected: int | None) -> None:
        """Refuse a command decided on another version of the dialog (timers' commands)."""
        if expected is not None and self.version != expected:
            raise DialogChanged(
                f"the dialog is at version {self.version}, the command was decided at {expected}"
            )
