"""The processor children of ``bench_processor.py`` and how they are timed: throughput
from their ``/metrics``, latency from window close to the predictions topic, and the
seed-style baseline.

    python bench/processor_runs.py MODE [--close-log FILE]    # one child (model | no-model)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from benchkit import REPO, SCORED, child_env, cpu_seconds, read_metrics, scrape


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
        environ = child_env(env, group, port, workdir / f"state-{group}-{i}")
        args = [sys.executable, __file__, mode]
        if latency:
            args += ["--close-log", str(log)]
            logs.append(log)
        procs.append(subprocess.Popen(args, env=environ, cwd=REPO))
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one processor child of bench_processor.py")
    parser.add_argument("mode", choices=["model", "no-model"])
    parser.add_argument("--close-log", help="where to write when each window closed")
    args = parser.parse_args()
    child(args.mode, args.close_log)
