"""``iotml processor`` at fleet scale, and its memory while a million device ids come and go.

Fleet: for each size of ``--devices`` (e.g. ``1000,100000``) one run of the processor with
the model, through a real Kafka, on its own 4-partition readings topic loaded before the
run's clock starts. Every device sends one reading every ``--cadence`` (default 3 s, the
most that still gives a 10 s window its 3 readings; devices staggered over it), the same for
every size; the largest fleet sends ``--windows`` windows of readings (default 5) and the
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
import functools
import math
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_processor import (
    COMMIT,
    GUARANTEE,
    REPO,
    WINDOW,
    create_topics,
    processor_env,
    processor_topics,
    read_metrics,
    start_kafka,
    train,
)

WINDOW_MS = 10_000
#: The fleet model looks back K windows and forecasts one window ahead, so a device's
#: first forecast comes when its window K + 1 closes and the first forecast is scored
#: (evaluation, anomaly check) when window K + 2 closes, on the first reading of window
#: K + 3: every reading from there on is steady state.
K, HORIZON = 1, "10s"
WARMUP_WINDOWS = K + 2
READ = 'iotml_processor_records_in_total{kind="reading"}'
INVALID = 'iotml_processor_records_in_total{kind="invalid"}'
Row = tuple[bytes, bytes, int]  # key, value, timestamp


# -- child process -------------------------------------------------------------------------


def child(profile: str | None) -> None:
    """One processor with the model, from IOTML_* variables, with this bench's gauges;
    ``profile``: cProfile its processing thread from the first record on, written there
    when it stops."""
    import cProfile

    from prometheus_client import Gauge

    from iotml.core.logs import setup_logging
    from iotml.core.options import build_settings
    from processor.app import Processor
    from processor.settings import ProcessorSettings

    setup_logging("WARNING")
    proc = Processor(build_settings(ProcessorSettings, {}))
    clocks = proc.engine.clocks

    def gauge(name: str, fn: Callable[[], float]) -> None:
        Gauge(f"bench_{name}", name, registry=proc.metrics.registry).set_function(fn)

    def times() -> list[int]:
        return [c.event_time or 0 for c in list(clocks.values())]

    gauge("partition_time_min_ms", lambda: min(times(), default=0))
    gauge("partition_time_max_ms", lambda: max(times(), default=0))
    gauge("rocksdb_memtables_bytes", lambda: _rocksdb(proc, "cur-size-all-mem-tables"))
    gauge("rocksdb_block_cache_bytes", lambda: _rocksdb(proc, "block-cache-usage", True))
    gauge("rocksdb_keys", lambda: _rocksdb(proc, "estimate-num-keys"))
    gauge("python_blocks", sys.getallocatedblocks)
    gauge("malloc_in_use_bytes", lambda: _mallinfo()[0])
    gauge("malloc_free_bytes", lambda: _mallinfo()[1])
    profiler = cProfile.Profile() if profile else None
    if profiler:  # from the first record on: start-up (imports, model load) is not the cost
        engine, first = proc.engine, proc.engine.process

        def profiled(*args: Any) -> Any:
            engine.process = first  # type: ignore[method-assign]
            profiler.enable()
            return first(*args)

        engine.process = profiled  # type: ignore[method-assign,assignment]
    try:
        proc.run()
    finally:
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)


def _rocksdb(proc: Any, prop: str, shared: bool = False) -> float:
    """A RocksDB property summed over the store partitions (``shared``: the first one's,
    e.g. the block cache every partition shares). Reads quixstreams internals: for this
    bench's diagnostics only."""
    app, total = proc._app, 0
    try:
        for stores in list(app._state_manager.stores.values()) if app else []:
            for store in list(stores.values()):
                for part in list(store.partitions.values()):
                    value = part._db.property_int_value(f"rocksdb.{prop}") or 0
                    if shared:
                        return value
                    total += value
    except Exception:  # a partition closing under us: report nothing this time
        return 0
    return total


_MALLINFO2 = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


@functools.cache
def _mallinfo2() -> Any:
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in _MALLINFO2.split()]

    fn = ctypes.CDLL("libc.so.6").mallinfo2  # glibc >= 2.33
    fn.restype = MallInfo2
    return fn


def _mallinfo() -> tuple[int, int]:
    """glibc malloc: (bytes in use, bytes free but kept by the process); 0s elsewhere."""
    try:
        m = _mallinfo2()()
    except (OSError, AttributeError):
        return 0, 0
    return m.uordblks + m.hblkhd, m.fordblks


# -- load ----------------------------------------------------------------------------------


def produce(conf: dict[str, Any], topic: str, rows: Iterator[Row], total: int) -> int:
    """Write ``rows`` to ``topic`` in large batches; returns how many."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            **conf,
            "linger.ms": 100,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "acks": "1",
        }
    )
    t0, n = time.monotonic(), 0
    for key, value, ts in rows:
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 500_000 == 0:
            producer.poll(0)
            print(f"  loaded {n:,}/{total:,} ({time.monotonic() - t0:.0f} s)", flush=True)
    assert producer.flush(300) == 0
    return n


def reading(dev: str, ts: int, value: float) -> bytes:
    import orjson

    return orjson.dumps(
        {"v": 1, "device_id": dev, "ts": ts, "metrics": {"temperature": value}, "tags": {}}
    )


def fleet_rows(devices: int, cadence_ms: int, ticks: int, start: int) -> Iterator[Row]:
    """``ticks`` readings per device, ``cadence_ms`` apart, devices staggered; in time order."""
    rng = np.random.default_rng(devices)
    base = rng.normal(70, 5, size=devices)
    phase = ((np.arange(devices) * cadence_ms) // devices).tolist()
    ids = [f"machine-{d:06d}" for d in range(devices)]
    keys = [i.encode() for i in ids]
    for k in range(ticks):
        values = base + 2 * np.sin(k * cadence_ms / 60_000 + np.arange(devices))
        values = np.round(values + rng.normal(0, 0.3, size=devices), 3).tolist()
        t0 = start + k * cadence_ms
        for d in range(devices):
            ts = t0 + phase[d]
            yield keys[d], reading(ids[d], ts, values[d]), ts


def churn_rows(args: argparse.Namespace, start: int) -> tuple[Iterator[Row], np.ndarray]:
    """Churning ids and resident devices interleaved in time order: the rows, and per row
    how many distinct ids the load has had up to it."""
    n, r = args.churn_devices, args.churn_readings
    span = args.churn_span * 1000
    arrive = np.arange(n, dtype=np.int64) * span // n
    ts = (arrive[:, None] + np.arange(r, dtype=np.int64) * args.churn_gap * 1000).ravel()
    dev = np.repeat(np.arange(n, dtype=np.int64), r)
    cadence = args.cadence * 1000
    ticks = (span + r * args.churn_gap * 1000) // cadence
    res = np.arange(args.resident, dtype=np.int64)
    rts = (res * cadence // max(args.resident, 1))[None, :] + cadence * np.arange(ticks)[:, None]
    ts = np.concatenate([ts, rts.ravel()]) + start
    dev = np.concatenate([dev, np.tile(-1 - res, ticks)])
    order = np.argsort(ts, kind="stable")
    ts, dev = ts[order], dev[order]
    first = np.zeros(len(dev), dtype=bool)
    first[np.unique(dev, return_index=True)[1]] = True
    values = np.round(np.random.default_rng(7).normal(70, 5, size=len(ts)), 3).tolist()

    def rows() -> Iterator[Row]:
        for t, d, v in zip(ts.tolist(), dev.tolist(), values, strict=True):
            name = f"churn-{d:07d}" if d >= 0 else f"resident-{-1 - d:05d}"
            yield name.encode(), reading(name, t, v), t

    return rows(), np.cumsum(first)


# -- one processor run ---------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in MB, ``cpu`` seconds (every thread) and the
    machine's 1-minute ``load`` (empty once the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        load = float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return {}
    out = {
        k: int(v.split()[0]) / 1024
        for k, _, v in (line.partition(":") for line in lines)
        if k in ("VmRSS", "VmHWM")
    }
    ticks = os.sysconf("SC_CLK_TCK")
    return {**out, "cpu": (int(stat[11]) + int(stat[12])) / ticks, "load": load}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s live threads by kind (the name without its number:
    ``python`` for the Python threads, ``rdk:broker`` for librdkafka's, ``rocksdb:low``)."""
    out: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name, rest = (task / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        kind = re.sub(r"[-\d]+$", "", name) or name
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


@dataclass
class Run:
    label: str
    total: int
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # wall, n, cpu
    loads: list[float] = field(default_factory=list)  # the machine's, while it ran
    rows: list[tuple[float, ...]] = field(default_factory=list)  # churn table
    rss_start: float = 0.0
    hwm: float = 0.0
    final: dict[str, float] = field(default_factory=dict)
    threads: dict[str, float] = field(default_factory=dict)  # CPU s by thread kind, at the end

    def thread_split(self) -> str:
        total = sum(self.threads.values()) or 1.0
        top = sorted(self.threads.items(), key=lambda kv: -kv[1])[:5]
        return ", ".join(f"{k} {v / total:.0%}" for k, v in top)

    def at(self, count: float, what: int = 0) -> float:
        """Wall time (``what=2``: CPU time) when ``count`` readings were consumed."""
        for a, b in zip(self.samples, self.samples[1:], strict=False):
            if b[1] >= count:
                return a[what] + (b[what] - a[what]) * (count - a[1]) / max(b[1] - a[1], 1e-9)
        return self.samples[-1][what]

    def rate(self, lo: float, hi: float, what: int = 0) -> float:
        """Readings per second (``what=2``: per CPU second, all threads) between fractions
        ``lo`` and ``hi`` of the load."""
        n0, n1 = lo * self.total, hi * self.total
        return (n1 - n0) / max(self.at(n1, what) - self.at(n0, what), 1e-3)

    @property
    def load(self) -> float:
        return sum(self.loads) / max(len(self.loads), 1)


def run(
    label: str,
    env: dict[str, str],
    total: int,
    work: Path,
    profile: Path | None = None,
    row: Callable[[dict[str, float], float], tuple[float, ...]] | None = None,
    child_args: tuple[str, ...] = (),
) -> Run:
    """One processor child (fresh consumer group) until it has consumed ``total`` readings.
    ``row(metrics, rss)`` adds a table row at each tenth of the load."""
    from iotml.stack.procs import free_port

    group = f"bench-{label}-{uuid.uuid4().hex[:6]}"
    port = free_port()
    child_env = {
        **os.environ,
        **env,
        "IOTML_CONSUMER_GROUP": group,
        "IOTML_HTTP_PORT": str(port),
        "IOTML_HTTP_HOST": "127.0.0.1",
        "IOTML_STATE_DIR": str(work / f"state-{group}"),
    }
    cmd = [sys.executable, __file__, "--child", *child_args]
    if profile:
        cmd += ["--child-profile", str(profile)]
    child = subprocess.Popen(cmd, env=child_env, cwd=REPO)
    out = Run(label, total)
    t_start = time.monotonic()
    next_print, next_row = t_start + 15, 0.0
    try:
        while True:
            if child.poll() is not None:
                raise SystemExit(f"{label}: the processor exited early ({child.returncode})")
            if time.monotonic() - t_start > 1800:
                raise SystemExit(f"{label}: did not finish in 30 min")
            # a busy child may answer slowly: a scrape that times out is skipped
            m = read_metrics(port, timeout=10)
            now, mem = time.monotonic(), proc_status(child.pid)
            out.hwm = max(out.hwm, mem.get("VmHWM", 0.0))
            if not m or not mem:
                time.sleep(0.25)
                continue
            count = m.get(READ, 0.0) + m.get(INVALID, 0.0)
            if count == 0 and not out.samples:
                out.rss_start = mem["VmRSS"]
            elif count > 0:
                out.samples.append((now, count, mem["cpu"]))
                out.loads.append(mem["load"])
            if row is not None and count >= next_row * total and count > 0:
                out.rows.append(row(m, mem.get("VmRSS", 0.0)))
                next_row += 0.1
            if now >= next_print:
                recent = [s for s in out.samples if s[0] >= now - 10] or [(now, 0.0, 0.0)]
                rate = (recent[-1][1] - recent[0][1]) / max(recent[-1][0] - recent[0][0], 1e-3)
                print(
                    f"  [{label}] {count:,.0f}/{total:,} readings, {rate:,.0f}/s lately, "
                    f"RSS {mem.get('VmRSS', 0):,.0f} MB, "
                    f"cached {m.get('iotml_processor_devices_cached', 0):,.0f}, "
                    f"load {mem.get('load', 0):.1f}, {now - t_start:.0f} s",
                    flush=True,
                )
                next_print = now + 15
            if count >= total:
                out.final = m
                break
            time.sleep(0.25)
        out.hwm = max(out.hwm, proc_status(child.pid).get("VmHWM", 0.0))
        out.threads = thread_cpu(child.pid)
    finally:
        child.terminate()
        child.wait(120)
    return out


def hot_spots(path: Path, top: int = 16) -> None:
    """The functions of a cProfile dump with the most own time, then with the most time
    including their callees (the outermost loop left out)."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())

    def show(key: int, title: str, below: float) -> None:
        print(f"  {title}\n  {'own s':>7} {'cum s':>7} {'cum %':>6} {'calls':>10}  function")
        rows = [kv for kv in stats.items() if kv[1][3] < below * total]
        for (file, line, name), (_, calls, own, cum, _) in sorted(
            rows, key=lambda kv: kv[1][key], reverse=True
        )[:top]:
            where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else "built-in"
            print(f"  {own:7.2f} {cum:7.2f} {cum / total:6.1%} {calls:10,}  {name} ({where})")

    print(f"  profiled {total:.1f} s")
    show(2, "by own time:", 2.0)
    show(3, "by time including callees:", 0.7)


# -- main ----------------------------------------------------------------------------------


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
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child_profile)
        return
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
