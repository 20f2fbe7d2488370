"""The compose test: ``docker-compose.yml`` brought up on a real engine, checked end to end.

Static pre-check, build, ``up -d``, the first prediction and the first alert on the host's
Kafka (the EXTERNAL listener the README's consumers use), egress's retained alerts,
forecasts and discovery configs on the host's Mosquitto, ``--scale processor=3`` with the
readings partitions shared by three consumer-group members and predictions continuing,
the retrainer's first decision, the README's replay of the archive on the ``batch``
profile's Dask cluster, the README's ``docker compose exec kafka ...`` consumer, a
graceful ``stop``, then ``down -v`` whatever happened, with a check that nothing of the
project is left (:mod:`deploy.compose_test.service_checks` for egress and the retrainer,
:mod:`deploy.compose_test.batch_checks` for the batch path).

``run.sh`` (``make compose-test``) prepares the engine and calls this with the Compose
binary; the engine is reached through ``DOCKER_HOST``.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from deploy.compose_test import batch_checks, ca, check, service_checks
from deploy.compose_test.compose import REPO, Compose, Failed, Report, say
from deploy.compose_test.engine_state import (
    image_sizes,
    leftovers,
    port_in_use,
    ps,
    published_ports,
    running_ids,
)
from deploy.compose_test.healthchecks import HealthcheckRunner
from deploy.compose_test.kafka_checks import (
    ALERTS,
    BOOTSTRAP,
    PREDICTIONS,
    NotSeen,
    Outputs,
    partitions_per_member,
)

REPLICAS = 3


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
        before = running_ids(compose)
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
        after_ids = running_ids(compose)
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

    before = running_ids(compose)
    with report.timed("batch: replay on Dask"):
        # The README's one line: the batch profile's cluster, then the archive replayed on it.
        batch = compose.with_profiles("batch")
        report.figures.update(batch_checks.check_batch(batch.run, compose.project))
    moved = sorted(n for n, cid in before.items() if running_ids(compose).get(n) != cid)
    if moved:
        raise Failed(f"the batch profile's replay restarted {', '.join(moved)}")

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
    states = ps(compose)
    killed = [s["Name"] for s in states if s.get("ExitCode") in (137, -1)]
    report.figures["stopped by SIGKILL"] = ", ".join(killed) or "none"
    if killed:
        raise Failed(f"not stopped within the grace period (SIGKILL): {', '.join(killed)}")


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
        everything = compose.with_profiles("*")  # stop, logs and down: the batch profile too
        failure: str | None = None
        everything.run("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        try:
            with HealthcheckRunner(args.project):
                run(compose, spec, report)
            # With no health check running: one cut off by the stop would leave its exec
            # session's conmon behind for minutes.
            stop(everything, report)
        except Exception as exc:
            expected = isinstance(exc, (Failed, NotSeen, service_checks.Wrong, KafkaException))
            failure = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            if not expected:
                traceback.print_exc()
            everything.run("ps", "--all", timeout=60, check=False)
            everything.run("logs", "--no-color", "--tail", "30", timeout=120, check=False)
        finally:
            with report.timed("down -v"):
                everything.run("down", "--volumes", "--remove-orphans", timeout=300, check=False)
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
