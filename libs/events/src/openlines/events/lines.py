"""Declarative lines configuration (DESIGN §7): one YAML file, validated by pydantic.

Domain configuration: pure domains read it, so it lives beside the catalog and imports no I/O
library (no aiohttp, sqlalchemy or aiokafka); reading the file is `load_lines`' one I/O.

Secrets never need to live in the file: `OPENLINES_SECRET_<CHANNEL_ID>` and
`OPENLINES_TOKEN_<CHANNEL_ID>` (upper-cased, dashes as underscores) override a channel's
`secret` and `token`, e.g. OPENLINES_SECRET_TG_DEMO for `tg-demo`. Values may also refer to
the environment as `${NAME}` or `${NAME:-default}`.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openlines.events.catalog.common import ChannelType
from openlines.events.limits import TEXT_MAX

__all__ = [
    "AutoClose",
    "Channel",
    "ChannelType",
    "Consent",
    "CrmRight",
    "CrmRoles",
    "Line",
    "LinesConfig",
    "Operator",
    "RoutingStrategy",
    "Sla",
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
    return LinesConfig.model_validate(data)
