"""Every service against a Kafka that wants SASL/PLAIN: ``iotml topics ensure``, the bridge
and the processor, each through the broker's SASL_PLAINTEXT listener with credentials from
the ``IOTML_KAFKA_*`` settings, and the password never in their output.

The broker is a second :class:`KafkaBroker` (module-scoped) whose SASL listener is the only
one the services are given; a wrong password is refused there, so the credentials are
really checked.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from bridge.settings import BridgeSettings
from iotml.core.eventtime import now_ms
from iotml.stack import KafkaBroker, MosquittoBroker
from iotml.stack.procs import free_port
from iotml.stack.settings import default_cache_dir
from models import Registry
from models.replay import run as batch_run
from tests.bridgetools import running, seqs
from tests.brokers.conftest import ProcessorProc
from tests.kafkatools import Record, consume_all
from tests.model_fixtures import train_tiny_artifact
from tests.mqtttools import publish
from tests.processortools import preds, wait_for, window_keys

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
USER = "iotml-svc"
PASSWORD = f"sasl-pw-{uuid.uuid4().hex}"
DEVICES = 4
SECONDS = 75  # 4 devices x 75 s at 1 Hz: 300 readings


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(
        data_dir=tmp_path_factory.mktemp("kafka-sasl"),
        port=free_port(),
        controller_port=free_port(),
        cache_dir=Path(os.environ.get("IOTML_CACHE_DIR", default_cache_dir())),
        heap="512m",
        sasl_users={USER: PASSWORD, "someone-else": "other-password"},
        sasl_port=free_port(),
    )
    broker.start(timeout=180)
    yield broker
    broker.stop()


def sasl_env(broker: KafkaBroker, password: str = PASSWORD) -> dict[str, str]:
    return {
        "IOTML_KAFKA_BOOTSTRAP": broker.sasl_bootstrap,
        "IOTML_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "IOTML_KAFKA_SASL_MECHANISM": "PLAIN",
        "IOTML_KAFKA_SASL_USERNAME": USER,
        "IOTML_KAFKA_SASL_PASSWORD": password,
    }


@pytest.fixture(scope="module")
def sasl_conf(sasl_kafka: KafkaBroker) -> dict[str, Any]:
    """Plain librdkafka settings for the test's own reads (no iotml code)."""
    return {
        "bootstrap.servers": sasl_kafka.sasl_bootstrap,
        "security.protocol": "sasl_plaintext",
        "sasl.mechanism": "PLAIN",
        "sasl.username": USER,
        "sasl.password": PASSWORD,
    }


@pytest.fixture(scope="module")
def topic_names() -> dict[str, str]:
    token = uuid.uuid4().hex[:8]
    return {
        f"IOTML_TOPIC_{role.upper()}": f"{role.replace('_', '-')}-sasl-{token}"
        for role in (
            "readings",
            "readings_dlq",
            "predictions",
            "alerts",
            "processor_dlq",
            "alert_state",
            "evaluations",
            "model_events",
        )
    }


def ensure(broker: KafkaBroker, topics: dict[str, str], password: str) -> tuple[int, str, float]:
    """``python -m iotml topics ensure`` with the credentials only in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTML_KAFKA_")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "iotml", "topics", "ensure"],
        env={**env, **sasl_env(broker, password), **topics},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def ensured(sasl_kafka: KafkaBroker, topic_names: dict[str, str]) -> tuple[int, str, float]:
    return ensure(sasl_kafka, topic_names, PASSWORD)


def test_topics_ensure_over_sasl_creates_the_topics_and_a_wrong_password_fails_fast(
    sasl_kafka: KafkaBroker,
    sasl_conf: dict[str, Any],
    topic_names: dict[str, str],
    ensured: tuple[int, str, float],
):
    code, out, _ = ensured
    assert code == 0, out
    for name in topic_names.values():
        assert f"{name} " in out and "created" in out
    md = AdminClient(sasl_conf).list_topics(timeout=10)
    assert set(topic_names.values()) <= set(md.topics)
    assert md.topics[topic_names["IOTML_TOPIC_READINGS"]].partitions.keys() == {0, 1, 2, 3}

    wrong = f"wrong-{uuid.uuid4().hex}"
    code, out, took = ensure(sasl_kafka, topic_names, wrong)
    assert code == 1, out
    assert "refused the credentials" in out and "Invalid username or password" in out, out
    assert took < 20, f"an authentication failure should not wait out the timeout ({took:.0f}s)"
    assert wrong not in out and PASSWORD not in out


@dataclass
class Bridged:
    records: list[Record]
    log: str
    start: int


@pytest.fixture(scope="module")
def bridged(
    sasl_kafka: KafkaBroker,
    sasl_conf: dict[str, Any],
    mosquitto_broker: MosquittoBroker,
    topic_names: dict[str, str],
    ensured: tuple[int, str, float],
) -> Bridged:
    """300 readings through the in-process bridge into Kafka over SASL; every log record
    (any logger, DEBUG and up) while it ran."""
    assert ensured[0] == 0, ensured[1]
    settings = BridgeSettings(
        kafka_bootstrap=sasl_kafka.sasl_bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        mqtt_url=mosquitto_broker.url,
        mqtt_client_id=f"bridge-sasl-{uuid.uuid4().hex[:8]}",
        topic_readings=topic_names["IOTML_TOPIC_READINGS"],
        topic_readings_dlq=topic_names["IOTML_TOPIC_READINGS_DLQ"],
        http_port=0,
    )
    start = (now_ms() - 600_000) // 10_000 * 10_000
    messages = [
        (
            f"sensors/site-0/dev-{d}/temperature",
            b'{"ts":%d,"temperature":%.2f,"seq":%d}'
            % (start + t * 1000, 20 + d + (t % 17) * 0.1, t * DEVICES + d),
        )
        for t in range(SECONDS)
        for d in range(DEVICES)
    ]
    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(  # type: ignore[method-assign]
        logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    )
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with running(settings):
            publish(mosquitto_broker.port, messages)
            records = consume_all(sasl_conf, settings.topic_readings, len(messages), timeout=60)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return Bridged(records, "\n".join(lines) + f"\n{settings!r}\n{settings}", start)


def test_bridge_delivers_readings_into_kafka_over_sasl(
    bridged: Bridged, sasl_conf: dict[str, Any], topic_names: dict[str, str]
):
    assert sorted(seqs(bridged.records)) == list(range(DEVICES * SECONDS))
    assert {r.key for r in bridged.records} == {f"dev-{d}".encode() for d in range(DEVICES)}
    dlq = consume_all(sasl_conf, topic_names["IOTML_TOPIC_READINGS_DLQ"], timeout=5, idle=0.3)
    assert dlq == []
    assert "bridge" in bridged.log  # the handler saw the bridge's own logs
    assert PASSWORD not in bridged.log


def test_processor_consumes_over_sasl_and_writes_predictions(
    sasl_kafka: KafkaBroker,
    sasl_conf: dict[str, Any],
    topic_names: dict[str, str],
    bridged: Bridged,
    tmp_path: Path,
):
    registry = tmp_path / "registry"
    train_tiny_artifact(registry, name="tiny", window="10s", horizon="20s", k=2)
    artifact = Registry(registry).load("tiny")
    points = [
        (r["device_id"], r["ts"], float(r["metrics"]["temperature"]))
        for r in sorted(
            (json.loads(rec.value or b"") for rec in bridged.records),
            key=lambda v: v["ts"],
        )
    ]
    expected = set(window_keys(batch_run(points, artifact).predictions))
    assert expected, "the readings should close some windows"

    proc = ProcessorProc(
        {
            **sasl_env(sasl_kafka),
            **topic_names,
            "IOTML_MODEL_REGISTRY": str(registry),
            "IOTML_MODEL_NAME": "tiny",
            "IOTML_CONSUMER_GROUP": f"proc-sasl-{uuid.uuid4().hex[:8]}",
            "IOTML_HTTP_PORT": "0",
            "IOTML_COMMIT_INTERVAL": "500ms",
            "IOTML_HEARTBEAT_INTERVAL": "1s",
            "IOTML_STATE_DIR": str(tmp_path / "state"),
            "IOTML_LOG_LEVEL": "DEBUG",
        },
        tmp_path / "processor.log",
    ).start()
    try:
        got = wait_for(
            sasl_conf,
            topic_names["IOTML_TOPIC_PREDICTIONS"],
            lambda r: set(window_keys(preds(r))) >= expected,
            timeout=60,
            proc=proc,
        )
        assert proc.stop() == 0, proc.text()
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()
    predictions = preds(got)
    assert set(window_keys(predictions)) >= expected
    assert {p.model_version for p in predictions} == {"v0001"}
    dlq = consume_all(sasl_conf, topic_names["IOTML_TOPIC_PROCESSOR_DLQ"], timeout=5, idle=0.3)
    assert dlq == []
    log = proc.text()
    assert "processing " in log and "processor stopped" in log
    assert PASSWORD not in log
