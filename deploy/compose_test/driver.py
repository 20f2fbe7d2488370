"""The compose test: ``docker-compose.yml`` brought up on a real engine, checked end to end.

Static pre-check, build, ``up -d``, the first prediction and the first alert on the host's
Kafka (the EXTERNAL listener the README's consumers use), egress's retained alerts,
forecasts and discovery configs on the host's Mosquitto, ``--scale processor=3`` with the
readings partitions shared by three consumer-group members and predictions continuing,
the retrainer's first decision, the README's ``docker compose exec kafka ...`` consumer, a
graceful ``stop``, then ``down -v`` whatever happened, with a check that nothing of the
project is left (:mod:`deploy.compose_test.service_checks` for egress and the retrainer).

``run.sh`` (``make compose-test``) prepares the engine and calls this with the Compose
binary; the engine is reached through ``DOCKER_HOST``.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from deploy.compose_test import ca, check, service_checks
from deploy.compose_test.healthchecks import HealthcheckRunner
from deploy.compose_test.kafka_checks import (
    ALERTS,
    BOOTSTRAP,
    PREDICTIONS,
    NotSeen,
    Outputs,
    partitions_per_member,
)

REPO = Path(__file__).resolve().parents[2]
REPLICAS = 3


class Failed(Exception):
    """The compose test failed; the message says what and where."""


def say(message: str) -> None:
    print(f"compose-test: {message}", flush=True)


@dataclass
class Compose:
    binary: str
    files: list[Path]
    project: str

    def run(
        self,
        *args: str,
        timeout: float,
        capture: bool = False,
        check: bool = True,
        parallel: int = -1,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--project-name", self.project, "--progress", "plain"]
        cmd += ["--parallel", str(parallel)]
        cmd += ["--project-directory", str(REPO)]  # a copy of the file elsewhere builds here too
        for f in self.files:
            cmd += ["--file", str(f)]
        try:
            proc = subprocess.run(
                [*cmd, *args], timeout=timeout, text=True, capture_output=capture, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Failed(f"`compose {' '.join(args)}` took more than {timeout:.0f}s") from exc
        if check and proc.returncode != 0:
            detail = (proc.stdout or "") + (proc.stderr or "") if capture else ""
            raise Failed(f"`compose {' '.join(args)}` exited {proc.returncode}\n{detail[-3000:]}")
        return proc


@dataclass
class Report:
    timings: dict[str, float] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - start

    def print(self) -> None:
        for name, seconds in self.timings.items():
            say(f"time  {name:<28} {seconds:7.1f} s")
        for name, value in self.figures.items():
            say(f"{name:<34} {value}")


def published_ports(compose: dict[str, Any]) -> dict[int, str]:
    ports = {}
    for name, svc in compose["services"].items():
        for spec in svc.get("ports", []):
            host = str(spec).split(":")[-2] if ":" in str(spec) else None
            if host:
                ports[int(host)] = name
    return ports


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def image_sizes(compose: dict[str, Any]) -> dict[str, str]:
    images = sorted({str(svc["image"]) for svc in compose["services"].values() if "image" in svc})
    sizes = {}
    for image in images:
        out = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Size}}", image],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        sizes[image] = f"{int(out) / 1e6:,.0f} MB" if out.isdigit() else "?"
    return sizes


def leftovers(project: str) -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    found = []
    for kind in ("container", "network", "volume"):
        cmd = ["podman", kind, "ls", "--quiet", "--filter", label]
        if kind == "container":
            cmd.insert(3, "--all")
        ids = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.split()
        found += [f"{kind} {i[:12]}" for i in ids]
    return found


def run(compose: Compose, spec: dict[str, Any], report: Report) -> None:
    with report.timed("build"):
        # One image after the other: two builds at once on a cold cache each make their own
        # copy of the shared base layers, and the next run misses the cache.
        compose.run("build", timeout=1800, parallel=1)
    report.figures.update({f"image {k}": v for k, v in image_sizes(spec).items()})

    up_start = time.monotonic()
    with report.timed("up -d (until it returns)"):
        compose.run("up", "--detach", timeout=900)
    outputs = Outputs()
    try:
        outputs.wait("prediction", lambda: outputs.predictions, timeout=300)
        first = outputs.predictions[0][2]
        report.timings["first prediction after up"] = outputs.first_seen[PREDICTIONS] - up_start
        say(f"first prediction: {first['device_id']} forecast {first['forecast']:.2f}")
        outputs.wait("alert", lambda: outputs.alerts, timeout=420)
        alert = outputs.alerts[0]
        report.timings["first alert after up"] = outputs.first_seen[ALERTS] - up_start
        say(f"first alert: {alert['device_id']} {alert['type']} {alert['event']}")
        with report.timed("egress: alert state on MQTT"):
            report.figures.update(service_checks.check_egress())
        with report.timed("dashboard: page and fleet snapshot"):
            report.figures.update(service_checks.check_dashboard())

        devices = {v["device_id"] for _, _, v in outputs.predictions}
        before = _running_ids(compose)
        with report.timed(f"scale processor={REPLICAS}"):
            # The README's command; --no-recreate because Compose compares network IDs that
            # Podman 4's Docker API reports as names, and would recreate every container.
            compose.run(
                "up",
                "--detach",
                "--scale",
                f"processor={REPLICAS}",
                "--no-recreate",
                timeout=600,
            )
        after_ids = _running_ids(compose)
        restarted = sorted(
            name
            for name, cid in before.items()
            if name != "processor" and after_ids.get(name) != cid
        )
        if restarted:
            raise Failed(f"scaling the processor restarted {', '.join(restarted)}")
        group = spec["services"]["processor"]["environment"].get(
            "IOTML_CONSUMER_GROUP", "iotml-processor"
        )
        partitions = int(
            spec["services"]["topics"]["environment"].get("IOTML_READINGS_PARTITIONS", 4)
        )
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        split = None
        with report.timed(f"rebalance to {REPLICAS} members"):
            deadline = time.monotonic() + 300
            while True:
                outputs.poll(3.0)
                try:
                    split = partitions_per_member(admin, group, "readings")
                except KafkaException:
                    split = None
                shared = sorted(p for ps in split or [] for p in ps)
                if split and len(split) == REPLICAS and shared == list(range(partitions)):
                    break
                if time.monotonic() > deadline:
                    raise Failed(
                        f"consumer group {group}: readings partitions per member {split} after "
                        f"300s; wanted {REPLICAS} members sharing all {partitions}"
                    )
        report.figures["readings partitions per processor"] = (
            "/".join(str(len(ps)) for ps in sorted(split or [], key=len, reverse=True))
            + f" ({' '.join(map(str, split or []))})"
        )

        after = outputs.end_offsets()
        with report.timed("predictions for every device"):
            outputs.wait(
                "prediction for every device after scaling",
                lambda: (
                    devices
                    <= {v["device_id"] for p, o, v in outputs.predictions if o >= after.get(p, 0)}
                ),
                timeout=180,
            )
    finally:
        outputs.close()

    with report.timed("retrainer: first decision"):
        report.figures.update(
            service_checks.check_retrainer(
                lambda service, *args: (
                    compose.run("exec", "-T", service, *args, timeout=180, capture=True).stdout
                )
            )
        )

    # The README's other way to read the alerts, bounded so that it ends.
    with report.timed("README's exec consumer"):
        out = compose.run(
            "exec",
            "-T",
            "kafka",
            "/opt/kafka/bin/kafka-console-consumer.sh",
            "--bootstrap-server",
            "localhost:9092",
            "--topic",
            ALERTS,
            "--from-beginning",
            "--max-messages",
            "1",
            "--timeout-ms",
            "60000",
            timeout=120,
            capture=True,
        ).stdout
        if '"alert_id"' not in out:
            raise Failed(f"`docker compose exec kafka kafka-console-consumer.sh` printed {out!r}")


def stop(compose: Compose, report: Report) -> None:
    """``compose stop``: every service must end within its grace period, not by SIGKILL."""
    with report.timed("stop"):
        compose.run("stop", timeout=300)
    states = _ps(compose)
    killed = [s["Name"] for s in states if s.get("ExitCode") in (137, -1)]
    report.figures["stopped by SIGKILL"] = ", ".join(killed) or "none"
    if killed:
        raise Failed(f"not stopped within the grace period (SIGKILL): {', '.join(killed)}")


def _running_ids(compose: Compose) -> dict[str, str]:
    """Service -> container ID of the running single-container services."""
    ids: dict[str, list[str]] = {}
    for c in _ps(compose):
        if c.get("State") == "running":
            ids.setdefault(c["Service"], []).append(c["ID"])
    return {name: cids[0] for name, cids in ids.items() if len(cids) == 1}


def _ps(compose: Compose) -> list[dict[str, Any]]:
    out = compose.run("ps", "--all", "--format", "json", timeout=60, capture=True).stdout
    out = out.strip()
    if out.startswith("["):
        return list(json.loads(out))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compose-bin", required=True, help="the Compose v2 binary")
    ap.add_argument("--file", type=Path, default=Path("docker-compose.yml"))
    ap.add_argument("--project", default="iotml-compose-test")
    ap.add_argument(
        "--ca-bundle",
        type=Path,
        default=Path(ssl.get_default_verify_paths().cafile or "/nonexistent"),
        help="the image builds trust those of its certificates pip does not "
        "(default: the host's bundle)",
    )
    args = ap.parse_args(argv)
    # SIGTERM (a CI timeout) ends the test through the same `down -v` as a failure.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    spec = check.load(args.file)
    problems = check.problems(spec)
    if problems:
        for problem in problems:
            say(f"FAIL {args.file}: {problem}")
        return 1
    busy = {p: s for p, s in published_ports(spec).items() if port_in_use(p)}
    if busy:
        for port, service in busy.items():
            say(f"FAIL port {port} (published by service {service}) is in use on this machine")
        return 1

    report = Report()
    with tempfile.TemporaryDirectory(prefix="iotml-compose-test-") as tmp:
        files = [args.file]
        pem = ""
        if args.ca_bundle.is_file():
            pem = ca.extra_certs(args.ca_bundle, ca.base_image(REPO / "Dockerfile"))
        if pem:
            # A build argument becomes an environment variable of the build's commands,
            # and Linux caps one at 128 KiB: the host's whole bundle would not fit.
            count = pem.count("BEGIN")
            say(f"build: EXTRA_CA_CERTS = the {count} certificates pip in the base image lacks")
            files.append(ca.ca_override(spec, pem, Path(tmp)))
        compose = Compose(args.compose_bin, files, args.project)
        failure: str | None = None
        compose.run("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        try:
            with HealthcheckRunner(args.project):
                run(compose, spec, report)
            # With no health check running: one cut off by the stop would leave its exec
            # session's conmon behind for minutes.
            stop(compose, report)
        except Exception as exc:
            expected = isinstance(exc, (Failed, NotSeen, service_checks.Wrong, KafkaException))
            failure = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            if not expected:
                traceback.print_exc()
            compose.run("ps", "--all", timeout=60, check=False)
            compose.run("logs", "--no-color", "--tail", "30", timeout=120, check=False)
        finally:
            with report.timed("down -v"):
                compose.run("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        left = leftovers(args.project)
        if left:
            failure = (failure + "; " if failure else "") + f"left behind: {', '.join(left)}"
    report.print()
    if failure:
        say(f"FAIL {failure}")
        return 1
    say("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
