"""One real Kafka and one real Mosquitto per test session, on free ports.

Each test gets unique topic names and consumer groups from ``unique``/``topics``.
Tests that stop or restart a broker ask for ``own_mosquitto`` (a broker of their own);
restarting the shared Kafka is allowed (``kafka_broker.restart()``): it keeps its data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from iotml.stack import KafkaBroker, MosquittoBroker
from iotml.stack.procs import free_port
from iotml.stack.settings import default_cache_dir
from tests.kafkatools import create_topics

pytestmark = pytest.mark.brokers


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(
        data_dir=tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
        cache_dir=Path(os.environ.get("IOTML_CACHE_DIR", default_cache_dir())),
        heap="768m",
    )
    broker.start(timeout=180)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    broker = MosquittoBroker(data_dir=tmp_path_factory.mktemp("mosquitto"), port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A Mosquitto for this test alone, so it may stop and restart it."""
    broker = MosquittoBroker(data_dir=tmp_path / "mosquitto", port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_conf(kafka_broker: KafkaBroker) -> dict[str, Any]:
    return {"bootstrap.servers": kafka_broker.bootstrap}


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique("readings")`` -> a name no other test uses (topic, group, client id)."""
    token = uuid.uuid4().hex[:8]
    base = request.node.name.replace("[", "-").replace("]", "")[:40]
    return lambda name: f"{name}-{base}-{token}"


@pytest.fixture
def topics(kafka_conf: dict[str, Any], unique: Callable[[str], str]) -> Callable[..., str]:
    """``topics("readings", partitions=4)`` creates a unique topic and returns its name."""

    def make(name: str, partitions: int = 1, **config: str) -> str:
        topic = unique(name)
        create_topics(kafka_conf, [topic], partitions, config or {"retention.ms": "-1"})
        return topic

    return make
