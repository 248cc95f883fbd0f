"""crm-link settings (env prefix OPENLINES_)."""

from __future__ import annotations

from openlines.kit.settings import KitSettings


class CrmLinkSettings(KitSettings):
    service_name: str = "crm-link"  # schema crm_link
    http_port: int = 8104
    # Optimistic-concurrency retries when another writer moved a customer stream meanwhile.
    append_attempts: int = 5
