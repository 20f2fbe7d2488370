"""What the bridge benchmark needs around the bridge: its load (payloads, a preloaded
backlog, persistent sessions), Kafka offsets to time the drain, and the bridge processes."""

from __future__ import annotations

import multiprocessing as mp
import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

DEVICES = 1000
FILTER = "sensors/+/+/+"


def payload(i: int, ts: int) -> bytes:
    body = b'{"ts":%d,"temperature":%.3f,"load":%.2f,"rpm":%d,"seq":%d,"vibration":0.' % (
        ts,
        20 + (i % 500) / 10,
        (i % 100) / 100,
        1400 + i % 200,
        i,
    )
    return body + b"1" * (99 - len(body)) + b"}"


def topic_of(i: int) -> str:
    d = i % DEVICES
    return f"sensors/site-{d % 10}/dev-{d:04d}/temperature"


def _publisher(url_port: int, start: int, stop: int, client_id: str) -> None:
    import paho.mqtt.client as mqtt

    from iotml.core.eventtime import now_ms

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    acked = [0]
    c.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    c.connect("127.0.0.1", url_port)
    c.loop_start()
    ts = now_ms()
    for i in range(start, stop):
        c.publish(topic_of(i), payload(i, ts), qos=1)
        if i % 1000 == 0:
            ts = now_ms()
            while i - start - acked[0] > 20000:
                time.sleep(0.001)
    while acked[0] < stop - start:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()


def preload(port: int, n: int, procs: int = 2) -> float:
    t0 = time.monotonic()
    step = n // procs
    ps = [
        mp.Process(
            target=_publisher,
            args=(
                port,
                k * step,
                n if k == procs - 1 else (k + 1) * step,
                f"pre-{k}-{uuid.uuid4().hex[:6]}",
            ),
        )
        for k in range(procs)
    ]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return n / (time.monotonic() - t0)


def register_session(port: int, client_id: str, topic_filter: str, v5: bool = True) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    done = []
    if v5:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.on_subscribe = lambda *a: done.append(1)
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
    else:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.on_subscribe = lambda *a: done.append(1)
        c.connect("127.0.0.1", port)
    c.subscribe(topic_filter, qos=1)
    deadline = time.monotonic() + 10
    while not done and time.monotonic() < deadline:
        c.loop(0.05)
    c.disconnect()
    c.loop(0.1)


def total_offsets(conf: dict, topic: str) -> int:
    consumer = Consumer({**conf, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        md = consumer.list_topics(topic, timeout=10)
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in md.topics[topic].partitions
        )
    finally:
        consumer.close()


def wait_drain(
    conf: dict, topic: str, n: int, dlq: str | None = None, timeout: float = 300
) -> tuple[float, int]:
    """(rate msg/s from the first record to the n-th, records seen)."""
    deadline = time.monotonic() + timeout
    t_first = None
    base = 0
    count = 0
    while time.monotonic() < deadline:
        if dlq and total_offsets(conf, dlq):
            raise SystemExit(f"dead letters in {dlq}: the benchmark payload is rejected")
        count = total_offsets(conf, topic)
        now = time.monotonic()
        if t_first is None and count > 0:
            t_first, base = now, count
        if count >= n:
            assert t_first is not None
            return (count - base) / max(now - t_first, 1e-6), count
        time.sleep(0.1)
    return 0.0, count


def make_topic(conf: dict, name: str, partitions: int = 4) -> str:
    admin = AdminClient(conf)
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(30)
    return name


def bridge_cmd(
    kafka: str,
    mqtt_url: str,
    client_id: str,
    topic: str,
    dlq: str,
    group: str | None,
    in_flight: int,
) -> list[str]:
    cmd = [
        sys.executable, "-m", "iotml", "bridge",
        "--kafka-bootstrap", kafka, "--mqtt-url", mqtt_url,
        "--mqtt-client-id", client_id, "--topic-readings", topic, "--topic-readings-dlq", dlq,
        "--max-in-flight", str(in_flight), "--http-port", "0", "--log-level", "WARNING",
    ]  # fmt: skip
    if group:
        cmd += ["--mqtt-share-group", group]
    return cmd


def stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
