"""Routing settings (env prefix OPENLINES_)."""

from __future__ import annotations

from openlines.kit.settings import KitSettings


class RoutingSettings(KitSettings):
    service_name: str = "routing"
    http_port: int = 8103
    # An AssignDialog that dialogs has not confirmed (DialogAssigned) by then is re-queued.
    reservation_timeout_seconds: float = 30.0
