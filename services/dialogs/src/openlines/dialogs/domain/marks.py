"""Marks on the dialog that do not change who holds it: read, title, pin."""

from __future__ import annotations

from openlines.dialogs.domain.refusals import EmptyTitle, PinnedToOther
from openlines.dialogs.domain.rules import Decider
from openlines.events.catalog import DialogPinned, DialogRead, DialogRenamed, Direction
from openlines.events.envelope import EventPayload


class Marks(Decider):
    """Per-operator reading, the staff-only title and the operator pin."""

    def mark_read(self, operator_id: str) -> list[EventPayload]:
        """Read for `operator_id` alone, up to the customer's latest message; nothing to
        record when they have read it all (a colleague's unread count is theirs)."""
        self._require_exists()
        if self.unread_for(operator_id) <= 0:
            return []
        latest = next(
            (m.message_id for m in reversed(self.messages.values()) if m.direction == Direction.IN),
            None,
        )
        return [DialogRead(dialog_id=self.id, operator_id=operator_id, up_to_message_id=latest)]

    def rename(self, actor_id: str, title: str) -> list[EventPayload]:
        """The staff-only title; the customer never sees it."""
        self._require_exists()
        title = title.strip()
        if not title:
            raise EmptyTitle("the title is empty")
        if title == self.title:
            return []
        return [DialogRenamed(dialog_id=self.id, title=title, actor_id=actor_id)]

    def pin(self, actor_id: str, *, is_supervisor: bool = False) -> list[EventPayload]:
        """Bitrix24's "pin to me": this customer's next dialogs on the line are offered to
        the actor first. One operator holds a pin; a supervisor may move it."""
        self._require_exists()
        if self.pinned_to == actor_id:
            return []
        events: list[EventPayload] = []
        if self.pinned_to is not None:
            if not is_supervisor:
                raise PinnedToOther("the dialog is pinned to another operator")
            events.append(self._pinned_event(self.pinned_to, pinned=False))
        events.append(self._pinned_event(actor_id, pinned=True))
        return events

    def unpin(self, actor_id: str, *, is_supervisor: bool = False) -> list[EventPayload]:
        self._require_exists()
        if self.pinned_to is None:
            return []
        if self.pinned_to != actor_id and not is_supervisor:
            raise PinnedToOther("the dialog is pinned to another operator")
        return [self._pinned_event(self.pinned_to, pinned=False)]

    def _pinned_event(self, operator_id: str, *, pinned: bool) -> DialogPinned:
        return DialogPinned(
            dialog_id=self.id,
            operator_id=operator_id,
            pinned=pinned,
            line_id=self.line_id,
            conversation_key=self.conversation_key,
        )
