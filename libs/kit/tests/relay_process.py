"""A relay as its own process, for the SIGKILL test: python relay_process.py URL SCHEMA BOOTSTRAP"""

from __future__ import annotations

import asyncio
import sys

from openlines.kit.db.engine import create_engine, libpq_dsn
from openlines.kit.kafka.producer import create_producer
from openlines.kit.relay import OutboxRelay


async def main(url: str, schema: str, bootstrap: str) -> None:
    engine = create_engine(url, schema)
    producer = create_producer(bootstrap, client_id="relay-proc")
    await producer.start()
    # Small batches so that a kill lands between a publish and its delete.
    relay = OutboxRelay(engine, producer, schema=schema, dsn=libpq_dsn(url), batch_size=50)
    await relay.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
