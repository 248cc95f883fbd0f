"""The same-run baseline for ingest: a bare aiohttp handler that awaits one aiokafka send.

python -m openlines.bench.raw_ingest PORT BOOTSTRAP TOPIC
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from aiokafka import AIOKafkaProducer

from openlines.kit import eventloop


async def main(port: int, bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        await producer.send_and_wait(topic, body, key=request.match_info["channel_id"].encode())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/webhooks/telegram/{channel_id}", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    # The same event loop as the services: the ratio then measures what ingest adds.
    eventloop.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
