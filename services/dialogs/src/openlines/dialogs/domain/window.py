"""WhatsApp's 24-hour customer-service window, and its approved templates. Pure.

Within 24 hours of the customer's last message a business may write anything; after it, only a
template the provider approved beforehand (listed per channel in the lines config), until the
customer writes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from openlines.dialogs.domain.refusals import (
    TemplatesNotSupported,
    TemplateVariables,
    UnknownProviderTemplate,
    WindowClosed,
)
from openlines.events.catalog import ChannelType, MessageTemplate
from openlines.events.lines import Channel

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)

# Channel types whose provider refuses free-form messages outside the window.
_WINDOWED = frozenset({ChannelType.WHATSAPP})


def require_window_open(
    channel_type: ChannelType, last_inbound_at: datetime | None, now: datetime
) -> None:
    """Refuse a free-form message the provider would refuse (no customer message yet, or the
    last one more than 24 hours ago)."""
    if channel_type not in _WINDOWED:
        return
    if last_inbound_at is None or now - last_inbound_at >= CUSTOMER_SERVICE_WINDOW:
        raise WindowClosed(
            "the customer last wrote more than 24 hours ago: only a template can be sent"
        )


def filled_template(
    channel: Channel | None, name: str, language: str, variables: Sequence[str]
) -> tuple[str, MessageTemplate]:
    """The text the customer will read and the template to send, checked against the
    channel's configured templates."""
    settings = channel.whatsapp if channel is not None else None
    if settings is None:
        raise TemplatesNotSupported("this dialog's channel has no message templates")
    template = settings.template(name, language)
    if template is None:
        raise UnknownProviderTemplate(f"no template {name!r} in language {language!r}")
    if len(variables) != template.variable_count:
        raise TemplateVariables(
            f"template {name!r} takes {template.variable_count} variables, {len(variables)} given"
        )
    values = tuple(variables)
    return template.render(values), MessageTemplate(name=name, language=language, variables=values)
