"""The model loop through the real Kafka: a fleet's dynamics change, the live skill drops,
``model_degraded`` opens, ``iotml retrain --on-drift`` trains a challenger on the data
after the change and promotes it, the processor hot-swaps it, the live skill recovers and
``model_degraded`` clears.

The readings and evaluations topics have one partition here so that the story is told in
exact event-time order (the whole history is produced at once, far faster than real time).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from iotml.core.evaluations import Evaluation
from iotml.core.fleet import Fault, SyntheticFleet, history
from iotml.core.model_events import ModelEvent
from iotml.core.records import Prediction, Reading
from models.features import FeatureSpec
from models.registry import Registry
from models.training import TrainConfig, train
from tests.brokers.conftest import REPO
from tests.childtools import stop_on_sigterm
from tests.kafkatools import Record, consume_all

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

DEVICES = 16
MIN = 60_000
HISTORY, BEFORE, AFTER, LATER = 30 * MIN, 4 * MIN, 25 * MIN, 4 * MIN
# history: what v0001 was trained on; before: in Kafka, old dynamics; after: the change;
# later: produced once the challenger is promoted.


def send(conf: dict[str, Any], topic: str, readings: list[Reading]) -> None:
    from confluent_kafka import Producer

    producer = Producer({**conf, "acks": "all", "linger.ms": 20})
    for r in readings:
        producer.produce(topic, r.to_json(), r.device_id.encode(), timestamp=r.ts)
        producer.poll(0)
    assert producer.flush(60) == 0


def skill(evaluations: list[Evaluation]) -> float:
    errors = sum(e.abs_error for e in evaluations)
    return 1 - errors / sum(e.persistence_abs_error for e in evaluations)


class RetrainProc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iotml", "retrain", *args],
                env={**os.environ, **env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, *needles: str, timeout: float) -> str:
        """The first of ``needles`` to appear in the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            found = [n for n in needles if n in text]
            if found:
                return found[0]
            assert self.proc.poll() is None, f"retrain exited:\n{text[-3000:]}"
            assert time.monotonic() < deadline, f"none of {needles}:\n{text[-3000:]}"
            time.sleep(0.3)

    def stop(self) -> int:
        return stop_on_sigterm(self.proc, 60, "retrain", lambda: self.text()[-3000:])


def wait_records(
    conf: dict[str, Any], topic: str, done: Callable[[list[Record]], bool], timeout: float, *procs
) -> list[Record]:
    deadline = time.monotonic() + timeout
    while True:
        records = consume_all(conf, topic, timeout=5, idle=0.3)
        if done(records):
            return records
        for p in procs:
            assert p.proc.poll() is None, f"{p.log.name} exited:\n{p.text()[-3000:]}"
        logs = "\n".join(p.text()[-2000:] for p in procs)
        assert time.monotonic() < deadline, f"timed out on {topic} ({len(records)})\n{logs}"
        time.sleep(0.5)


def events_of(records: list[Record]) -> list[ModelEvent]:
    return [ModelEvent.from_json(r.value or b"") for r in records]


@pytest.fixture
def retrainers() -> Iterator[Callable[..., RetrainProc]]:
    """Starts ``iotml retrain`` processes; kills any still running when the test ends."""
    started: list[RetrainProc] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> RetrainProc:
        started.append(RetrainProc(args, env, log))
        return started[-1]

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def test_drift_opens_a_retrain_promotes_a_challenger_and_the_skill_recovers(
    kafka_conf, one_partition_topics, topics, processors, retrainers, unique, tmp_path
):
    now = time.time_ns() // 1_000_000
    t0 = (now - HISTORY - BEFORE - AFTER - LATER - MIN) // 10_000 * 10_000
    change = t0 + HISTORY + BEFORE
    fleet = SyntheticFleet(
        DEVICES, step_ms=1000, start_ms=t0, faults=[Fault("*", "regime", change - t0)], seed=5
    )
    samples = list(history(fleet, (HISTORY + BEFORE + AFTER + LATER) // 1000, t0))
    readings = [Reading(s.device_id, s.ts, {"temperature": s.value}) for s in samples]
    old = [(s.device_id, s.ts, s.value) for s in samples if s.ts < t0 + HISTORY]
    streamed = [r for r in readings if t0 + HISTORY <= r.ts < change + AFTER]
    later = [r for r in readings if r.ts >= change + AFTER]

    registry = tmp_path / "registry"
    spec = FeatureSpec("temperature", window_ms=10_000, k=2, horizon_ms=20_000)
    config = TrainConfig(spec=spec, epochs=60, patience=10, hidden=(16,))
    train(old, config, Registry(registry), "fleet", "history", progress=lambda _: None)

    model_events = topics("model-events", 1)
    common = {"IOTML_KAFKA_BOOTSTRAP": kafka_conf["bootstrap.servers"], "IOTML_HTTP_PORT": "0"}
    retrainer = retrainers(
        [
            "--on-drift",
            f"--input=kafka://{one_partition_topics['topic_readings']}",
            f"--model-registry={registry}",
            "--model-name=fleet",
            f"--topic-evaluations={one_partition_topics['topic_evaluations']}",
            f"--topic-model-events={model_events}",
            "--holdout=2m",
            "--min-improvement=2%",
            "--drift-period=60s",
            "--drift-margin=0.15",
            "--drift-min-scored=50",
            "--epochs=60",
            "--patience=10",
        ],
        common,
        tmp_path / "retrain.log",
    )
    retrainer.wait_for("detecting drift", timeout=60)
    proc = processors(
        model_registry=registry,
        model_name="fleet",
        consumer_group=unique("g"),
        heartbeat_interval="0s",  # event time moves with the readings only
        **one_partition_topics,
    )
    send(kafka_conf, one_partition_topics["topic_readings"], streamed)

    opened = events_of(
        wait_records(kafka_conf, model_events, lambda r: len(r) >= 1, 90, retrainer, proc)
    )[0]
    outcome = retrainer.wait_for("fleet: PROMOTED", "fleet: not promoted", timeout=120)
    assert outcome == "fleet: PROMOTED", retrainer.text()[-3000:]
    deadline = time.monotonic() + 30
    while "swapped v0001 -> v0002" not in proc.text():
        assert time.monotonic() < deadline, proc.text()[-3000:]
        time.sleep(0.3)
    send(kafka_conf, one_partition_topics["topic_readings"], later)
    events = events_of(
        wait_records(kafka_conf, model_events, lambda r: len(r) >= 2, 90, retrainer, proc)
    )
    assert retrainer.stop() == 0
    assert proc.stop() == 0

    scored = [
        Evaluation.from_json(r.value or b"")
        for r in consume_all(kafka_conf, one_partition_topics["topic_evaluations"], timeout=10)
    ]
    before = [e for e in scored if e.model_version == "v0001" and e.target_ts < change]
    during = [e for e in scored if e.model_version == "v0001" and e.target_ts >= change]
    after = [e for e in scored if e.model_version == "v0002"]
    [decision] = Registry(registry).decisions("fleet")
    print(
        f"\nlive skill before the change {skill(before):.3f} (n={len(before)}), "
        f"after it {skill(during):.3f} (n={len(during)}), "
        f"after the promotion {skill(after):.3f} (n={len(after)})"
    )
    for e in events:
        print(f"{e.type} {e.event} {e.model_version}: {e.detail}")
    print(f"decision: {decision['reason']}")

    assert (opened.event, opened.model_version) == ("open", "v0001")
    assert opened.episode_start >= change
    assert [(e.event, e.model_version, e.event_id) for e in events] == [
        ("open", "v0001", opened.event_id),
        ("cleared", "v0002", opened.event_id),
    ]
    assert decision["promoted"] and decision["trigger"] == f"model_degraded {opened.event_id}"
    assert decision["challenger"]["version"] == "v0002"
    assert Registry(registry).latest("fleet") == "v0002"
    assert skill(during) < skill(before) and skill(during) < skill(after)

    predictions = consume_all(kafka_conf, one_partition_topics["topic_predictions"], timeout=10)
    versions = {Prediction.from_json(r.value or b"").model_version for r in predictions}
    assert versions == {"v0001", "v0002"}
