"""One processor child of ``bench_fleet.py``, watched from outside: readings consumed (its
``/metrics``), CPU and memory (``/proc``), and where a cProfile'd run spent its time."""

from __future__ import annotations

import os
import pstats
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import REPO, child_env, read_metrics

READ = 'iotml_processor_records_in_total{kind="reading"}'
INVALID = 'iotml_processor_records_in_total{kind="invalid"}'
CHILD = Path(__file__).with_name("fleet_child.py")


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
    environ = child_env(env, group, port, work / f"state-{group}")
    cmd = [sys.executable, str(CHILD), *child_args]
    if profile:
        cmd += ["--profile", str(profile)]
    child = subprocess.Popen(cmd, env=environ, cwd=REPO)
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
