"""One real Kafka and one real Mosquitto per test session, on free ports.

Each test gets unique topic names and consumer groups from ``unique``/``topics``.
Tests that stop or restart a broker ask for ``own_mosquitto`` (a broker of their own);
restarting the shared Kafka is allowed (``kafka_broker.restart()``): it keeps its data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import BridgeSettings
from iotml.stack import KafkaBroker, MosquittoBroker
from iotml.stack.procs import free_port
from iotml.stack.settings import default_cache_dir
from tests.kafkatools import create_topics
from tests.model_fixtures import train_tiny_artifact

REPO = Path(__file__).resolve().parents[2]

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


# -- processors as real child processes ------------------------------------------------


class ProcessorProc:
    """``iotml processor`` in a child process with settings from the environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcessorProc:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iotml", "processor"],
                env={**os.environ, **self.env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            log = self.text()
            raise AssertionError(f"processor did not stop on {sig}; log:\n{log}") from None

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def processors(
    kafka_conf: dict[str, Any], unique: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., ProcessorProc]]:
    started: list[ProcessorProc] = []

    def make(name: str = "p", **settings: Any) -> ProcessorProc:
        env = {
            "IOTML_KAFKA_BOOTSTRAP": kafka_conf["bootstrap.servers"],
            "IOTML_HTTP_PORT": "0",
            "IOTML_COMMIT_INTERVAL": "500ms",
            "IOTML_RELOAD_INTERVAL": "1s",
            "IOTML_HEARTBEAT_INTERVAL": "1s",
            "IOTML_STATE_DIR": str(tmp_path / f"state-{name}"),
        }
        env.update({f"IOTML_{k.upper()}": str(v) for k, v in settings.items()})
        proc = ProcessorProc(env, tmp_path / f"{name}.log").start()
        started.append(proc)
        return proc

    yield make
    for p in started:
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def _pipeline_topics(topics: Callable[..., str], partitions: int) -> dict[str, str]:
    return {
        "topic_readings": topics("readings", partitions),
        "topic_predictions": topics("predictions", partitions),
        "topic_alerts": topics("alerts", partitions),
        "topic_processor_dlq": topics("processor-dlq", 1),
        "topic_alert_state": topics("alert-state", partitions),
        "topic_evaluations": topics("evaluations", partitions),
    }


@pytest.fixture
def pipeline_topics(topics: Callable[..., str]) -> dict[str, str]:
    return _pipeline_topics(topics, 4)


@pytest.fixture
def one_partition_topics(topics: Callable[..., str]) -> dict[str, str]:
    """The processor's topics with one partition each: every record shares one clock."""
    return _pipeline_topics(topics, 1)


@pytest.fixture
def tiny_registry(tmp_path: Path) -> Path:
    reg = tmp_path / "registry"
    train_tiny_artifact(reg, name="tiny", window="10s", horizon="20s", k=2, metric="temperature")
    return reg


# -- the bridge under test ------------------------------------------------------------


@pytest.fixture
def make_settings(
    kafka_broker: KafkaBroker,
    mosquitto_broker: MosquittoBroker,
    topics: Callable[..., str],
    unique: Callable[[str], str],
) -> Callable[..., BridgeSettings]:
    readings_topic = topics("readings", partitions=4)
    dlq_topic = topics("readings-dlq")

    def make(**overrides: Any) -> BridgeSettings:
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka_broker.bootstrap,
            "mqtt_url": mosquitto_broker.url,
            "mqtt_client_id": unique("bridge"),
            "topic_readings": readings_topic,
            "topic_readings_dlq": dlq_topic,
            "http_port": 0,
            "mqtt_reconnect_max": 2000,
        }
        values.update(overrides)
        return BridgeSettings(**values)

    return make
