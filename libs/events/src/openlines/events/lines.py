"""Declarative lines configuration (DESIGN §7): one YAML file, validated by pydantic.

Domain configuration: pure domains read it, so it lives beside the catalog and imports no I/O
library (no aiohttp, sqlalchemy or aiokafka); reading the file is `load_lines`' one I/O.

Secrets never need to live in the file: `OPENLINES_SECRET_<CHANNEL_ID>` and
`OPENLINES_TOKEN_<CHANNEL_ID>` (upper-cased, dashes as underscores) override a channel's
`secret` and `token`, e.g. OPENLINES_SECRET_TG_DEMO for `tg-demo`; an e-mail channel's relay
password comes from OPENLINES_SMTP_PASSWORD_<CHANNEL_ID> the same way. Values may also refer to
the environment as `${NAME}` or `${NAME:-default}`.
`secret` and `token`, e.g. OPENLINES_SECRET_TG_DEMO for `tg-demo`;
`OPENLINES_VERIFY_TOKEN_<CHANNEL_ID>` overrides a WhatsApp channel's `whatsapp.verify_token`.
Values may also refer to the environment as `${NAME}` or `${NAME:-default}`.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openlines.events.catalog.common import ChannelType
from openlines.events.limits import TEXT_MAX

__all__ = [
    "AutoClose",
    "Channel",
    "ChannelType",
    "Classification",
    "Consent",
    "CrmRight",
    "CrmRoles",
    "Csat",
    "EmailSettings",
    "Line",
    "LinesConfig",
    "Operator",
    "RoutingStrategy",
    "Sla",
    "SmtpRelay",
    "WhatsApp",
    "WhatsAppTemplate",
    "WidgetSettings",
    "load_lines",
]

RoutingStrategy = Literal["manual", "round_robin", "least_loaded", "longest_idle"]
CrmRight = Literal["none", "own", "all"]
"""CRM rights (Uspacy): none (no CRM at all), own (the entities one is responsible for), all
(every entity of one's lines). `openlines.kit.access` applies them."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sla(_Model):
    """RetailCRM's markers: how long the customer's last unanswered message may wait."""

    warning_seconds: int = 120
    breach_seconds: int = 300

    @model_validator(mode="after")
    def _multiples_of_30(self) -> Sla:
        for name in ("warning_seconds", "breach_seconds"):
            value = getattr(self, name)
            if value < 30 or value % 30:
                raise ValueError(
                    f"SLA thresholds are multiples of 30 seconds, at least 30: {name}={value}"
                )
        if self.breach_seconds <= self.warning_seconds:
            raise ValueError("breach must come after warning")
        return self


class SmtpRelay(_Model):
    """Where an e-mail channel's replies go out: the organisation's mail relay (or, in dev, the
    sandbox). `starttls` upgrades a plain connection (port 587), `tls` is TLS from the first
    byte (465), `none` is for a relay on the same host only."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""


class EmailSettings(_Model):
    """The `email` block of a channel of type email (each type's own settings sit in a block of
    their own, so that the types' names never collide)."""

    address: str = Field(pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$", max_length=254)
    """The address customers write to; mail for it reaches ingest's SMTP endpoint (MX or a
    forwarding rule) and replies go out from it."""
    display_name: str = ""
    smtp_relay: SmtpRelay | None = None
    max_message_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    """A larger mail is refused at the SMTP endpoint with 552."""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


class WhatsAppTemplate(_Model):
    """A message template approved for the WhatsApp Business account: what an operator may send
    outside the 24-hour customer-service window. `text` is its body as approved, with Meta's
    numbered placeholders `{{1}}`, `{{2}}`...; the timeline shows it filled in."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: str = Field(default="en", min_length=2, max_length=15)
    text: str = Field(min_length=1, max_length=1024)

    @property
    def variable_count(self) -> int:
        numbers = {int(n) for n in re.findall(r"\{\{\s*(\d+)\s*\}\}", self.text)}
        return max(numbers, default=0)

    def render(self, variables: tuple[str, ...]) -> str:
        def value(match: re.Match[str]) -> str:
            index = int(match.group(1)) - 1
            return variables[index] if 0 <= index < len(variables) else match.group(0)

        return re.sub(r"\{\{\s*(\d+)\s*\}\}", value, self.text)


class WhatsApp(_Model):
    """What a `whatsapp` channel needs beyond the shared fields (`secret`: the Meta app secret
    that signs webhooks; `token`: the access token; `api_base`: https://graph.facebook.com).
    Other channel types add their own block beside it, so their settings never collide."""

    phone_number_id: str = Field(pattern=r"^[0-9]{1,32}$")
    verify_token: str = ""
    """The token Meta's webhook subscription handshake echoes (`hub.verify_token`)."""
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    templates: tuple[WhatsAppTemplate, ...] = ()

    def template(self, name: str, language: str) -> WhatsAppTemplate | None:
        return next((t for t in self.templates if t.name == name and t.language == language), None)


class WidgetSettings(_Model):
    """A `widget` channel's own settings (a nested block, so other types' never collide)."""

    # Sites allowed to embed the widget (their `Origin`), e.g. https://shop.example; empty:
    # any site. The visitor endpoints refuse other origins with 403 `origin_not_allowed`.
    allowed_origins: tuple[str, ...] = ()
    # How long a visitor token lasts: the visitor's conversation lives as long as it.
    token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # Requests per visitor (messages and receipts), per ingest instance.
    messages_per_minute: int = Field(default=20, ge=1)
    # New visitor sessions per client address, per ingest instance.
    sessions_per_minute: int = Field(default=30, ge=1)
    # A visitor request's body; larger ones get 413 before they are read.
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # The chat box's title and greeting, shown by the embedded script.
    title: str = Field(default="Chat with us", max_length=80)
    greeting: str = Field(default="", max_length=500)


class Channel(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    type: ChannelType
    # Webhook secret (Telegram's secret_token, WhatsApp's app secret, the widget's HMAC key).
    secret: str = ""
    # Credential for calling the provider (Telegram bot token, WhatsApp access token).
    token: str = ""
    api_base: str = ""
    # At most the catalog's bound on message text, so a reply within it is a legal event.
    max_text_length: int = Field(default=4096, ge=1, le=TEXT_MAX)
    # The channel's own SLA thresholds (e.g. e-mail waits longer than chat); None: the line's.
    sla: Sla | None = None
    # Type-specific settings (type email). For e-mail, `secret` signs the thread tag of the
    # Message-IDs of replies, so that a customer's answer finds its dialog again.
    email: EmailSettings | None = None
    # A whatsapp channel without its block cannot send (no phone number id) nor pass the
    # webhook handshake (no verify token).
    whatsapp: WhatsApp | None = None

    # type widget only: the embedded chat box's settings (defaults when absent).
    widget: WidgetSettings | None = None

    @model_validator(mode="after")
    def _type_block(self) -> Channel:
        # A channel without its type's block only lacks that type's endpoint (no mailbox, no
        # phone number); a block of another type is a mistake in the file.
        if self.email is not None and self.type != ChannelType.EMAIL:
            raise ValueError(f"an `email` block on a {self.type} channel")
        if self.whatsapp is not None and self.type != ChannelType.WHATSAPP:
            raise ValueError(f"a `whatsapp` block on a {self.type} channel")
        if self.widget is not None and self.type != ChannelType.WIDGET:
            raise ValueError(f"a `widget` block on a {self.type} channel")
        return self


class Operator(_Model):
    id: str
    name: str = ""
    role: Literal["operator", "supervisor", "admin"] = "operator"
    max_dialogs: int = Field(default=5, ge=1)
    skills: tuple[str, ...] = ()
    # This operator's CRM rights; None: their role's (the lines config's `crm`).
    crm: CrmRight | None = None


class CrmRoles(_Model):
    """CRM rights per role (`crm:` at the top of the lines file)."""

    operator: CrmRight = "own"
    supervisor: CrmRight = "own"
    admin: CrmRight = "own"


class AutoClose(_Model):
    # An assigned dialog closes after this long without a message (None: never).
    inactive_seconds: int | None = Field(default=24 * 3600, ge=1)
    # An unassigned one after this long without a message.
    unassigned_seconds: int = Field(default=30 * 24 * 3600, ge=1)


class Consent(_Model):
    required: bool = False
    message: str = ""
    excluded_channels: tuple[str, ...] = ()


class Csat(_Model):
    """Leeloo's rating request: when a dialog closes, the customer is asked to rate it from 1
    to `scale` (Telegram: buttons under the question; other channels: a digit in reply)."""

    enabled: bool = False
    question: str = Field(default="How would you rate our help?", min_length=1, max_length=1000)
    scale: int = Field(default=5, ge=2, le=10)


# A classification value: what the API takes and the events carry (a plain, stable id).
ClassValue = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class Classification(_Model):
    """The values an operator may classify the line's dialogs with (`POST .../classify`):
    one `type`, any of the `reasons`, one `status`. Empty: the line does not classify."""

    types: tuple[ClassValue, ...] = ()
    reasons: tuple[ClassValue, ...] = ()
    statuses: tuple[ClassValue, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Classification:
        for name in ("types", "reasons", "statuses"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"classification {name} has duplicates: {list(values)}")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.types or self.reasons or self.statuses)


class Line(_Model):
    id: str
    name: str = ""
    channels: tuple[Channel, ...]
    operators: tuple[str, ...] = ()
    routing: RoutingStrategy = "round_robin"
    sla: Sla = Sla()
    auto_close: AutoClose = AutoClose()
    auto_lead: bool = True
    # A new customer whose channel gives a phone equal to a contact's phone is that contact's
    # customer (one person across messengers) instead of a new one.
    link_by_phone: bool = True
    consent: Consent = Consent()
    csat: Csat = Csat()
    classification: Classification = Classification()
    # Operators may take this line's dialogs by hand (take, first reply) beyond their
    # max_dialogs. Off by default: the manual take respects it as routing does. Supervisors and
    # admins are never limited.
    manual_take_beyond_capacity: bool = False
    # Re-route on no answer: an assignee who has not answered the customer's message this long
    # after it came (or after they got the dialog) loses it to another operator. None: never.
    reroute_after_seconds: int | None = Field(default=None, ge=1)
    # TEST ONLY: every timer of the line (SLA, auto-close, re-route) runs on this fraction of
    # its configured time, so that an end-to-end test sees 30/60 s markers in 3/6 s with 0.1.
    # The production guard refuses any value but 1.
    test_time_scale: float = Field(default=1.0, gt=0, le=1)

    def sla_of(self, channel_id: str | None = None) -> Sla:
        """The thresholds of a dialog of this line that came through `channel_id`."""
        channel = next((c for c in self.channels if c.id == channel_id), None)
        return channel.sla if channel is not None and channel.sla is not None else self.sla

    def duration(self, seconds: float) -> timedelta:
        """How long a configured number of seconds lasts on this line (see test_time_scale)."""
        return timedelta(seconds=seconds * self.test_time_scale)

    def sla_seconds(self, channel_id: str | None = None) -> tuple[float, float]:
        """The (warning, breach) thresholds as they elapse: what the timers and the dialog
        JSON's `sla.state` both count with."""
        sla = self.sla_of(channel_id)
        return (
            self.duration(sla.warning_seconds).total_seconds(),
            self.duration(sla.breach_seconds).total_seconds(),
        )


class LinesConfig(_Model):
    operators: tuple[Operator, ...] = ()
    lines: tuple[Line, ...] = ()
    crm: CrmRoles = CrmRoles()

    def crm_right(self, operator_id: str, role: str) -> CrmRight:
        """An operator's CRM rights: their own `crm`, else their role's."""
        operator = self.operator(operator_id)
        if operator is not None and operator.crm is not None:
            return operator.crm
        right: CrmRight = getattr(self.crm, role, self.crm.operator)
        return right

    @model_validator(mode="after")
    def _references(self) -> LinesConfig:
        known = {op.id for op in self.operators}
        seen: set[str] = set()
        for line in self.lines:
            missing = set(line.operators) - known
            if missing:
                raise ValueError(f"line {line.id}: unknown operators {sorted(missing)}")
            for channel in line.channels:
                if channel.id in seen:
                    raise ValueError(f"channel {channel.id} is configured twice")
                seen.add(channel.id)
        return self

    @cached_property
    def _channels(self) -> dict[str, tuple[Line, Channel]]:
        return {c.id: (line, c) for line in self.lines for c in line.channels}

    def channel(self, channel_id: str) -> tuple[Line, Channel] | None:
        return self._channels.get(channel_id)

    def line(self, line_id: str) -> Line | None:
        return next((line for line in self.lines if line.id == line_id), None)

    def operator(self, operator_id: str) -> Operator | None:
        return next((op for op in self.operators if op.id == operator_id), None)

    def lines_of(self, operator_id: str) -> list[Line]:
        return [line for line in self.lines if operator_id in line.operators]


def _env_name(kind: str, channel_id: str) -> str:
    return f"OPENLINES_{kind}_" + channel_id.upper().replace("-", "_")


_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """`${NAME}` / `${NAME:-default}` from the environment (e.g. a provider's base URL)."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is None:
            raise ValueError(f"lines file refers to ${{{name}}}, which is not set")
        return default

    return _ENV_REF.sub(value, text)


def load_lines(path: Path | str, env: dict[str, str] | None = None) -> LinesConfig:
    env = dict(os.environ) if env is None else env
    data = yaml.safe_load(_interpolate(Path(path).read_text(), env)) or {}
    for line in data.get("lines", []):
        for channel in line.get("channels", []):
            for field, kind in (("secret", "SECRET"), ("token", "TOKEN")):
                override = env.get(_env_name(kind, str(channel.get("id", ""))))
                if override:
                    channel[field] = override
            password = env.get(_env_name("SMTP_PASSWORD", str(channel.get("id", ""))))
            relay = (channel.get("email") or {}).get("smtp_relay")
            if password and isinstance(relay, dict):
                relay["password"] = password
            verify = env.get(_env_name("VERIFY_TOKEN", str(channel.get("id", ""))))
            if verify and isinstance(channel.get("whatsapp"), dict):
                channel["whatsapp"]["verify_token"] = verify
    return LinesConfig.model_validate(data)
