"""Notify settings (env prefix OPENLINES_)."""

from __future__ import annotations

import re

from pydantic import Field

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
