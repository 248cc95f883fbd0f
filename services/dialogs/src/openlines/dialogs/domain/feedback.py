"""Leeloo's CSAT and classification: the rating request a close sends the customer, the
customer's answer (a button or a digit, recorded once), the operator's rating of the customer,
and the operator's classification with the line's configured values."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from openlines.dialogs.domain.refusals import (
    NotClassifiable,
    RatingNotRequested,
    ScoreOutOfScale,
    UnknownClassReason,
    UnknownClassStatus,
    UnknownClassType,
)
from openlines.dialogs.domain.rules import Decider
from openlines.dialogs.domain.state import DialogStatus
from openlines.events.catalog import (
    Button,
    ChannelType,
    CloseReason,
    DeliveryStatus,
    DialogClassified,
    DialogClosed,
    DialogRated,
    Direction,
    MessageAppended,
)
from openlines.events.envelope import EventPayload
from openlines.events.lines import Classification, Csat

# The data of a rating button: `csat:<dialog id>:<score>` (43 bytes, within Telegram's 64).
# It names the dialog, so a press rates the dialog that asked even after the customer wrote
# again; the conversation of the press must be that dialog's (see `rate_by_customer`).
CSAT_PREFIX = "csat"

# Channels that show buttons under a message; the others are asked for a digit in the text.
BUTTON_CHANNELS = frozenset({ChannelType.TELEGRAM})


def rating_request_id(dialog_id: UUID) -> UUID:
    """The one rating request a dialog sends (its message id): asked at most once."""
    return uuid.uuid5(dialog_id, "csat-request")


def rating_button_data(dialog_id: UUID, score: int) -> str:
    return f"{CSAT_PREFIX}:{dialog_id}:{score}"


def parse_rating_data(data: str) -> tuple[UUID, int] | None:
    """(dialog id, score) of a rating button's data; None if it is not one."""
    prefix, _, rest = data.partition(":")
    dialog, _, score = rest.partition(":")
    if prefix != CSAT_PREFIX or not score.isdigit() or len(score) > 2:
        return None
    try:
        return UUID(dialog), int(score)
    except ValueError:
        return None


def digit_score(text: str | None, scale: int) -> int | None:
    """The score a customer's text answer gives: one number 1..scale and nothing else."""
    value = (text or "").strip()
    if not value.isascii() or not value.isdigit():
        return None
    score = int(value)
    return score if 1 <= score <= scale else None


def request_text(csat: Csat, channel_type: ChannelType) -> str:
    if channel_type in BUTTON_CHANNELS:
        return csat.question
    return f"{csat.question}\nReply with a digit from 1 to {csat.scale}."


class Feedback(Decider):
    """Ratings and classification."""

    @property
    def rating_requested(self) -> bool:
        return rating_request_id(self.id) in self.messages

    @property
    def rating_pending(self) -> bool:
        """Asked, and the customer has not answered yet: a digit they write answers it."""
        return self.rating_requested and self.customer_rating is None

    def rating_request_after(
        self, decided: Sequence[EventPayload], csat: Csat, *, now: datetime
    ) -> list[EventPayload]:
        """What follows `decided` (events of one decision on this state): a close, whoever
        or whatever closed (an operator, a timer, "close and open new"), asks for the rating;
        spam does not."""
        closes = any(isinstance(e, DialogClosed) and e.reason != CloseReason.SPAM for e in decided)
        return self.request_rating(csat, now=now) if closes else []

    def request_rating(self, csat: Csat, *, now: datetime) -> list[EventPayload]:
        """The question (with the scale's buttons where the channel has them), sent as the
        dialog closes; once per dialog, and never after the customer rated."""
        self._require_exists()
        if not csat.enabled or self.status == DialogStatus.SPAM:
            return []
        if self.rating_requested or self.customer_rating is not None:
            return []
        buttons: tuple[Button, ...] = ()
        if self.channel_type in BUTTON_CHANNELS:
            buttons = tuple(
                Button(text=str(score), data=rating_button_data(self.id, score))
                for score in range(1, csat.scale + 1)
            )
        return [
            MessageAppended(
                dialog_id=self.id,
                message_id=rating_request_id(self.id),
                direction=Direction.OUT,
                text=request_text(csat, self.channel_type),
                buttons=buttons,
                status=DeliveryStatus.QUEUED,
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            )
        ]

    def rate_by_customer(self, score: int, *, scale: int) -> list[EventPayload]:
        """The customer's answer to the request: recorded once; a second answer is ignored."""
        self._require_exists()
        if self.customer_rating is not None:
            return []
        if not self.rating_requested:
            raise RatingNotRequested("the dialog did not ask the customer for a rating")
        _check_score(score, scale)
        return [
            DialogRated(
                dialog_id=self.id,
                score=score,
                scale=scale,
                by="customer",
                line_id=self.line_id,
                operator_id=self.assignee_id,
            )
        ]

    def rate_by_operator(
        self, actor_id: str, score: int, *, scale: int, comment: str | None = None
    ) -> list[EventPayload]:
        """The operator rates the customer; a later rating corrects it (the same again
        records nothing: a client retry)."""
        self._require_exists()
        _check_score(score, scale)
        comment = (comment or "").strip() or None
        if self.operator_rating == (actor_id, score, scale, comment):
            return []
        return [
            DialogRated(
                dialog_id=self.id,
                score=score,
                scale=scale,
                by="operator",
                actor_id=actor_id,
                comment=comment,
                line_id=self.line_id,
                operator_id=self.assignee_id,
            )
        ]

    def classify(
        self,
        actor_id: str,
        config: Classification,
        *,
        type: str | None,
        reasons: Sequence[str],
        status: str | None,
    ) -> list[EventPayload]:
        """Classify with the line's values (a later classification replaces it)."""
        self._require_exists()
        if not config.configured:
            raise NotClassifiable(f"line {self.line_id} has no classification values")
        if type is not None and type not in config.types:
            raise UnknownClassType(f"type {type!r} is not one of {list(config.types)}")
        unknown = [r for r in reasons if r not in config.reasons]
        if unknown:
            raise UnknownClassReason(f"reasons {unknown} are not in {list(config.reasons)}")
        if status is not None and status not in config.statuses:
            raise UnknownClassStatus(f"status {status!r} is not one of {list(config.statuses)}")
        chosen = tuple(dict.fromkeys(reasons))  # each once, in the order given
        if self.classification == (type, chosen, status, actor_id):
            return []
        return [
            DialogClassified(
                dialog_id=self.id,
                type=type,
                reasons=chosen,
                status=status,
                actor_id=actor_id,
                line_id=self.line_id,
            )
        ]


def _check_score(score: int, scale: int) -> None:
    if not 1 <= score <= scale:
        raise ScoreOutOfScale(f"the score is 1 to {scale}, not {score}")
