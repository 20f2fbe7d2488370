"""What the processor benchmarks share: a real Kafka, the topics, a trained model, the
processor's settings, a load, and reading a child's ``/metrics`` and CPU time."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from bench/: import the checkout's packages
    sys.path.insert(0, str(REPO))
WINDOW = "10s"
GUARANTEE = "at-least-once"
COMMIT = "1s"


def read_metrics(port: int, timeout: float = 2.0) -> dict[str, float]:
    """The child's /metrics: each series (``name{labels}``) and each name summed over labels
    (empty when the child does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name = series.split("{", 1)[0]
        out[name] = out.get(name, 0.0) + float(value)
        if series != name:
            out[series] = float(value)
    return out


def scrape(port: int) -> float:
    """Records consumed by the child on ``port`` (0 until its endpoint answers)."""
    return read_metrics(port).get("iotml_processor_records_in_total", 0.0)


SCORED = "iotml_processor_forecasts_scored_total"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env(env: dict[str, str], group: str, port: int, state_dir: Path) -> dict[str, str]:
    """The environment of one processor child: ``env`` in its own consumer group, with its
    /metrics on ``port`` of localhost and its state under ``state_dir``."""
    return {
        **os.environ,
        **env,
        "IOTML_CONSUMER_GROUP": group,
        "IOTML_HTTP_PORT": str(port),
        "IOTML_HTTP_HOST": "127.0.0.1",
        "IOTML_STATE_DIR": str(state_dir),
    }


def start_kafka(work: Path) -> Any:
    """A fresh single-node Kafka 4 on free ports, its data under ``work`` (caller stops it)."""
    from iotml.stack import KafkaBroker
    from iotml.stack.procs import free_port
    from iotml.stack.settings import default_cache_dir

    broker = KafkaBroker(
        data_dir=work / "kafka",
        port=free_port(),
        controller_port=free_port(),
        cache_dir=Path(os.environ.get("IOTML_CACHE_DIR", default_cache_dir())),
        heap="768m",
    )
    print("starting Kafka ...", flush=True)
    broker.start(timeout=180)
    return broker


def processor_topics(readings: str = "readings") -> list[tuple[str, int, dict[str, str]]]:
    """``(name, partitions, config)`` of every topic, as ``iotml topics ensure`` makes them,
    the readings topic named ``readings``."""
    from iotml.core.options import build_settings
    from iotml.core.topics import TopicLayout, topic_specs

    specs = topic_specs(build_settings(TopicLayout, {"topic_readings": readings}))
    return [(s.name, s.partitions, s.topic_config()) for s in specs]


def create_topics(admin: Any, topics: list[tuple[str, int, dict[str, str]]]) -> None:
    from confluent_kafka.admin import NewTopic

    futures = admin.create_topics([NewTopic(n, p, 1, config=c) for n, p, c in topics])
    for f in futures.values():
        f.result(30)


def processor_env(bootstrap: str, registry: Path) -> dict[str, str]:
    """The ``IOTML_*`` settings every benchmarked processor runs with."""
    return {
        "IOTML_KAFKA_BOOTSTRAP": bootstrap,
        "IOTML_MODEL_REGISTRY": str(registry),
        "IOTML_MODEL_NAME": "bench",
        "IOTML_PROCESSING_GUARANTEE": GUARANTEE,
        "IOTML_COMMIT_INTERVAL": COMMIT,
        "IOTML_LOG_LEVEL": "WARNING",
    }


def train(registry: Path, k: int = 3, horizon: str = "30s") -> None:
    """Train the model ``bench`` (``WINDOW`` windows, ``k`` lagged windows) into ``registry``."""
    from iotml.core.durations import parse_duration_ms
    from models.features import FeatureSpec
    from models.registry import Registry
    from models.synthetic import generate
    from models.training import TrainConfig, train

    spec = FeatureSpec("temperature", parse_duration_ms(WINDOW), k, parse_duration_ms(horizon))
    points = list(generate(devices=4, duration_ms=3_600_000, interval_ms=1000, seed=1))
    config = TrainConfig(spec=spec, epochs=5, patience=5, hidden=(16,), seed=1)
    train(points, config, Registry(registry), "bench", source="synthetic", progress=lambda _: None)


def readings(devices: int, seconds: int) -> Iterator[tuple[str, int, bytes]]:
    """``(device, event time, JSON body)``: one reading per device per second, ending two
    minutes ago."""
    rng = np.random.default_rng(0)
    base = rng.normal(70, 5, size=devices)
    start = (time.time_ns() // 1_000_000 - (seconds + 120) * 1000) // 10_000 * 10_000
    for s in range(seconds):
        ts = start + s * 1000
        noise = rng.normal(0, 0.3, size=devices)
        for d in range(devices):
            dev = f"machine-{d:04d}"
            value = round(float(base[d] + 2 * np.sin(s / 60 + d) + noise[d]), 3)
            body = (
                f'{{"v":1,"device_id":"{dev}","ts":{ts},'
                f'"metrics":{{"temperature":{value}}},"tags":{{}}}}'
            )
            yield dev, ts, body.encode()


def load_input(conf: dict[str, Any], topic: str, devices: int, seconds: int) -> int:
    from confluent_kafka import Producer

    producer = Producer({**conf, "linger.ms": 50, "batch.size": 1_000_000, "acks": "1"})
    n = 0
    for dev, ts, body in readings(devices, seconds):
        while True:
            try:
                producer.produce(topic, body, dev.encode(), timestamp=ts)
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
        if n % devices == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return n
