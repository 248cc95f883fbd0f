"""Outbound settings (env prefix OPENLINES_)."""

from __future__ import annotations

from pydantic import Field, model_validator

from openlines.kit.settings import KitSettings


class OutboundSettings(KitSettings):
    service_name: str = "outbound"
    http_port: int = 8105

    # One attempt = one claim of the job = at most one provider call.
    send_max_attempts: int = Field(default=5, ge=1)
    send_backoff_base_seconds: float = Field(default=0.5, gt=0)
    send_backoff_max_seconds: float = Field(default=30.0, gt=0)
    # A provider's retry_after is honoured up to this cap, for every chat of the channel.
    send_retry_after_cap_seconds: float = Field(default=300.0, gt=0)
    # Extra attempts while the provider keeps answering 429 with a retry_after.
    send_rate_limited_attempts: int = Field(default=20, ge=0)
    send_timeout_seconds: float = Field(default=10.0, gt=0)
    # The part of a call before the request can leave (pool wait, TCP, TLS); at most half of
    # send_timeout_seconds. A call that fails there is retried; one that fails later is not.
    send_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # A job left in `sending` longer than this is given up as outcome unknown (never re-sent).
    send_lease_seconds: float = Field(default=60.0, gt=0)
    sender_poll_seconds: float = Field(default=0.5, gt=0)
    sender_max_in_flight: int = Field(default=32, ge=1)
    # Sends per second per channel (Telegram allows about 30 per bot); 0 = unlimited.
    channel_rate_per_second: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _lease_outlives_a_call(self) -> OutboundSettings:
        # Otherwise a slow but successful call could be reported as outcome unknown.
        if self.send_lease_seconds <= self.send_timeout_seconds:
            raise ValueError("send_lease_seconds must be greater than send_timeout_seconds")
        return self
