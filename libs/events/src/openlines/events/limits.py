"""Contract bounds on the catalog's strings and lists, so that every event fits one Kafka record.

Each bound sits above what any provider documents (Telegram: names 64 characters, message text
4096), so an edge that caps input to its provider's limits never meets them; an event built past
a bound fails validation where it is built, instead of stalling a relay later. Lengths count
characters (code points); a character takes at most 4 bytes in UTF-8. The largest legal event
stays far below the 1 MiB record (a test in libs/events checks the worst case).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = [
    "ATTACHMENTS_MAX",
    "BUTTONS_MAX",
    "ID_MAX",
    "MENTIONS_MAX",
    "NAME_MAX",
    "REASONS_MAX",
    "REASON_MAX",
    "TEXT_MAX",
    "URL_MAX",
    "Id",
    "Name",
    "Reason",
    "Text",
    "Url",
]

TEXT_MAX = 32_768
"""Message text and captions (Telegram 4096; e-mail bodies and notes get more room)."""
NAME_MAX = 256
"""Names, titles, usernames, file names, MIME types, phones, e-mails, language codes."""
ID_MAX = 256
"""Ids: provider ids, config ids (line, channel, operator), conversation keys, strategies."""
REASON_MAX = 1024
"""Free-text reasons (a provider's error, a transfer note)."""
URL_MAX = 2048
ATTACHMENTS_MAX = 32
MENTIONS_MAX = 64
BUTTONS_MAX = 16
"""Buttons under one message (a rating scale, a consent's accept and decline)."""
REASONS_MAX = 32
"""Reasons of one classification."""

Text = Annotated[str, Field(max_length=TEXT_MAX)]
Name = Annotated[str, Field(max_length=NAME_MAX)]
Id = Annotated[str, Field(max_length=ID_MAX)]
Reason = Annotated[str, Field(max_length=REASON_MAX)]
Url = Annotated[str, Field(max_length=URL_MAX)]
