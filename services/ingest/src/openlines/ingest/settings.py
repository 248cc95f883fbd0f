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

    # The SMTP endpoint of the email channels (only when the lines config has one).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8108
    # The name it greets with (EHLO); production: the host name the MX record points at.
    smtp_hostname: str = "openlines"
    # STARTTLS, when both are set (production: the certificate of smtp_hostname).
    smtp_tls_certfile: str = ""
    smtp_tls_keyfile: str = ""
