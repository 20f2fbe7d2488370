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
import tempfile
from pathlib import Path

import numpy as np
from benchkit import (
    COMMIT,
    GUARANTEE,
    WINDOW,
    create_topics,
    load_input,
    processor_env,
    processor_topics,
    start_kafka,
    train,
)
from processor_runs import baseline_rate, latencies, run_processors
from scoring_cost import engine_scoring_cost, scoring_compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=240, help="event-time seconds of load")
    parser.add_argument(
        "--scoring-compare",
        action="store_true",
        help="only measure live scoring: on and off, alternating, three runs each",
    )
    args = parser.parse_args()

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
