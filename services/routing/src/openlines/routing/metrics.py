"""Routing's own Prometheus metrics (served with the kit's at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

ASSIGN_COMMANDS = Counter(
    "openlines_routing_assign_commands_total",
    "AssignDialog commands sent (capacity reserved)",
    ["line", "strategy"],
)
QUEUED = Counter(
    "openlines_routing_queued_total", "Dialogs put in a waiting queue", ["line", "reason"]
)
RESERVATIONS_EXPIRED = Counter(
    "openlines_routing_reservations_expired_total",
    "Reservations not confirmed by DialogAssigned in time (dialog re-queued)",
    ["line"],
)
