"""``iotml processor`` replicas and model versions as real processes against the real Kafka:
hot reload and rollback, refused versions, two replicas with one killed."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from models import Registry
from models.replay import run as batch_run
from tests.kafkatools import Record, consume_all
from tests.model_fixtures import train_tiny_artifact
from tests.processortools import now_ms, points, preds, send, synthetic, wait_for, window_keys

pytestmark = [pytest.mark.brokers, pytest.mark.slow]


def corrupt_copy(registry: Path, name: str, version: str) -> str:
    """A new version whose manifest is fine but whose model files are garbage."""
    import shutil

    reg = Registry(registry)
    src = reg.path(name, version)

    def build(tmp: Path) -> dict[str, Any]:
        for f in src.iterdir():
            if f.name != "manifest.json":
                shutil.copy(f, tmp / f.name)
        (tmp / "model.keras").write_bytes(b"not a keras file")
        (tmp / "dense.npz").write_bytes(b"not the weights either")
        manifest = json.loads((src / "manifest.json").read_text())
        return {k: v for k, v in manifest.items() if k not in ("version",)}

    return reg.publish(name, build)


def test_new_version_rollback_and_refused_versions_while_running(
    kafka_conf, pipeline_topics, processors, unique, tiny_registry, tmp_path
):
    devices = [f"dev-{i}" for i in range(4)]
    start = (now_ms() - 1_800_000) // 60_000 * 60_000
    reg = Registry(tiny_registry)
    proc = processors(
        model_registry=tiny_registry,
        model_name="tiny",
        consumer_group=unique("g"),
        heartbeat_interval="0s",
        **pipeline_topics,
    )
    topic = pipeline_topics["topic_predictions"]

    def phase(n: int, expect_version: str) -> None:
        # each phase is 60 s of event time; its windows close during the next phase
        send(
            kafka_conf,
            pipeline_topics["topic_readings"],
            synthetic(devices, start + n * 60_000, 60),
        )

        def has_version(records: list[Record]) -> bool:
            return any(
                p.model_version == expect_version and p.window_start >= start + n * 60_000
                for p in preds(records)
            )

        wait_for(kafka_conf, topic, has_version, 60, proc)

    phase(0, "v0001")
    phase(1, "v0001")
    v2 = train_tiny_artifact(tiny_registry, name="tiny", window="10s", horizon="20s", seed=7)
    time.sleep(3)
    phase(2, v2)
    reg.promote("tiny", "v0001")  # rollback
    time.sleep(3)
    phase(3, "v0001")
    broken = corrupt_copy(tiny_registry, "tiny", "v0001")
    other = train_tiny_artifact(tiny_registry, name="tiny", window="20s", horizon="40s")
    reg.promote("tiny", broken)
    time.sleep(3)
    reg.promote("tiny", other)
    time.sleep(3)
    phase(4, "v0001")
    phase(5, "v0001")
    assert proc.proc is not None and proc.proc.poll() is None
    assert proc.stop() == 0
    log = proc.text()
    assert f"{broken} refused: cannot be loaded" in log
    assert f"{other} refused: is incompatible" in log and "Restart the processor" in log
    versions = {p.model_version for p in preds(consume_all(kafka_conf, topic, timeout=5))}
    assert versions == {"v0001", v2}


# -- two replicas, kill -9 of one ---------------------------------------------------------


@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_two_replicas_survive_kill_9_of_one(
    kafka_conf, pipeline_topics, processors, unique, tiny_registry, guarantee
):
    import threading

    devices = [f"dev-{i}" for i in range(16)]
    start = (now_ms() - 3_600_000) // 10_000 * 10_000
    readings = synthetic(devices, start, 240)
    artifact = Registry(tiny_registry).load("tiny")
    expected = window_keys(batch_run(points(readings), artifact).predictions)
    settings = dict(
        model_registry=tiny_registry,
        model_name="tiny",
        consumer_group=unique("g"),
        processing_guarantee=guarantee,
        session_timeout="6s",
        transaction_timeout="10s",
        heartbeat_interval="0s",
        **pipeline_topics,
    )
    a = processors("a", **settings)
    b = processors("b", **settings)
    chunks = [readings[i : i + 320] for i in range(0, len(readings), 320)]

    def feed() -> None:  # ~12 s of input, so the kill lands mid-stream
        for chunk in chunks:
            send(kafka_conf, pipeline_topics["topic_readings"], chunk)
            time.sleep(12 / len(chunks))

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(6)
    assert a.stop(signal.SIGKILL) == -signal.SIGKILL
    feeder.join()
    got = wait_for(
        kafka_conf,
        pipeline_topics["topic_predictions"],
        lambda r: set(window_keys(preds(r))) >= set(expected),
        120,
        b,
    )
    time.sleep(2)
    got = consume_all(kafka_conf, pipeline_topics["topic_predictions"], timeout=10)
    assert b.stop() == 0
    counts = window_keys(preds(got))
    assert set(counts) == set(expected), "every window of every device is there"
    if guarantee == "exactly-once":
        assert max(counts.values()) == 1, "each window exactly once"
