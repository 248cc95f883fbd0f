"""ingest settings (env prefix OPENLINES_)."""

from __future__ import annotations

from openlines.kit.settings import KitSettings


class IngestSettings(KitSettings):
    service_name: str = "ingest"
    http_port: int = 8101
    # Longer than this without a broker ack → 503, so that the provider retries the webhook.
    publish_timeout_seconds: float = 5.0
    # Bound on the broker round trip behind /readyz.
    readiness_timeout_seconds: float = 2.0
