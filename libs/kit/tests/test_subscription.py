"""Handlers registered by event type: what a subscription accepts comes from the registry."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from openlines.events.catalog import DialogClosed, DialogRenamed
from openlines.events.envelope import Envelope
from openlines.kit.subscription import NotRegistered, Subscription

from .helpers import renamed


def _env(payload: Any) -> Envelope[Any]:
    return Envelope.new(payload, stream_id="s", stream_version=1, producer="test")


def _closed() -> DialogClosed:
    return DialogClosed.model_validate(
        {"dialog_id": str(uuid.uuid4()), "reason": "operator", "line_id": "l"}
    )


async def test_handlers_are_found_by_type_and_get_the_batchs_connection() -> None:
    seen: list[tuple[str, Any]] = []
    sub = Subscription("s", topics=["t"])

    @sub.on(DialogRenamed)
    async def on_renamed(conn: Any, env: Envelope[DialogRenamed]) -> None:
        seen.append(("renamed", conn))

    assert sub.event_types == (DialogRenamed,)
    assert sub.accepts(_env(renamed(1)))
    assert not sub.accepts(_env(_closed()))  # not registered: skipped without a transaction
    await sub.dispatch("conn", _env(renamed(1)))  # type: ignore[arg-type]
    assert seen == [("renamed", "conn")]
    with pytest.raises(NotRegistered):
        await sub.dispatch("conn", _env(_closed()))  # type: ignore[arg-type]


async def test_a_condition_narrows_what_a_type_registers() -> None:
    sub = Subscription("s", topics=["t"])
    sub.on(DialogRenamed, when=lambda e: e.title.endswith("2"))(_noop)
    assert sub.accepts(_env(renamed(2)))
    assert not sub.accepts(_env(renamed(3)))


async def test_a_catch_all_takes_every_type_and_a_type_registers_once() -> None:
    sub = Subscription("s", topics=["t"])
    sub.on_any(_noop)
    assert sub.takes_everything and sub.accepts(_env(_closed()))
    sub.on(DialogRenamed)(_noop)
    with pytest.raises(ValueError):
        sub.on(DialogRenamed)(_noop)
    with pytest.raises(ValueError):
        sub.on_any(_noop)


async def _noop(unit: Any, env: Envelope[Any]) -> None:
    return None


def test_a_runtime_declares_each_subscription_as_a_batch_subscriber_of_its_broker() -> None:
    from faststream import AckPolicy
    from faststream.kafka.subscriber.usecase import BatchSubscriber

    from openlines.events.topics import DIALOGS
    from openlines.kit.runtime import ServiceRuntime
    from openlines.kit.settings import KitSettings

    settings = KitSettings(service_name="svc", topic_namespace="ns.", consumer_fetch_max_wait_ms=7)
    runtime = ServiceRuntime(settings, uses_database=False)
    sub = Subscription("svc.dialogs", topics=[DIALOGS], batch_size=9)
    sub.on(DialogRenamed)(_noop)
    runtime.subscribe(sub)  # declared without a broker to connect to

    [subscriber] = runtime.broker.subscribers
    assert isinstance(subscriber, BatchSubscriber)
    assert subscriber.topic_names == ["ns." + DIALOGS]
    assert subscriber.group_id == "ns.svc.dialogs"  # the namespace keeps suites' groups apart
    assert subscriber.ack_policy is AckPolicy.MANUAL  # offsets only after the transaction
    assert subscriber.max_records == 9
    assert subscriber._connection_args["max_poll_records"] == 9
    assert subscriber._connection_args["fetch_max_wait_ms"] == 7
    assert subscriber._connection_args["auto_offset_reset"] == "earliest"
    assert subscriber._connection_args["enable_auto_commit"] is False
    assert "consumer:svc.dialogs" in runtime.health.ready
