"""openlines analytics: the reporting read model (per-dialog metrics, SLA, CSAT) and reports."""
