"""ingest: provider webhooks in, normalised inbound events out (stateless)."""
