"""The event topics the local stack creates: every catalog topic plus its DLQ twin."""

from __future__ import annotations

from openlines.events.topics import TOPICS, dlq_topic
from openlines.kit.kafka.admin import TopicSpec

PARTITIONS = 3


def stack_topics() -> list[TopicSpec]:
    names = [n for name in TOPICS for n in (name, dlq_topic(name))]
    return [TopicSpec(name, PARTITIONS) for name in names]
