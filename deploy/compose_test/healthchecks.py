"""Runs the health checks of a compose project's containers, for engines that do not.

Podman schedules health checks with systemd timers; without systemd no check ever runs,
containers stay ``starting`` and every ``depends_on: condition: service_healthy`` waits
forever. This thread plays the scheduler: each running container's check runs ``interval``
after the container started and every ``interval`` after that, as Docker runs them.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field


@dataclass
class _Probe:
    interval: float
    due: float
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class HealthcheckRunner:
    project: str
    tick: float = 1.0
    _probes: dict[str, _Probe] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthcheckRunner:
        self._thread = threading.Thread(target=self._run, name="healthchecks", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for probe in self._probes.values():
            if probe.proc is None:
                continue
            try:  # a killed `healthcheck run` would leave its exec session's conmon behind
                probe.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                probe.proc.kill()
                probe.proc.wait()

    def _running(self) -> list[str]:
        out = subprocess.run(
            [
                "podman",
                "ps",
                "--quiet",
                "--no-trunc",
                "--filter",
                "status=running",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return out.split()

    def _probe_for(self, cid: str) -> _Probe | None:
        out = subprocess.run(
            ["podman", "inspect", "--format", "{{json .Config.Healthcheck}}", cid],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        check = json.loads(out) if out and out != "null" else None
        if not check or not check.get("Test") or check["Test"][0] == "NONE":
            return None
        interval = (check.get("Interval") or 30_000_000_000) / 1e9
        return _Probe(interval=interval, due=time.monotonic() + interval)

    def _run(self) -> None:
        unchecked: set[str] = set()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            for cid in self._running():
                if cid in unchecked:
                    continue
                probe = self._probes.get(cid)
                if probe is None:
                    probe = self._probe_for(cid)
                    if probe is None:
                        unchecked.add(cid)
                        continue
                    self._probes[cid] = probe
                busy = probe.proc is not None and probe.proc.poll() is None
                if not busy and now >= probe.due:
                    probe.proc = subprocess.Popen(
                        ["podman", "healthcheck", "run", cid],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    probe.due = now + probe.interval
