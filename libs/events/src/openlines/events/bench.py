"""Codec throughput: ``python -m openlines.events.bench [N]``.

Measures a small inbound ``MessageReceived`` (the hot path of ingest and replay) on one core.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from openlines.events.catalog import ChannelType, Customer, MessageReceived
from openlines.events.codec import decode, encode, from_json_dict, to_json_dict
from openlines.events.envelope import Envelope, deterministic_event_id
from openlines.events.topics import INBOUND

__all__ = ["codec_rates", "sample_envelope"]


def sample_envelope() -> Envelope[MessageReceived]:
    payload = MessageReceived(
        channel_id="tg-sales",
        channel_type=ChannelType.TELEGRAM,
        conversation_key="tg-sales:100200300",
        external_chat_id="100200300",
        external_user_id="100200300",
        external_message_id="4711",
        customer=Customer(name="Ann Smith", external_id="100200300", username="ann"),
        text="Hello! Is the blue one still available?",
        sent_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
    )
    return Envelope.new(
        payload,
        stream_id=payload.conversation_key,
        stream_version=0,
        producer="ingest",
        event_id=deterministic_event_id("tg-sales", "4711"),
    )


def _rate(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(n, 1000)):  # warm caches
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def codec_rates(n: int = 100_000) -> dict[str, float]:
    """Operations per second for encode and each decode path."""
    env = sample_envelope()
    record = encode(env, traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    stored = to_json_dict(env)
    return {
        "encode": _rate(lambda: encode(env), n),
        "decode (headers, fast path)": _rate(
            lambda: decode(record.value, record.headers, topic=INBOUND), n
        ),
        "decode (no headers)": _rate(lambda: decode(record.value, topic=INBOUND), n),
        "from_json_dict": _rate(lambda: from_json_dict(stored, topic=INBOUND), n),
        "record bytes": float(len(record.value)),
    }


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 100_000
    for name, value in codec_rates(n).items():
        print(f"{name:30} {value:>12,.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
