"""``iotml dashboard`` under a fleet's load: CPU, memory and delay to the browsers.

Load: 1,000 devices x 1 prediction/s produced into a real Kafka (4-partition topics), the
dashboard as a child process like production, and 5 plain Python event-stream clients
(five browsers would measure Chromium on 2 cores). Each prediction carries the producer's
send time in the ``iotml.sent_at`` header; the service passes it on with the record, so
each client measures the delay from production to its own arrival. CPU and memory are
the service process's own (``/proc``), over the measured period after a warm-up.

    python bench/bench_dashboard.py [--seconds 60] [--devices 1000] [--clients 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from bench/: import the checkout's packages
    sys.path.insert(0, str(REPO))

from bench.bench_processor import start_kafka  # noqa: E402
from tests.dashboardtools import DashboardProc, prediction  # noqa: E402
from tests.kafkatools import create_topics  # noqa: E402

WARMUP_S = 10


class SseClient(threading.Thread):
    """Reads the event stream; records production -> arrival delays (ms) of deltas."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.delays: list[float] = []
        self.recording = False
        self.bytes = 0
        self.events = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/events", headers={"Accept": "text/event-stream"})
        response = conn.getresponse()
        event = ""
        while True:
            line = response.readline()
            if not line:
                return
            self.bytes += len(line)
            if line.startswith(b"event: "):
                event = line[7:].strip().decode()
            elif line.startswith(b"data: ") and event == "delta":
                arrived = time.time() * 1000
                self.events += 1
                sent = json.loads(line[6:]).get("sent", {})
                if self.recording:
                    self.delays.extend(arrived - t for t in sent.values())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def produce_forever(conf: dict[str, Any], topic: str, devices: int, stop: threading.Event) -> None:
    """Each device's prediction once a second, spread evenly over the second."""
    from confluent_kafka import Producer

    producer = Producer({**conf, "linger.ms": 5})
    slices = 20
    per_slice = max(1, devices // slices)
    window_end = int(time.time() * 1000) // 1000 * 1000
    next_at = time.monotonic()
    while not stop.is_set():
        window_end += 1000
        for s in range(slices):
            for d in range(s * per_slice, min(devices, (s + 1) * per_slice)):
                p = prediction(d, window_end)
                sent = str(int(time.time() * 1000)).encode()
                producer.produce(
                    topic,
                    p.to_json(),
                    p.device_id.encode(),
                    timestamp=window_end,
                    headers=[("iotml.sent_at", sent)],
                )
            producer.poll(0)
            next_at += 1.0 / slices
            time.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60, help="measured period (after warm-up)")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=5)
    args = ap.parse_args()

    from iotml.stack.procs import free_port

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        work = Path(tmp)
        broker = start_kafka(work)
        stop = threading.Event()
        service = None
        producer: threading.Thread | None = None
        try:
            conf = {"bootstrap.servers": broker.bootstrap}
            for name in ("predictions", "alerts", "evaluations"):
                create_topics(conf, [name], 4, {"retention.ms": "3600000"})
            create_topics(conf, ["alert-state"], 4, {"cleanup.policy": "compact"})
            service = DashboardProc(
                {
                    "IOTML_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "IOTML_HTTP_PORT": str(free_port()),
                    "IOTML_LOG_LEVEL": "WARNING",
                },
                work / "dashboard.log",
            ).start()
            assert service.proc is not None
            pid = service.proc.pid
            clients = [SseClient(service.port) for _ in range(args.clients)]
            for c in clients:
                c.start()
            producer = threading.Thread(
                target=produce_forever, args=(conf, "predictions", args.devices, stop)
            )
            producer.start()
            print(f"warming up {WARMUP_S}s ...", flush=True)
            time.sleep(WARMUP_S)
            for c in clients:
                c.recording = True
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            peak = 0.0
            print(f"measuring {args.seconds}s ...", flush=True)
            while time.monotonic() - t0 < args.seconds:
                time.sleep(1)
                peak = max(peak, rss_mb(pid))
            cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            rss = rss_mb(pid)
            for c in clients:
                c.recording = False
            delays = [d for c in clients for d in c.delays]
            expected = args.devices * args.seconds * args.clients
            print()
            print(f"devices {args.devices} x 1 prediction/s, {args.clients} SSE clients")
            print(f"service CPU {cpu * 100:.1f} % of one core; RSS {rss:.0f} MB (peak {peak:.0f})")
            print(
                f"delay production -> client: p50 {statistics.median(delays):.0f} ms, "
                f"p99 {percentile(delays, 0.99):.0f} ms, max {max(delays):.0f} ms "
                f"({len(delays)} of ~{expected} predictions seen by the clients)"
            )
            rate = sum(c.bytes for c in clients) / args.clients / (time.monotonic() - t0) / 1024
            print(f"stream per client: ~{rate:.0f} KiB/s")
        finally:
            stop.set()
            if producer is not None:
                producer.join(15)
            if service is not None:
                service.stop()
            broker.stop()


if __name__ == "__main__":
    main()
