"""Throughput and latency of ``iotml processor`` on a fixed load, through a real Kafka.

Load: 1,000 devices, one reading per device per second of event time, 10 s windows,
loaded into a 4-partition readings topic before any clock starts. Each run is a fresh
consumer group reading that topic from the start, in child processes like production:

* ``model``: the processor as shipped;
* ``no-model``: the same pipeline with the model stage removed (windows and features,
  alerts without forecasts, no prediction records);
* ``baseline``: the seed's way, ``model.predict()`` on every reading (timed on a sample
  and extrapolated: at ~40 ms a call the full load would take hours);
* ``two replicas``: two ``model`` processes in one consumer group.

Throughput is measured from each child's ``/metrics`` (records consumed), from the first
record to the last. Latency is from the moment the processor closed a window (the wall
time it finished handling the reading that closed it) to the prediction's append time on
the predictions topic (created with ``LogAppendTime``).

``--scoring-compare`` runs only the cost of live scoring instead: the ``model`` processor
with ``IOTML_LIVE_SCORING`` on and off, alternating, three runs each; it prints the median
throughput of each, and the difference in CPU and wall time per reading (the child's CPU
from ``/proc``, over the same steady-state interval as the throughput) spread over the
scored windows: µs per scored window, and that as a fraction of the per-reading cost.
Then the same comparison for the engine alone in this process (no Kafka, no broker
sharing the cores), which is far less noisy but leaves out producing the evaluations.

    python bench/bench_processor.py [--seconds 240] [--devices 1000] [--scoring-compare]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
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


# -- child process -------------------------------------------------------------------------


def child(mode: str, close_log: str | None) -> None:
    """Run one processor from IOTML_* variables; ``mode`` model | no-model."""
    from iotml.core.logs import setup_logging
    from iotml.core.options import build_settings
    from processor.app import Processor
    from processor.outputs import PREDICTIONS
    from processor.settings import ProcessorSettings

    settings = build_settings(ProcessorSettings, {})
    setup_logging("WARNING")
    proc = Processor(settings, model_stage=(mode == "model"))
    closed: dict[str, float] = {}
    if close_log:
        engine = proc.engine
        inner = engine.process

        def timed(*args: Any) -> Any:
            out = inner(*args)
            if out:
                t = time.time()
                for o in out:
                    if o.topic == PREDICTIONS:
                        closed[f"{o.key}@{o.timestamp}"] = t
            return out

        engine.process = timed  # type: ignore[method-assign,assignment]
    try:
        proc.run()
    finally:
        if close_log:
            Path(close_log).write_text(json.dumps(closed))


# -- parent --------------------------------------------------------------------------------


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


def run_processors(
    n: int,
    mode: str,
    env: dict[str, str],
    total: int,
    workdir: Path,
    latency: bool = False,
    steady: dict[str, float] | None = None,
) -> tuple[float, list[Path]]:
    """Run ``n`` children until they consumed ``total`` records; the throughput. With
    ``steady``, one child's records, scored forecasts and CPU seconds over the steady
    state are put there."""
    from iotml.stack.procs import free_port

    group = f"bench-{mode}-{n}-{uuid.uuid4().hex[:6]}"
    procs, ports, logs = [], [], []
    for i in range(n):
        port = free_port()
        log = workdir / f"{group}-{i}.closed.json"
        child_env = {
            **os.environ,
            **env,
            "IOTML_CONSUMER_GROUP": group,
            "IOTML_HTTP_PORT": str(port),
            "IOTML_HTTP_HOST": "127.0.0.1",
            "IOTML_STATE_DIR": str(workdir / f"state-{group}-{i}"),
        }
        args = [sys.executable, __file__, "--child", mode]
        if latency:
            args += ["--close-log", str(log)]
            logs.append(log)
        procs.append(subprocess.Popen(args, env=child_env, cwd=REPO))
        ports.append(port)
    t_first = t_last = None
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            counts = [scrape(p) for p in ports]
            count = sum(counts)
            now = time.monotonic()
            # steady state: from the moment every replica consumes (the join of a second
            # replica pauses the group for a rebalance, which is start-up, not throughput)
            if t_first is None and all(c > 0 for c in counts):
                t_first, first_count = now, count
                if steady is not None:
                    steady["cpu"] = -cpu_seconds(procs[0].pid)
                    steady["scored"] = -read_metrics(ports[0]).get(SCORED, 0.0)
            if count >= total:
                t_last = now
                if steady is not None:
                    steady["cpu"] += cpu_seconds(procs[0].pid)
                    steady["scored"] += read_metrics(ports[0]).get(SCORED, 0.0)
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a {mode} processor exited early")
            time.sleep(0.05)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    if t_first is None or t_last is None:
        raise SystemExit(f"{mode}: did not finish")
    rate = (total - first_count) / max(t_last - t_first, 1e-3)
    if steady is not None:
        steady["records"], steady["wall"] = total - first_count, t_last - t_first
    return rate, logs


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


class MemoryState:
    """quixstreams' ``State`` for the in-process engine: values kept as JSON, as its
    RocksDB store keeps them."""

    def __init__(self) -> None:
        self.data: dict[Any, str] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self.data.get(key)
        return default if raw is None else json.loads(raw)

    def set(self, key: Any, value: Any) -> None:
        self.data[key] = json.dumps(value)

    def delete(self, key: Any) -> None:
        self.data.pop(key, None)


def engine_scoring_cost(registry: Path, devices: int, seconds: int, runs: int = 3) -> None:
    """Live scoring in the engine alone (this process, no Kafka): CPU per reading with
    scoring on and off, alternating, on the same readings; prints the medians."""
    from processor.core import EVALUATIONS, Engine
    from processor.metrics import Metrics
    from processor.model import ModelHolder

    model = ModelHolder(registry, "bench", Metrics()).poll()
    assert model is not None
    records = list(readings(devices, seconds))
    cpu: dict[bool, list[float]] = {True: [], False: []}
    scored = 0
    for _ in range(runs):
        for on in (True, False):
            engine = Engine(lambda: model, Metrics(), scoring=on)
            state = MemoryState()
            n = 0
            t0 = time.process_time()
            for offset, (_, ts, body) in enumerate(records):
                out = engine.process(body, None, ts, "readings", 0, offset, state)
                n += sum(1 for o in out if o.topic == EVALUATIONS)
            cpu[on].append(time.process_time() - t0)
            scored = max(scored, n)
    if not scored:
        raise SystemExit("engine alone: nothing was scored (readings dead-lettered?)")
    with_, without = (statistics.median(cpu[on]) / len(records) * 1e6 for on in (True, False))
    window = (with_ - without) * len(records) / scored
    print(
        f"engine alone (no Kafka, {len(records)} readings, {scored} scored): {with_:.1f} µs "
        f"CPU per reading on, {without:.1f} off; live scoring {window:.1f} µs per scored "
        f"window = {window / without:.1%} of the per-reading cost "
        f"({(with_ - without) / without:+.1%} per reading)"
    )


def baseline_rate(registry: Path, sample: int = 200) -> tuple[float, float]:
    """Seed style: one ``model.predict()`` per reading; returns (readings/s, ms per call)."""
    import keras

    from models.forecaster import MODEL_FILE
    from models.registry import Registry

    # the Keras model itself: the processor runs the TensorFlow-free form (dense.npz)
    artifact = Registry(registry).load("bench", with_model=False)
    model = keras.models.load_model(artifact.path / MODEL_FILE, compile=False)
    x = np.zeros((1, len(artifact.spec.names())), dtype=np.float32)
    model.predict(x, verbose=0)  # warm-up
    t0 = time.perf_counter()
    for _ in range(sample):
        model.predict(x, verbose=0)
    per_call = (time.perf_counter() - t0) / sample
    return 1.0 / per_call, per_call * 1000


def latencies(conf: dict[str, Any], topic: str, logs: list[Path]) -> np.ndarray:
    from confluent_kafka import Consumer, TopicPartition

    closed: dict[str, float] = {}
    for log in logs:
        closed.update(json.loads(log.read_text()))
    consumer = Consumer(
        {**conf, "group.id": f"lat-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    md = consumer.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    seen = dict.fromkeys(parts, 0)
    out = []
    while any(seen[p] < ends[p] for p in parts):
        for m in consumer.consume(10_000, 1.0):
            if m.error():
                continue
            seen[m.partition()] = m.offset() + 1
            value = json.loads(m.value())
            t = closed.get(f"{m.key().decode()}@{value['window_end']}")
            if t is not None:
                out.append(m.timestamp()[1] / 1000.0 - t)
    consumer.close()
    return np.asarray(out)


def scoring_compare(env: dict[str, str], total: int, work: Path, runs: int = 3) -> None:
    """Live scoring on and off, alternating, ``runs`` times each; prints the medians."""
    got: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in range(runs):
        for on in (True, False):
            steady: dict[str, float] = {}
            run_env = {**env, "IOTML_LIVE_SCORING": "true" if on else "false"}
            rate, _ = run_processors(1, "model", run_env, total, work, steady=steady)
            steady["rate"] = rate
            got[on].append(steady)
            per = steady["cpu"] / steady["records"] * 1e6
            print(
                f"run {i + 1} scoring {'on ' if on else 'off'}: {rate:8.0f} readings/s, "
                f"{per:.1f} µs CPU per reading, {steady['scored']:.0f} forecasts scored",
                flush=True,
            )

    def median(on: bool, what: str) -> float:
        return statistics.median(r[what] for r in got[on])

    def per_reading(on: bool, what: str) -> float:  # µs
        return statistics.median(r[what] / r["records"] for r in got[on]) * 1e6

    scored_per_reading = statistics.median(r["scored"] / r["records"] for r in got[True])
    print()
    print(f"live scoring, median of {runs} alternating runs each:")
    print(f"scoring on:   {median(True, 'rate'):10.0f} readings/s")
    print(
        f"scoring off:  {median(False, 'rate'):10.0f} readings/s  "
        f"(on = {median(True, 'rate') / median(False, 'rate'):.1%} of off)"
    )
    print(f"scored windows per reading: {scored_per_reading:.3f}")
    for what, label in (("cpu", "CPU"), ("wall", "wall")):
        with_, without = per_reading(True, what), per_reading(False, what)
        extra = with_ - without
        window = extra / scored_per_reading if scored_per_reading else float("nan")
        print(
            f"{label:4}: {with_:.1f} µs per reading on, {without:.1f} off; live scoring "
            f"{window:.1f} µs per scored window = {window / without:.1%} of the per-reading "
            f"cost ({extra / without:+.1%} per reading)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=240, help="event-time seconds of load")
    parser.add_argument("--child", choices=["model", "no-model"], help=argparse.SUPPRESS)
    parser.add_argument("--close-log", help=argparse.SUPPRESS)
    parser.add_argument(
        "--scoring-compare",
        action="store_true",
        help="only measure live scoring: on and off, alternating, three runs each",
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.close_log)
        return

    from confluent_kafka.admin import AdminClient

    with tempfile.TemporaryDirectory(prefix="iotml-bench-") as tmp:
        work = Path(tmp)
        broker = start_kafka(work)
        try:
            conf = {"bootstrap.servers": broker.bootstrap}
            admin = AdminClient(conf)
            keep = {"retention.ms": "-1"}
            create_topics(admin, processor_topics())
            registry = work / "registry"
            print("training the model ...", flush=True)
            train(registry)
            print(f"loading {args.devices} devices x {args.seconds} s ...", flush=True)
            total = load_input(conf, "readings", args.devices, args.seconds)
            print(f"{total} readings loaded; clock starts per run", flush=True)
            env = processor_env(broker.bootstrap, registry)

            if args.scoring_compare:
                scoring_compare(env, total, work)
                engine_scoring_cost(registry, args.devices, args.seconds)
                return

            def outputs(run: str) -> dict[str, str]:
                # each run writes to its own predictions topic so latencies do not mix
                pred = f"predictions-{run}"
                cfg = {**keep, "message.timestamp.type": "LogAppendTime"}
                create_topics(admin, [(pred, 4, cfg)])
                return {**env, "IOTML_TOPIC_PREDICTIONS": pred}

            with_model, logs = run_processors(
                1, "model", outputs("model"), total, work, latency=True
            )
            lat = latencies(conf, "predictions-model", logs)
            no_model, _ = run_processors(1, "no-model", outputs("nomodel"), total, work)
            two, _ = run_processors(2, "model", outputs("two"), total, work)
            base, per_call = baseline_rate(registry)
        finally:
            broker.stop()

    p50, p99 = (np.percentile(lat, [50, 99]) * 1000) if len(lat) else (float("nan"),) * 2
    print()
    print(
        f"load: {args.devices} devices, readings 1 s apart, {args.seconds} s of event time, "
        f"{total} readings, window {WINDOW}, 4 partitions"
    )
    print(f"guarantee: {GUARANTEE}, commit interval {COMMIT}")
    print(f"with model:            {with_model:10.0f} readings/s")
    print(
        f"model stage removed:   {no_model:10.0f} readings/s  "
        f"(with model = {with_model / no_model:.0%}; target >= 70%)"
    )
    print(
        f"seed-style baseline:   {base:10.1f} readings/s  "
        f"(model.predict() {per_call:.1f} ms/call, sampled; with model = "
        f"{with_model / base:.0f}x; target >= 1000x)"
    )
    print(
        f"window close -> prediction on topic: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"({len(lat)} predictions; target p99 <= 1000 ms)"
    )
    print(
        f"two replicas:          {two:10.0f} readings/s  "
        f"({two / with_model:.2f}x one replica; goal >= 1.5x)"
    )


if __name__ == "__main__":
    main()
