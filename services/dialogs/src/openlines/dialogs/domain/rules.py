"""The rules decisions share: the max_dialogs load, the channels' change windows, delivery
order, text limits, and `Decider`, the base the aggregate's decision mixins build on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from openlines.dialogs.domain.refusals import (
    AtCapacity,
    DialogNotFound,
    EmptyMessage,
    LoadNeeded,
    TextTooLong,
)
from openlines.dialogs.domain.state import DialogState
from openlines.events.catalog import ChannelType, DeliveryStatus, MessageChange


@dataclass(frozen=True)
class Load:
    """An operator's open dialogs against their max_dialogs (`limit` None: no limit applies,
    as for supervisors or on a line whose operators may take beyond it)."""

    active: int
    limit: int | None

    @property
    def full(self) -> bool:
        return self.limit is not None and self.active >= self.limit


NO_LIMIT = Load(active=0, limit=None)


@dataclass(frozen=True)
class ChangeWindows:
    """How long after sending a channel lets us change a message at the provider (None:
    no limit)."""

    edit: timedelta | None
    delete: timedelta | None

    def of(self, change: MessageChange) -> timedelta | None:
        return self.edit if change is MessageChange.EDIT else self.delete


# Telegram's Bot API: deleteMessage works on a bot's own messages "sent less than 48 hours
# ago". editMessageText has no time limit for a bot's own messages (its 48 h rule is for
# business messages the bot did not send), so edits are not limited here; should Telegram
# refuse one anyway, outbound reports it and the timeline shows it. The windows count from
# when the message was recorded, which is before the provider got it: never too late.
# Channels absent here cannot change what they sent (no provider does it yet).
CHANGE_WINDOWS: dict[ChannelType, ChangeWindows] = {
    ChannelType.TELEGRAM: ChangeWindows(edit=None, delete=timedelta(hours=48))
}


_DELIVERY_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
}


def delivery_advances(current: DeliveryStatus | None, new: DeliveryStatus) -> bool:
    """Statuses only move forward; receipts and retries may arrive out of order."""
    if current is None:
        return True
    if new == current:
        return False
    if new == DeliveryStatus.FAILED:
        return current in (DeliveryStatus.QUEUED, DeliveryStatus.SENT)
    if current == DeliveryStatus.FAILED:
        return new != DeliveryStatus.QUEUED  # a retry or a late receipt proves it went out
    return _DELIVERY_RANK[new] > _DELIVERY_RANK[current]


def validate_text(text: str, max_length: int) -> None:
    if not text.strip():
        raise EmptyMessage("message text is empty")
    if len(text) > max_length:
        raise TextTooLong(f"message text exceeds the channel's {max_length} characters")


def require_room(load: Load | None) -> None:
    """The max_dialogs rule, for a decision that makes the caller the assignee."""
    if load is None:
        raise LoadNeeded
    if load.full:
        raise AtCapacity(
            f"you already hold {load.active} open dialogs, your maximum is {load.limit}"
        )


class Decider(DialogState):
    """The state plus the precondition every decision starts from."""

    def _require_exists(self) -> None:
        if not self.exists:
            raise DialogNotFound(f"dialog {self.id} not found")
