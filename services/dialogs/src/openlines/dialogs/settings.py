"""Settings of the dialogs service (environment, prefix OPENLINES_)."""

from __future__ import annotations

from openlines.kit.settings import KitSettings


class DialogsSettings(KitSettings):
    service_name: str = "dialogs"
    http_port: int = 8102
    # Optimistic-concurrency retries of one command before giving up with 503.
    command_attempts: int = 8
