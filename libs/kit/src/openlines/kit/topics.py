"""Logical topic names (openlines.dialogs.v1) mapped to physical ones on the broker.

A namespace prefix lets several suites share one broker (tests, staging tenants) without
reading each other's records. The codec always sees logical names.
"""

from __future__ import annotations

from dataclasses import dataclass

from openlines.events.topics import TOPICS, dlq_topic


@dataclass(frozen=True)
class TopicNames:
    namespace: str = ""

    def physical(self, logical: str) -> str:
        return f"{self.namespace}{logical}"

    def logical(self, physical: str) -> str:
        if self.namespace and physical.startswith(self.namespace):
            return physical[len(self.namespace) :]
        return physical

    def all_event_topics(self) -> list[str]:
        """Every catalog topic and its DLQ twin, physical names."""
        return [self.physical(t) for name in TOPICS for t in (name, dlq_topic(name))]
