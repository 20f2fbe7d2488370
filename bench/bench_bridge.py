"""QoS 1 throughput of `iotml bridge` into Kafka, with quixstreams' MQTTSource for scale.

Starts its own Kafka and Mosquitto on free ports in a temporary directory, then:

1. backlog drain: registers the bridges' persistent sessions (MQTT 5, clean start off,
   shared subscription when there are several bridges), disconnects them, preloads N
   QoS 1 messages (100-byte JSON payloads, 1,000 devices) into the broker, starts the
   bridge process(es) and times the drain into Kafka (acks after Kafka delivery);
2. live: bridges running while `iotml simulate` publishes as fast as it can;
3. quixstreams' MQTTSource draining the same backlog (its client patched to keep a
   persistent session, which it does not by default; it acks before Kafka has the message).

    python bench/bench_bridge.py [--messages 300000] [--bridges 1,2] [--in-flight 10000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bridge_kit import (
    DEVICES,
    FILTER,
    bridge_cmd,
    make_topic,
    payload,
    preload,
    register_session,
    stop_all,
    total_offsets,
    wait_drain,
)

from iotml.stack import KafkaBroker, MosquittoBroker
from iotml.stack.procs import free_port
from iotml.stack.settings import default_cache_dir


def bench_bridge_drain(
    kafka: KafkaBroker, mosq: MosquittoBroker, n: int, bridges: int, in_flight: int
) -> float:
    conf = {"bootstrap.servers": kafka.bootstrap}
    run = uuid.uuid4().hex[:6]
    topic = make_topic(conf, f"bench-readings-{run}")
    dlq = make_topic(conf, f"bench-dlq-{run}", 1)
    group = f"g{run}" if bridges > 1 else None
    ids = [f"bench-bridge-{run}-{i}" for i in range(bridges)]
    for cid in ids:
        register_session(mosq.port, cid, f"$share/{group}/{FILTER}" if group else FILTER)
    pre = preload(mosq.port, n)
    print(f"  preloaded {n:,} messages at {pre:,.0f} msg/s", flush=True)
    procs = [
        subprocess.Popen(bridge_cmd(kafka.bootstrap, mosq.url, cid, topic, dlq, group, in_flight))
        for cid in ids
    ]
    try:
        rate, count = wait_drain(conf, topic, n, dlq)
    finally:
        stop_all(procs)
    dead = total_offsets(conf, dlq)
    print(
        f"  bridge x{bridges}, in-flight cap {in_flight:,}: drained {count:,} records "
        f"({dead} dead letters) at {rate:,.0f} msg/s",
        flush=True,
    )
    return rate


def bench_live(
    kafka: KafkaBroker,
    mosq: MosquittoBroker,
    bridges: int,
    in_flight: int,
    seconds: int,
    publishers: int,
) -> float:
    conf = {"bootstrap.servers": kafka.bootstrap}
    run = uuid.uuid4().hex[:6]
    topic = make_topic(conf, f"bench-live-{run}")
    dlq = make_topic(conf, f"bench-live-dlq-{run}", 1)
    group = f"g{run}" if bridges > 1 else None
    procs = [
        subprocess.Popen(
            bridge_cmd(kafka.bootstrap, mosq.url, f"live-{run}-{i}", topic, dlq, group, in_flight)
        )
        for i in range(bridges)
    ]
    try:
        time.sleep(3)
        sims = [
            subprocess.Popen(
                [
                    sys.executable, "-m", "iotml", "simulate", "--mqtt-url", mosq.url,
                    "--sim-devices", str(DEVICES // publishers), "--sim-device-prefix", f"p{k}",
                    "--sim-as-fast-as-possible", "--sim-duration", f"{seconds}s",
                    "--sim-progress", "0", "--sim-client-id", f"sim-{run}-{k}",
                ],
                stdout=subprocess.PIPE, text=True,
            )
            for k in range(publishers)
        ]  # fmt: skip
        time.sleep(2)
        c0, t0 = total_offsets(conf, topic), time.monotonic()
        outs = [sim.communicate(timeout=seconds + 60)[0] for sim in sims]
        c1, t1 = total_offsets(conf, topic), time.monotonic()
        rate = (c1 - c0) / (t1 - t0)
        for out in outs:
            print(f"  simulate: {out.strip()}")
        print(
            f"  live, bridge x{bridges}, {publishers} simulate process(es) publishing: "
            f"{rate:,.0f} msg/s into Kafka"
        )
        return rate
    finally:
        stop_all(procs)


try:
    import paho.mqtt.client as _paho
    from quixstreams.sources.community.mqtt import MQTTSource as _MQTTSource
except ImportError:  # quixstreams is in the processor extra
    _MQTTSource = None

if _MQTTSource is not None:

    class PersistentMQTTSource(_MQTTSource):  # type: ignore[misc,valid-type]
        """MQTTSource, whose client otherwise connects with a clean session, keeping its
        persistent session so that it can drain a backlog; everything else unchanged."""

        def setup(self) -> None:
            self._client = _paho.Client(
                callback_api_version=_paho.CallbackAPIVersion.VERSION2,
                client_id=self._client_id,
                protocol=self._protocol,
                clean_session=False,
            )
            self._client.on_message = self._mqtt_on_message
            self._client.connect(self._server, self._port)
            self._client.subscribe(self._topic, qos=self._qos)
            self._client.loop_start()


def _quix_worker(kafka: str, port: int, topic: str, client_id: str, state_dir: str) -> None:
    from quixstreams import Application

    app = Application(
        broker_address=kafka,
        consumer_group=f"q-{client_id}",
        auto_create_topics=False,
        state_dir=state_dir,
    )
    source = PersistentMQTTSource(
        topic=FILTER,
        client_id=client_id,
        server="127.0.0.1",
        port=port,
        tls_enabled=False,
        version="3.1.1",
    )
    app.add_source(source, topic=app.topic(topic, value_serializer="bytes", key_serializer="str"))
    app.run()


def bench_quix(kafka: KafkaBroker, mosq: MosquittoBroker, n: int, tmp: str) -> float:
    conf = {"bootstrap.servers": kafka.bootstrap}
    run = uuid.uuid4().hex[:6]
    topic = make_topic(conf, f"bench-quix-{run}")
    cid = f"quix-{run}"
    register_session(mosq.port, cid, FILTER, v5=False)
    preload(mosq.port, n)
    proc = mp.Process(
        target=_quix_worker, args=(kafka.bootstrap, mosq.port, topic, cid, f"{tmp}/quix-state")
    )
    proc.start()
    try:
        rate, count = wait_drain(conf, topic, n)
    finally:
        proc.terminate()
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    print(
        f"  quixstreams MQTTSource: drained {count:,} records at {rate:,.0f} msg/s (acks before Kafka)"
    )
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--bridges", default="1,2", help="comma-separated bridge process counts")
    ap.add_argument("--in-flight", type=int, default=10_000)
    ap.add_argument("--live-seconds", type=int, default=20)
    ap.add_argument("--live-publishers", type=int, default=2)
    ap.add_argument("--skip-quix", action="store_true")
    ap.add_argument("--skip-live", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="iotml-bench-") as tmp:
        kafka = KafkaBroker(
            data_dir=Path(tmp) / "kafka",
            port=free_port(),
            controller_port=free_port(),
            cache_dir=Path(os.environ.get("IOTML_CACHE_DIR", default_cache_dir())),
            heap="1g",
        )
        mosq = MosquittoBroker(data_dir=Path(tmp) / "mosquitto", port=free_port())
        kafka.start(timeout=180)
        mosq.start()
        try:
            print(
                f"cores: {os.cpu_count()}; payload {len(payload(1, 1700000000000))} bytes; {DEVICES} devices; QoS 1"
            )
            results = {}
            for b in [int(x) for x in args.bridges.split(",")]:
                print(f"backlog drain, {b} bridge process(es):", flush=True)
                results[f"bridge x{b}"] = bench_bridge_drain(
                    kafka, mosq, args.messages, b, args.in_flight
                )
            if not args.skip_live:
                best = max(
                    (int(x) for x in args.bridges.split(",")), key=lambda b: results[f"bridge x{b}"]
                )
                print("live:", flush=True)
                bench_live(
                    kafka, mosq, best, args.in_flight, args.live_seconds, args.live_publishers
                )
            if not args.skip_quix:
                print("quixstreams MQTTSource, same backlog:", flush=True)
                results["MQTTSource"] = bench_quix(kafka, mosq, args.messages, tmp)
            print("summary (QoS 1 backlog drain into Kafka, msg/s):")
            for name, rate in results.items():
                print(f"  {name:<14} {rate:>10,.0f}")
        finally:
            mosq.stop()
            kafka.stop()


if __name__ == "__main__":
    main()
