"""analytics settings (env prefix OPENLINES_)."""

from __future__ import annotations

from pydantic import Field

from openlines.kit.settings import KitSettings


class AnalyticsSettings(KitSettings):
    service_name: str = "analytics"
    http_port: int = 8107
    # Rows per chunk of the CSV export (one server-side cursor fetch, one write to the client).
    csv_chunk_rows: int = Field(default=500, ge=1)
