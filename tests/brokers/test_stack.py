"""The local stack's brokers are real and durable."""

from __future__ import annotations

import subprocess
import sys
import time

from iotml.core.topics import TopicsSettings, ensure_topics, topic_specs
from iotml.stack import KafkaBroker, MosquittoBroker
from iotml.stack.procs import free_port
from tests.kafkatools import consume_all, end_offsets, produce
from tests.mqtttools import publish


def test_kafka_round_trip(kafka_conf, topics):
    topic = topics("roundtrip", partitions=2)
    produce(kafka_conf, topic, [(f"k{i}", f"v{i}") for i in range(100)])
    got = consume_all(kafka_conf, topic, min_count=100)
    assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(100))


def test_records_survive_a_kafka_restart(kafka_broker: KafkaBroker, kafka_conf, topics):
    topic = topics("durable", partitions=3)
    produce(kafka_conf, topic, [(f"k{i}", f"v{i}") for i in range(500)])
    kafka_broker.restart()
    got = consume_all(kafka_conf, topic, min_count=500)
    assert len(got) == 500
    assert {r.value for r in got} == {f"v{i}".encode() for i in range(500)}


def test_topics_ensure_creates_spec_and_is_idempotent(kafka_conf, unique):
    settings = TopicsSettings(
        kafka_bootstrap=kafka_conf["bootstrap.servers"],
        topic_readings=unique("readings"),
        topic_readings_dlq=unique("readings-dlq"),
        topic_predictions=unique("predictions"),
        topic_alerts=unique("alerts"),
        topic_processor_dlq=unique("processor-dlq"),
        topic_alert_state=unique("alert-state"),
        topic_evaluations=unique("evaluations"),
        topic_model_events=unique("model-events"),
    )
    specs = topic_specs(settings)
    first = ensure_topics(kafka_conf, specs)
    assert sorted(first.created) == sorted(s.name for s in specs)
    second = ensure_topics(kafka_conf, specs)
    assert second.created == [] and sorted(second.existing) == sorted(s.name for s in specs)
    assert len(end_offsets(kafka_conf, settings.topic_readings)) == 4


def test_mosquitto_round_trip_and_persistent_session_survives_restart(
    own_mosquitto: MosquittoBroker,
):
    import paho.mqtt.client as mqtt

    received: list[bytes] = []
    sub = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id="persist-test",
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    sub.on_message = lambda c, u, m: received.append(m.payload)
    sub.connect("127.0.0.1", own_mosquitto.port)
    sub.subscribe("t/#", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    sub.disconnect()
    sub.loop_stop()

    # above Mosquitto's default queue of 1000
    publish(own_mosquitto.port, [("t/x", str(i).encode()) for i in range(3000)])
    own_mosquitto.restart()

    sub.connect("127.0.0.1", own_mosquitto.port)
    sub.loop_start()
    deadline = time.monotonic() + 20
    while len(received) < 3000 and time.monotonic() < deadline:
        time.sleep(0.1)
    sub.disconnect()
    sub.loop_stop()
    assert len(set(received)) == 3000


def test_stack_cli_up_status_down_leaves_no_process(tmp_path, kafka_broker):
    args = [
        "--stack-dir",
        str(tmp_path / "stack"),
        "--cache-dir",
        str(kafka_broker.cache_dir),
        "--kafka-port",
        str(free_port()),
        "--kafka-controller-port",
        str(free_port()),
        "--mqtt-port",
        str(free_port()),
    ]
    iotml = [sys.executable, "-m", "iotml", "stack"]
    up = subprocess.run([*iotml, "up", *args], capture_output=True, text=True, timeout=240)
    assert up.returncode == 0, up.stderr
    assert "IOTML_KAFKA_BOOTSTRAP=localhost:" in up.stdout
    again = subprocess.run([*iotml, "up", *args], capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and "already running" in again.stderr
    status = subprocess.run([*iotml, "status", *args], capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.count("running") == 2
    kafka = KafkaBroker(data_dir=tmp_path / "stack" / "kafka")
    mqtt = MosquittoBroker(data_dir=tmp_path / "stack" / "mosquitto")
    pids = [kafka.pid(), mqtt.pid()]
    down = subprocess.run([*iotml, "down", *args], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "kafka: stopped" in down.stdout
    from iotml.stack.procs import pid_alive

    assert all(p is not None and not pid_alive(p) for p in pids)
    status = subprocess.run([*iotml, "status", *args], capture_output=True, text=True)
    assert status.returncode == 3
