"""``iotml processor`` at fleet scale, and its memory while a million device ids come and go.

Fleet: for each size of ``--devices`` (e.g. ``1000,100000``) one run of the processor with
the model, through a real Kafka, on its own 4-partition readings topic loaded before the
run's clock starts. Every device sends one reading every ``--cadence`` (default 3 s, the
most that still gives a 10 s window its 3 readings; devices staggered over it), the same for
every size; the largest fleet sends ``--windows`` windows of readings (default 8) and the
smaller ones at least ``--min-readings`` over more windows. The model (trained here) looks
back one window and forecasts one window ahead, so from a device's 4th window on every
window it closes is forecast, scored and checked for alerts: throughput is measured over
those readings only (steady state), up to 97 % of the load, as readings consumed per second
from the child's ``/metrics`` (the whole-run figure is printed too). Peak memory is the
child's ``VmHWM`` (``/proc/<pid>/status``).

Churn: ``--churn-devices`` distinct ids (default 1,000,000) arrive evenly over
``--churn-span`` of event time, each sends ``--churn-readings`` readings ``--churn-gap``
apart and then goes quiet for good, beside ``--resident`` devices that send all along
(same cadence); ``IOTML_DEVICE_TTL=--ttl``. Prints, as the partition time passes, the
child's RSS, the devices held in memory and forgotten, and where the memory is (RocksDB
memtables and block cache, malloc, Python's allocator).

``--block-cache MB`` sets the processor's RocksDB block cache for every run
(``IOTML_STATE_CACHE_MB``; default: the processor's own default). ``--profile`` adds a
cProfile'd run of each load (not the measured ones) and prints where the processing thread
spends its time. On 2 shared cores the fleet part takes about 8 minutes, the churn run
about 12-16 (the processor handles ~5,000 readings/s there).

    python bench/bench_fleet.py [--devices 1000,100000] [--churn-devices 1000000]
    python bench/bench_fleet.py --devices "" --block-cache 1024    # churn only, 1 GiB cache
    python bench/bench_fleet.py --churn-devices 0 --profile        # fleet with hot spots
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import (
    COMMIT,
    GUARANTEE,
    WINDOW,
    create_topics,
    processor_env,
    processor_topics,
    start_kafka,
    train,
)
from fleet_load import churn_rows, fleet_rows, produce
from fleet_watch import READ, Run, hot_spots, run

WINDOW_MS = 10_000
#: The fleet model looks back K windows and forecasts one window ahead, so a device's
#: first forecast comes when its window K + 1 closes and the first forecast is scored
#: (evaluation, anomaly check) when window K + 2 closes, on the first reading of window
#: K + 3: every reading from there on is steady state.
K, HORIZON = 1, "10s"
WARMUP_WINDOWS = K + 2


def fleet_runs(
    args: argparse.Namespace, conf: dict[str, Any], env: dict[str, str], work: Path
) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(conf)
    cadence = args.cadence * 1000
    per_window = WINDOW_MS // cadence
    results: list[tuple[int, int, float, Run]] = []
    profiles: list[tuple[int, Path]] = []
    for devices in (int(x) for x in args.devices.split(",")):
        windows = max(args.windows, math.ceil(args.min_readings / devices / per_window))
        ticks = windows * WINDOW_MS // cadence
        topic = f"readings-{devices}"
        create_topics(admin, readings_topic(topic))
        start = window_start(ticks * cadence)
        print(f"loading {devices:,} devices x {ticks} readings ...", flush=True)
        n = produce(conf, topic, fleet_rows(devices, cadence, ticks, start), devices * ticks)
        print(f"running {devices:,} devices ({n:,} readings) ...", flush=True)
        run_env = {**env, "IOTML_TOPIC_READINGS": topic}
        results.append(
            (devices, windows, WARMUP_WINDOWS / windows, run(f"{devices}", run_env, n, work))
        )
        if args.profile:
            path = work / f"profile-{devices}.pstats"
            print(f"profiling {devices:,} devices ...", flush=True)
            run(f"{devices}-prof", run_env, n, work, path)
            profiles.append((devices, path))
    print(
        f"\nfleet: one reading per device every {args.cadence} s (staggered), window {WINDOW}, "
        f"4 partitions, {GUARANTEE}, commit {COMMIT}, model k={K} horizon {HORIZON}; readings/s "
        f"is steady state (after each device's first {WARMUP_WINDOWS} windows, to 97 % of the "
        "load)"
    )
    print(
        f"{'devices':>9} {'windows':>7} {'readings':>10} {'readings/s':>10} {'whole run':>9} "
        f"{'/CPU-s':>7} {'load':>5} {'predictions':>11} {'RSS start':>9} {'peak RSS':>9}"
    )
    for devices, windows, steady, r in results:
        print(
            f"{devices:>9,} {windows:>7} {r.total:>10,} {r.rate(steady, 0.97):>10,.0f} "
            f"{r.rate(0.0, 1.0):>9,.0f} {r.rate(steady, 0.97, 2):>7,.0f} {r.load:>5.1f} "
            f"{r.final.get('iotml_processor_predictions_total', 0):>11,.0f} "
            f"{r.rss_start:>6,.0f} MB {r.hwm:>6,.0f} MB"
        )
    if len(results) > 1:
        (d0, _, s0, r0), (d1, _, s1, r1) = results[0], results[-1]
        print(
            f"throughput at {d1:,} devices = {r1.rate(s1, 0.97) / r0.rate(s0, 0.97):.0%} of "
            f"{d0:,} (target >= 70%; per CPU second: "
            f"{r1.rate(s1, 0.97, 2) / r0.rate(s0, 0.97, 2):.0%}); "
            f"peak RSS {r1.hwm:,.0f} MB vs {r0.hwm:,.0f} MB"
        )
    for devices, _, _, r in results:
        print(f"CPU by thread, {devices:,} devices: {r.thread_split()}")
    print(
        "(/CPU-s: readings per CPU second of the processor, all its threads; load: the "
        "machine's 1-minute load average during the run, 2 cores)"
    )
    for devices, path in profiles:
        print(f"\ncProfile, {devices:,} devices (processing thread, by own time):")
        hot_spots(path)


def churn_run(
    args: argparse.Namespace, conf: dict[str, Any], env: dict[str, str], work: Path
) -> None:
    from confluent_kafka.admin import AdminClient

    span = args.churn_span * 1000 + args.churn_readings * args.churn_gap * 1000
    start = window_start(span)
    rows, distinct = churn_rows(args, start)
    n = len(distinct)
    create_topics(AdminClient(conf), readings_topic("readings-churn"))
    print(f"loading churn: {int(distinct[-1]):,} ids, {n:,} readings ...", flush=True)
    produce(conf, "readings-churn", rows, n)

    def row(m: dict[str, float], rss: float) -> tuple[float, ...]:
        count = int(m.get(READ, 0.0))
        lo, hi = (m.get(f"bench_partition_time_{x}_ms", 0.0) for x in ("min", "max"))
        mb = 1 / 1024 / 1024
        return (
            count,
            max(lo - start, 0) / 1000,
            max(hi - start, 0) / 1000,
            distinct[min(max(count, 1), n) - 1],
            m.get("iotml_processor_devices_cached", 0.0),
            m.get("iotml_processor_devices_forgotten_total", 0.0),
            m.get("bench_rocksdb_keys", 0.0),
            rss,
            m.get("bench_rocksdb_memtables_bytes", 0.0) * mb,
            m.get("bench_rocksdb_block_cache_bytes", 0.0) * mb,
            m.get("bench_malloc_in_use_bytes", 0.0) * mb,
            m.get("bench_malloc_free_bytes", 0.0) * mb,
            m.get("bench_python_blocks", 0.0) / 1e6,
        )

    print(f"running churn ({n:,} readings, TTL {args.ttl}) ...", flush=True)
    run_env = {**env, "IOTML_TOPIC_READINGS": "readings-churn", "IOTML_DEVICE_TTL": args.ttl}
    r = run("churn", run_env, n, work, row=row)
    if args.profile:
        print("profiling churn ...", flush=True)
        run("churn-prof", run_env, n, work, work / "profile-churn.pstats")
    print(
        f"\nchurn: {args.churn_devices:,} ids arriving over {args.churn_span} s of event time, "
        f"{args.churn_readings} readings {args.churn_gap} s apart each, then quiet; "
        f"{args.resident} devices sending all along; IOTML_DEVICE_TTL={args.ttl}"
        + (f"; RocksDB block cache {args.block_cache} MiB" if args.block_cache else "")
    )
    print(
        "(partition time: slowest-fastest partition since the first arrival; ids so far: "
        "distinct ids in the load up to that many readings; keys: RocksDB's estimate; "
        "malloc: in use / free but kept; py: Python allocator blocks, millions)"
    )
    print(
        f"{'readings':>10} {'partition time':>14} {'ids so far':>10} {'cached':>7} "
        f"{'forgotten':>9} {'keys':>8} {'RSS MB':>7} {'memtab':>6} {'bcache':>6} "
        f"{'malloc':>11} {'py':>5}"
    )
    for count, lo, hi, seen, cached, gone, keys, rss, mem, cache, used, free, py in r.rows:
        print(
            f"{count:>10,.0f} {lo:>6,.0f}-{hi:>5,.0f} s {seen:>10,.0f} {cached:>7,.0f} "
            f"{gone:>9,.0f} {keys:>8,.0f} {rss:>7,.0f} {mem:>6,.0f} {cache:>6,.0f} "
            f"{used:>5,.0f}/{free:<5,.0f} {py:>5.1f}"
        )
    f = r.final
    print(
        f"peak RSS {r.hwm:,.0f} MB; {r.rate(0.1, 0.97):,.0f} readings/s "
        f"({r.rate(0.1, 0.97, 2):,.0f} per CPU second, load {r.load:.1f}); "
        f"iotml_processor_devices_forgotten_total "
        f"{f.get('iotml_processor_devices_forgotten_total', 0):,.0f}, "
        f"iotml_processor_devices_cached {f.get('iotml_processor_devices_cached', 0):,.0f}"
    )
    print(f"CPU by thread: {r.thread_split()}")
    if args.profile:
        print("\ncProfile, churn (processing thread):")
        hot_spots(work / "profile-churn.pstats")


def readings_topic(name: str) -> list[tuple[str, int, dict[str, str]]]:
    return [t for t in processor_topics(name) if t[0] == name]


def window_start(span_ms: int) -> int:
    """A window boundary ``span_ms`` plus two minutes ago: a load from there ends before
    now (Kafka and the processor refuse event times far in the future)."""
    return (time.time_ns() // 1_000_000 - span_ms - 120_000) // WINDOW_MS * WINDOW_MS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1000,100000", help="fleet sizes, comma-separated")
    parser.add_argument("--cadence", type=int, default=3, help="seconds between two readings")
    parser.add_argument(
        "--windows", type=int, default=8, help="windows of the largest fleet (the first 3 warm up)"
    )
    parser.add_argument("--min-readings", type=int, default=400_000, help="of a smaller fleet")
    parser.add_argument("--churn-devices", type=int, default=1_000_000, help="0: no churn run")
    parser.add_argument("--churn-readings", type=int, default=3)
    parser.add_argument("--churn-gap", type=int, default=4, help="seconds between them")
    parser.add_argument("--churn-span", type=int, default=900, help="seconds of arrivals")
    parser.add_argument("--resident", type=int, default=500, help="devices sending all along")
    parser.add_argument("--ttl", default="2m", help="IOTML_DEVICE_TTL of the churn run")
    parser.add_argument("--profile", action="store_true", help="add cProfile'd runs")
    parser.add_argument(
        "--block-cache",
        type=int,
        help="the processor's RocksDB block cache in MiB (IOTML_STATE_CACHE_MB) for every run",
    )
    args = parser.parse_args()
    from confluent_kafka.admin import AdminClient

    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="iotml-bench-fleet-") as tmp:
        work = Path(tmp)
        broker = start_kafka(work)
        try:
            conf = {"bootstrap.servers": broker.bootstrap}
            create_topics(AdminClient(conf), processor_topics())
            registry = work / "registry"
            print("training the model ...", flush=True)
            train(registry, K, HORIZON)
            env = processor_env(broker.bootstrap, registry)
            if args.block_cache:
                env["IOTML_STATE_CACHE_MB"] = str(args.block_cache)
            if args.devices:
                fleet_runs(args, conf, env, work)
            if args.churn_devices:
                churn_run(args, conf, env, work)
        finally:
            broker.stop()
    print(f"\nwall time {time.monotonic() - t_all:,.0f} s")


if __name__ == "__main__":
    main()
