"""Real Kafka (Tansu) and PostgreSQL started as local processes, for tests and `openlines up`."""

from openlines.kit.embedded.ports import release_ports, reserve_port, reserve_port_block
from openlines.kit.embedded.postgres import (
    EmbeddedPostgres,
    create_database,
    drop_database,
    stop_data_dir,
    with_database,
)
from openlines.kit.embedded.processes import StartupError, free_port
from openlines.kit.embedded.tansu import EmbeddedKafka, kafka_answers

__all__ = [
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "StartupError",
    "create_database",
    "drop_database",
    "free_port",
    "kafka_answers",
    "release_ports",
    "reserve_port",
    "reserve_port_block",
    "stop_data_dir",
    "with_database",
]
