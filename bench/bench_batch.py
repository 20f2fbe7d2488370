"""Memory and speed of ``iotml batch`` on the Parquet archive: local engine vs Dask.

Builds synthetic archives in the layout ``iotml archive`` writes (``date=YYYY-MM-DD/``,
files rolled every ``--roll-rows`` readings, the archive's schema, Kafka partition and
offset per reading; device ``i`` on partition ``i % --partitions``): ``--devices`` devices
(default 10,000) sending a temperature every ``--interval`` (default 30 min) with a daily
cycle and noise, over each of ``--days`` (default 1 and 4 days: 0.48 and 1.92 million
readings; ~12 minutes in all on 2 cores). A small model is trained once (on 50 of the
devices).

Each archive is then replayed with ``--engine local`` (the whole archive loaded into one
process, as that engine does), and on a Dask ``LocalCluster`` of 1 and of 2 workers with
``--memory-limit`` each (default 1 GiB), each run in a child process of its own. It
prints readings/s of the replay (the cluster's start not counted) and the peak memory
(``VmHWM``, the RSS high-water mark) of the client process and of each worker, read from
``/proc/self/status`` in each of them at the end. The client of a LocalCluster also runs
the scheduler. The point on a 2-core machine is the shape: the Dask engine's peak memory
per worker stays flat as the archive grows, the local engine's grows with it.

    python bench/bench_batch.py [--devices 10000] [--days 1,4] [--interval 30m]
                                [--engines local,dask1,dask2] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from batch_archive import DAY, START, archive_sizes, fleet_params, values, write_archive

from iotml.core.durations import parse_duration_ms

REPO = Path(__file__).resolve().parent.parent

MODEL = "bench-batch"


def train_model(registry: Path, devices: int, interval: int) -> str:
    """A small forecaster on three days of 50 of the devices: windows of 4 readings (2 h
    at the default interval), forecasting two windows ahead from the last 3."""
    from models.features import FeatureSpec
    from models.registry import Registry
    from models.training import TrainConfig, train

    params = fleet_params(devices, 0)
    rng = np.random.default_rng(7)
    few = np.arange(min(50, devices))
    ts = np.repeat(START + interval * np.arange(3 * DAY // interval, dtype=np.int64), len(few))
    dev = np.tile(few, len(ts) // len(few))
    vals = values(params, dev, ts, rng)
    points = [(f"dev-{d:05d}", int(t), float(v)) for d, t, v in zip(dev, ts, vals, strict=True)]
    spec = FeatureSpec("temperature", 4 * interval, 3, 8 * interval, min_count=2)
    config = TrainConfig(spec=spec, epochs=20, patience=5, hidden=(16,))
    result = train(points, config, Registry(registry), MODEL, "bench_batch", lambda _: None)
    return result.version


def vmhwm() -> int:
    """This process's peak resident memory (bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child(args: argparse.Namespace) -> None:
    """One replay in this (fresh) process; prints its figures as JSON."""
    out = Path(args.out)
    common = ["--input", args.archive, "--model-registry", args.registry, "--model-name", MODEL]
    if args.child == "local":
        from models.cli import batch

        started = time.monotonic()
        batch.main([*common, "--output", str(out)], standalone_mode=False)
        seconds = time.monotonic() - started
        summary = json.loads((out / "summary.json").read_text())
        print(
            json.dumps(
                {
                    "seconds": seconds,
                    "readings": summary["readings"],
                    "client": vmhwm(),
                    "workers": [],
                }
            )
        )
        return
    from models.distributed import Job, dask_client, run_dask_batch
    from models.registry import Registry

    version = Registry(Path(args.registry)).latest(MODEL)
    job = Job(
        archive=args.archive,
        registry=args.registry,
        model_name=MODEL,
        model_version=str(version),
        grace_ms=None,
        idle_ms=None,
        silence_ms=None,
        ttl_ms=7 * DAY,  # the processor's default device time-to-live, as --engine local
        output=str(out),
    )
    workers = int(args.child.removeprefix("dask"))
    with dask_client(None, workers, args.memory_limit) as client:
        started = time.monotonic()
        counts = run_dask_batch(job, client)
        seconds = time.monotonic() - started
        peaks = sorted(client.run(vmhwm).values())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "readings": counts["readings"],
                "client": vmhwm(),
                "workers": peaks,
            }
        )
    )


def run_child(
    engine: str, archive: Path, registry: Path, out: Path, memory_limit: str
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", engine, "--archive", str(archive)]
    cmd += ["--registry", str(registry), "--out", str(out), "--memory-limit", memory_limit]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--days", default="1,4", help="archive sizes, in days of readings")
    ap.add_argument("--interval", default="30m", help="time between a device's readings")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--roll-rows", type=int, default=200_000, help="readings per archive file")
    ap.add_argument("--engines", default="local,dask1,dask2")
    ap.add_argument("--memory-limit", default="1GiB", help="of each Dask worker")
    ap.add_argument("--dir", help="work directory (kept; default: a temporary one, removed)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--archive", help=argparse.SUPPRESS)
    ap.add_argument("--registry", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        bench(args, Path(args.dir) if args.dir else Path(tmp))


def bench(args: argparse.Namespace, work: Path) -> None:
    interval = parse_duration_ms(args.interval)
    registry = work / "registry"
    t = time.monotonic()
    version = train_model(registry, args.devices, interval)
    print(f"model {MODEL} {version} trained in {time.monotonic() - t:.0f} s", flush=True)
    rows = []
    for days in (float(d) for d in args.days.split(",")):
        archive = work / f"archive-{days:g}d"
        t = time.monotonic()
        n = write_archive(archive, args.devices, days, interval, args.partitions, args.roll_rows)
        disk, loaded = archive_sizes(archive)
        files = len(list(archive.glob("date=*/*.parquet")))
        print(
            f"archive {days:g} d: {n:,} readings of {args.devices:,} devices, {files} files, "
            f"{mib(disk)} MiB on disk, {mib(loaded)} MiB as Arrow tables "
            f"(written in {time.monotonic() - t:.0f} s)",
            flush=True,
        )
        for engine in args.engines.split(","):
            got = run_child(
                engine, archive, registry, work / f"view-{days:g}d-{engine}", args.memory_limit
            )
            rate = got["readings"] / got["seconds"]
            rows.append(
                (f"{days:g} d", f"{got['readings']:,}", engine, rate, got["client"], got["workers"])
            )
            print(
                f"  {engine}: {rate:,.0f} readings/s, client peak {mib(got['client'])} MiB, "
                f"workers {', '.join(mib(w) for w in got['workers']) or '-'} MiB",
                flush=True,
            )
    print()
    print("| archive | readings | engine | readings/s | client peak MiB | worker peaks MiB |")
    print("|---|---|---|---|---|---|")
    for size, n, engine, rate, client, workers in rows:
        print(
            f"| {size} | {n} | {engine} | {rate:,.0f} | {mib(client)} | {', '.join(mib(w) for w in workers) or '-'} |"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
