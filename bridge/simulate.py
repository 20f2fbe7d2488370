"""The device simulator behind ``iotml simulate``.

One MQTT connection publishes for the whole fleet (a gateway), at QoS 1 by default, on
the bridge's default route ``sensors/{site}/{device}/{metric}`` with payloads
``{"ts": <epoch ms>, "<metric>": <value>}``.

Time: values come from the fleet at *simulated* time (the synthetic model, or CSV rows),
which may run faster than the wall clock (``--sim-speedup``), but every payload is stamped
with the *wall clock* at publication. Kafka rejects records more than 1 h in the future
and deletes records older than the retention almost at once, so replaying a 2013 CSV at
100x must not stamp 2013 or future times; the replay keeps the series' values and their
order, at the faster cadence, on today's clock.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.settings import SimulatorSettings
from iotml.core.eventtime import now_ms
from iotml.core.fleet import Fleet, ReplayFleet, SyntheticFleet, parse_fault

log = logging.getLogger(__name__)

_MALFORMED: tuple[Callable[[int, str, float], bytes], ...] = (
    lambda ts, m, v: b'{"%s": %s' % (m.encode(), str(v).encode()),  # truncated JSON
    lambda ts, m, v: b'{"ts": %d, "%s": NaN}' % (ts, m.encode()),
    lambda ts, m, v: b'{"ts": %d, "%s": "hot"}' % (ts, m.encode()),
    lambda ts, m, v: b'{"ts": %d}' % ts,  # no metric
    lambda ts, m, v: b'{"ts": 86400, "%s": %s}' % (m.encode(), str(v).encode()),  # 1970
    lambda ts, m, v: b"[%s]" % str(v).encode(),
    lambda ts, m, v: b"\xff\xfe garbage",
)


def reading_payload(ts: int, metric: str, value: float) -> bytes:
    return json.dumps({"ts": ts, metric: value}, separators=(",", ":")).encode()


def malformed_payload(rng: random.Random, ts: int, metric: str, value: float) -> bytes:
    """One of several kinds of bad payload the bridge must dead-letter."""
    return rng.choice(_MALFORMED)(ts, metric, value)


@dataclass
class SimStats:
    published: int = 0
    acked: int = 0
    malformed: int = 0
    skipped: int = 0  # dropout ticks
    seconds: float = 0.0


def build_fleet(s: SimulatorSettings) -> tuple[Fleet, int]:
    """The fleet and the wall-clock interval (ms) between two ticks of one device."""
    faults = [parse_fault(f) for f in s.sim_faults]
    common: dict[str, Any] = {
        "sites": s.sim_sites,
        "prefix": s.sim_device_prefix,
        "faults": faults,
        "seed": s.sim_seed,
    }
    interval = s.sim_interval
    if s.sim_rate:
        interval = max(1, int(1000 * s.sim_devices / s.sim_rate))
    if s.sim_csv is not None:
        fleet: Fleet = ReplayFleet.from_csv(s.sim_csv, s.sim_devices, **common)
        explicit = s.sim_rate or "sim_interval" in s.model_fields_set
        if s.sim_speedup != 1.0 and not explicit:
            interval = max(1, int(fleet.step_ms / s.sim_speedup))
    else:
        step = max(1, int(interval * s.sim_speedup))
        fleet = SyntheticFleet(s.sim_devices, step_ms=step, start_ms=now_ms(), **common)
    return fleet, interval


class Simulator:
    def __init__(self, settings: SimulatorSettings, echo: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.echo = echo
        self.fleet, self.interval_ms = build_fleet(settings)
        self.stats = SimStats()
        self._stopping = threading.Event()
        self._acked = 0
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stopping.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, *args: Any) -> None:
        with self._lock:
            self._acked += 1

    def run(self) -> SimStats:
        from bridge._mqtt import make_client

        s = self.settings
        client = make_client(s, s.sim_client_id, manual_ack=False, persistent=False)
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        host, port, _ = s.mqtt_endpoint()
        client.connect(host, port, keepalive=30)
        client.loop_start()
        try:
            self._publish_loop(client)
            deadline = time.monotonic() + 30
            while self._acked < self.stats.published and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            self.stats.acked = self._acked
            client.disconnect()
            client.loop_stop()
        return self.stats

    def _publish_loop(self, client: Any) -> None:
        s, fleet, st = self.settings, self.fleet, self.stats
        n = len(fleet)
        rng = random.Random(s.sim_seed + 7)
        topics = [
            s.sim_topic.format(site=fleet.sites[i], device=d, metric=s.sim_metric)
            for i, d in enumerate(fleet.device_ids)
        ]
        per_msg_s = 0.0 if s.sim_as_fast_as_possible else self.interval_ms / 1000 / n
        window = 5000  # unacknowledged publishes before waiting for the broker
        start = time.monotonic()
        stop_at = start + s.sim_duration / 1000 if s.sim_duration else None
        progress_s = s.sim_progress / 1000
        next_progress = start + progress_s if progress_s else None
        j = 0
        while not self._stopping.is_set():
            now = time.monotonic()
            if stop_at is not None and now >= stop_at:
                break
            if s.sim_count is not None and st.published >= s.sim_count:
                break
            if next_progress is not None and now >= next_progress:
                self._progress(now - start)
                next_progress += progress_s
            if per_msg_s:
                due = int((now - start) / per_msg_s) + 1
                if j >= due:
                    time.sleep(min(0.01, (j - due + 1) * per_msg_s))
                    continue
            if st.published - self._acked > window:
                time.sleep(0.001)
                continue
            burst = 500 if not per_msg_s else min(500, due - j)
            ts = now_ms()
            for _ in range(burst):
                i, tick = j % n, j // n
                j += 1
                value, _fault = fleet.value(i, tick)
                if value is None:
                    st.skipped += 1
                    continue
                if fleet.malformed(i, tick) and rng.random() < s.sim_malformed_rate:
                    payload = malformed_payload(rng, ts, s.sim_metric, value)
                    st.malformed += 1
                else:
                    payload = reading_payload(ts, s.sim_metric, value)
                client.publish(topics[i], payload, qos=s.sim_qos)
                st.published += 1
                if s.sim_count is not None and st.published >= s.sim_count:
                    break
        st.seconds = time.monotonic() - start
        self._progress(st.seconds)

    def _progress(self, elapsed: float) -> None:
        st = self.stats
        self.echo(
            f"simulate: {st.published} published ({st.published / max(elapsed, 1e-9):,.0f}/s), "
            f"{self._acked} acked by the broker, {st.malformed} malformed, "
            f"{st.skipped} dropout ticks, {elapsed:.1f}s"
        )
