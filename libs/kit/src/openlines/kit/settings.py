"""Service settings from the environment (prefix OPENLINES_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# At least 32 bytes: shorter HMAC keys are below what RFC 7518 asks for HS256.
DEV_JWT_SECRET = "openlines-dev-secret-change-me-in-production"


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
    http_body_limit: int = 1 << 20

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

    @property
    def schema_name(self) -> str:
        return self.db_schema or self.service_name.replace("-", "_")
