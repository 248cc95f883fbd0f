"""Notify settings (env prefix OPENLINES_)."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from openlines.kit.settings import KitSettings


class NotifySettings(KitSettings):
    service_name: str = "notify"
    http_port: int = 8106

    ws_heartbeat_seconds: float = Field(default=30.0, gt=0)
    # Pushes waiting for one slow session; past this the session is closed (1013, try again)
    # and the client reconnects and refetches, rather than the hub buffering without bound.
    session_queue_size: int = Field(default=1000, ge=1)
    # Events older than this are applied to the projection but not pushed: a replay or a long
    # outage must not flood the operators' screens with history.
    push_max_age_seconds: float = Field(default=600.0, gt=0)
    # A colleague's "typing" reaches the others at most once per (operator, dialog) per this.
    typing_throttle_seconds: float = Field(default=3.0, ge=0)
    # Sessions live in one process. With several replicas, give each a stable id (e.g. the
    # StatefulSet pod name): it then reads every partition in its own consumer group, with
    # its own projection schema, so each replica can serve any operator.
    replica_id: str | None = None

    # -- signed outgoing webhooks (webhooks/) ----------------------------------------------
    # Receivers on private, loopback or link-local addresses are refused (SSRF) unless this is
    # on; the local stack turns it on for its demo receiver.
    webhook_allow_private_addresses: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # Retries (exponential backoff with jitter, Retry-After honoured up to the max) stop this
    # long after an event was recorded (or redelivered by hand): then it is dead-lettered.
    webhook_retry_for_seconds: float = Field(default=24 * 3600.0, gt=0)
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_in_flight: int = Field(default=64, ge=1)
    # A slow or dead receiver holds at most this many of the slots above.
    webhook_max_in_flight_per_subscription: int = Field(default=4, ge=1)
    # A delivery left `delivering` this long (its dispatcher died) is sent again.
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    # Delivered rows are listed this long, then deleted (dead letters are kept).
    webhook_keep_delivered_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlives_a_call(self) -> NotifySettings:
        # Otherwise a slow but live call would be sent a second time.
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("webhook_lease_seconds must be greater than webhook_timeout_seconds")
        return self

    @property
    def webhooks_group(self) -> str:
        return "notify.webhooks"  # not per replica: each event is delivered once

    @property
    def schema_name(self) -> str:
        if self.db_schema:
            return self.db_schema
        if self.replica_id:
            return "notify_" + re.sub(r"[^a-z0-9_]", "_", self.replica_id.lower())
        return super().schema_name

    @property
    def consumer_group(self) -> str:
        base = "notify.stream"  # the kit prefixes the topic namespace
        return f"{base}.{self.replica_id}" if self.replica_id else base
