"""Service settings from the environment (prefix OPENLINES_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openlines.events.lines import load_lines
from openlines.kit.kafka.admin import MAX_RECORD_BYTES

# Room the envelope (ids, times, type, producer) and the record headers take around a request
# body's content: a body this much smaller than a record always fits one (see http_body_limit).
RECORD_ENVELOPE_ROOM = 64 * 1024

# At least 32 bytes: shorter HMAC keys are below what RFC 7518 asks for HS256.
DEV_JWT_SECRET = "openlines-dev-secret-change-me-in-production"

# -- production guard -------------------------------------------------------------------------
# The published credentials of config/demo.yaml (webhook secret, sandbox bot token): anyone
# who read the repository knows them, so no production channel may use them. This is the one
# list; a kit test checks that it covers every secret and token of config/demo.yaml.
DEMO_SECRETS = frozenset(
    {
        "demo-secret",
        "123456:demo-bot-token",
        "demo-mail-secret",
        # wa-demo: the app secret, the access token and the webhook verify token
        "demo-app-secret",
        "demo-whatsapp-access-token",
        "demo-verify-token",
        # web-demo's HMAC secret (visitor tokens derive from it)
        "demo-widget-secret",
    }
)

Environment = Literal["development", "production"]


class ProductionGuardError(RuntimeError):
    """The service must not start in production with these settings. Not a ValueError on
    purpose: pydantic lets it through unwrapped, so the message is the last line printed."""


class KitSettings(BaseSettings):
    """What every service needs; services subclass it to add their own fields."""

    model_config = SettingsConfigDict(env_prefix="OPENLINES_", extra="ignore")

    service_name: str = "openlines"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Off by default: the embedded broker rejects InitProducerId (DESIGN §5).
    kafka_idempotence: bool = False
    # Prefix for physical topic names (tests, shared brokers); empty in production.
    topic_namespace: str = ""
    # Create the catalog topics at start (local stack and tests; Strimzi does it in k8s).
    create_topics: bool = False
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    db_schema: str | None = Field(default=None, description="defaults to the service name")
    db_pool_size: int = 10

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # The largest Kafka record a producer sends (aiokafka's max_request_size). Topics must
    # accept it (max.message.bytes; Apache Kafka's default is 1 MiB + 12 bytes). A bigger record
    # is refused by the producer, and the relay dead-letters it (openlines deadletters).
    kafka_max_record_bytes: int = MAX_RECORD_BYTES
    # Derived from kafka_max_record_bytes when not set (record minus RECORD_ENVELOPE_ROOM), so a
    # body the HTTP edge accepts fits one record; a larger body is 413 payload_too_large.
    http_body_limit: int = Field(default=MAX_RECORD_BYTES - RECORD_ENVELOPE_ROOM)

    # The declarative lines file (DESIGN §7); the same file is the ConfigMap in Kubernetes.
    lines_file: str = "config/demo.yaml"

    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = None

    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # How long a request body may take to arrive once its headers did (408 `body_timeout`).
    http_body_timeout_seconds: float = 30.0

    @model_validator(mode="after")
    def _jwks_needs_an_asymmetric_algorithm(self) -> Self:
        # Keys from a JWKS are public keys: with HS256 every request would fail with a 500.
        if self.jwt_jwks_url and self.jwt_algorithm.upper().startswith("HS"):
            raise ValueError(
                "OPENLINES_JWT_JWKS_URL needs an asymmetric OPENLINES_JWT_ALGORITHM (e.g. RS256),"
                f" not {self.jwt_algorithm}"
            )
        return self

    # -- production guard (see DEMO_SECRETS above) ----------------------------------------
    # `production` refuses to start with the dev JWT secret or a demo channel secret.
    env: Environment = "development"
    # Tokens living longer than this (exp - iat; exp - now without iat) are refused, in every
    # environment: a service cannot tell who minted them. `openlines token` defaults to 12 h.
    jwt_max_lifetime_seconds: int = Field(default=12 * 3600, gt=0)

    @model_validator(mode="after")
    def _production_guard(self) -> Self:
        if self.env == "production":
            refuse_unsafe_production(self)
        return self

    @model_validator(mode="after")
    def _body_fits_a_record(self) -> Self:
        # One place for both limits: the body limit follows the record limit unless set, and
        # may never exceed what one record can carry.
        envelope = min(RECORD_ENVELOPE_ROOM, self.kafka_max_record_bytes // 2)  # tiny limits
        room = self.kafka_max_record_bytes - envelope
        if "http_body_limit" not in self.model_fields_set:
            self.http_body_limit = room
        elif self.http_body_limit > room:
            raise ValueError(
                f"OPENLINES_HTTP_BODY_LIMIT ({self.http_body_limit}) must be at most"
                f" OPENLINES_KAFKA_MAX_RECORD_BYTES - {envelope} ({room})"
            )
        return self

    shutdown_flush_seconds: float = 5.0
    # How fast a group notices a member that died without leaving (SIGKILL, lost node):
    # measured on Tansu, a replacement joined after ~18 s with aiokafka's defaults, ~11 s here.
    consumer_session_timeout_ms: int = 6000
    consumer_heartbeat_interval_ms: int = 2000
    consumer_rebalance_timeout_ms: int = 6000
    consumer_max_poll_interval_ms: int = 120000
    # How long the broker may hold an empty fetch. Tansu answers a waiting fetch only when
    # this runs out, not when data arrives, so every consumer hop waits up to this long.
    # Measured at 10 dialogs/s end to end (4 consumer hops): 100 ms gave p50 116-125 ms,
    # 25 ms gave p50 75-85 ms; idle polling across the suite rose from 13 % to 27-36 % of a core.
    # With Apache Kafka, which answers as soon as data arrives, 500 is the better value.
    consumer_fetch_max_wait_ms: int = 25
    consumer_max_attempts: int = 5
    consumer_batch_size: int = 100
    relay_batch_size: int = 500
    # Readiness turns red when the relay holds work but has published nothing for this long
    # (a broker it cannot reach, or a round failing over and over).
    relay_stall_seconds: float = 30.0

    @property
    def schema_name(self) -> str:
        return self.db_schema or self.service_name.replace("-", "_")


def refuse_unsafe_production(settings: KitSettings) -> None:
    """Raise ProductionGuardError if a production service would run on published secrets."""
    if settings.jwt_jwks_url is None and settings.jwt_secret == DEV_JWT_SECRET:
        raise ProductionGuardError(
            "OPENLINES_ENV=production refuses the dev JWT secret: set OPENLINES_JWT_SECRET "
            "(or OPENLINES_JWT_JWKS_URL)"
        )
    path = Path(settings.lines_file)
    if not path.is_file():
        return  # nothing to check; a service that needs the file fails to load it anyway
    for line in load_lines(path).lines:
        if line.test_time_scale != 1:
            raise ProductionGuardError(
                f"OPENLINES_ENV=production refuses line {line.id!r}'s test_time_scale "
                f"({line.test_time_scale}): it is for tests only ({path})"
            )
        for channel in line.channels:
            for field, kind in (("secret", "SECRET"), ("token", "TOKEN")):
                if getattr(channel, field) in DEMO_SECRETS:
                    env_name = f"OPENLINES_{kind}_" + channel.id.upper().replace("-", "_")
                    raise ProductionGuardError(
                        f"OPENLINES_ENV=production refuses the demo {field} of channel "
                        f"{channel.id!r} ({path}): set {env_name} or change the lines file"
                    )
            if channel.whatsapp is not None and channel.whatsapp.verify_token in DEMO_SECRETS:
                env_name = "OPENLINES_VERIFY_TOKEN_" + channel.id.upper().replace("-", "_")
                raise ProductionGuardError(
                    f"OPENLINES_ENV=production refuses the demo verify token of channel "
                    f"{channel.id!r} ({path}): set {env_name} or change the lines file"
                )
