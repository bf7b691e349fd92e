"""The Kafka side: an idempotent ``acks=all`` producer and a reachability probe."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from cityconf.errors import UserError

log = logging.getLogger(__name__)


class KafkaUnavailable(UserError):
    """Kafka did not answer, or lacks a topic the bridge writes to."""


def build_producer(bootstrap: str, conf: Mapping[str, Any], client_id: str) -> Producer:
    def on_error(err: Any) -> None:
        # librdkafka retries by itself; a broker outage shows up here, not as failed reports.
        log.warning("kafka: %s", err)

    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            **conf,
            "error_cb": on_error,
        }
    )


def probe(bootstrap: str, topics: Iterable[str], timeout: float = 5.0) -> None:
    """Raise KafkaUnavailable unless Kafka answers and has every topic in ``topics``."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000)})
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"Kafka at {bootstrap} is not answering ({exc.args[0].str()}); "
            "start the local stack with `make up`"
        ) from None
    missing = sorted(set(topics) - set(meta.topics))
    if missing:
        raise KafkaUnavailable(
            f"Kafka at {bootstrap} has no topic {', '.join(missing)}; "
            "`make up` creates the CityFleet topics"
        )
