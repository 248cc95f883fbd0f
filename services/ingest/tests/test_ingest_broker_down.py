"""Without a broker ack, ingest answers 503 so that the provider retries; it recovers when the
broker comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from openlines.ingest.app import build_service
from openlines.kit.embedded import EmbeddedKafka
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.testing.service import running
from openlines.kit.topics import TopicNames

from .ingest_helpers import SECRET, ingest_settings, next_id, tg_message

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def test_broker_down_gives_503_then_recovers(lines_file: Path, tmp_path: Path) -> None:
    # A broker of its own, so that stopping it leaves the session's broker alone.
    kafka = EmbeddedKafka(log_path=tmp_path / "tansu.log")
    await asyncio.to_thread(kafka.start)
    try:
        settings = ingest_settings(kafka.bootstrap, lines_file, publish_timeout_seconds=1.0)
        url_path = "/webhooks/telegram/tg-test"
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with running(build_service(settings)) as url, aiohttp.ClientSession() as http:
            async with http.post(url + url_path, json=tg_message(next_id()), headers=headers) as r:
                assert r.status == 200, await r.text()

            await asyncio.to_thread(kafka.stop)

            async with asyncio.timeout(30):
                async with http.post(
                    url + url_path, json=tg_message(next_id()), headers=headers
                ) as r:
                    body = await r.json()
            assert r.status == 503, body
            assert body["error"]["code"] == "broker_unavailable"
            async with http.get(url + "/readyz") as r:
                assert r.status == 503
                assert (await r.json())["checks"] == {"broker": False}
            async with http.get(url + "/healthz") as r:
                assert r.status == 200  # alive: a restart would not bring the broker back

            # The broker returns (empty: Tansu keeps topics in memory), topics are recreated.
            kafka = EmbeddedKafka(port=kafka.port, log_path=tmp_path / "tansu2.log")
            await asyncio.to_thread(kafka.start)
            topics = TopicNames(settings.topic_namespace).all_event_topics()
            await ensure_topics(kafka.bootstrap, topics)
            async with asyncio.timeout(60):
                while True:
                    async with http.get(url + "/readyz") as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.2)
            # Readiness is a metadata round trip; the producer may still need one more try to
            # reconnect its partition leaders. Telegram retries a 503, so recovery is judged the
            # way the provider sees it: the same update is accepted within a bounded time.
            update = tg_message(next_id())
            statuses: list[int] = []
            async with asyncio.timeout(30):
                while not statuses or statuses[-1] != 200:
                    async with http.post(url + url_path, json=update, headers=headers) as r:
                        statuses.append(r.status)
                    await asyncio.sleep(0.2)
            assert set(statuses) <= {200, 503}, statuses
    finally:
        await asyncio.to_thread(kafka.stop)
