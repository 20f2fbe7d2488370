"""docker-compose.yml is valid and runs the pipeline as the README says, checked statically
(`make compose-test` runs it for real)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.compose_test import check
from tests.shared_data import REPO, need_shared

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_specification(compose):
    spec = json.loads(need_shared("schemas/compose-spec/compose-spec.json").read_text())
    jsonschema.Draft7Validator(spec).validate(compose)


def test_the_cli_accepts_every_service_command_and_iotml_variable(compose):
    assert check.problems(compose) == []


def test_each_image_is_built_once_by_one_service_from_its_target(compose):
    builds = {}
    for name, svc in compose["services"].items():
        if "build" in svc:
            assert svc["image"] not in builds, f"{svc['image']} is built by two services"
            builds[svc["image"]] = (svc["build"]["target"], name)
    images = {svc["image"] for svc in check.iotml_services(compose).values()}
    assert set(builds) == images
    assert builds["iotml-slim:latest"][0] == "slim" and builds["iotml:latest"][0] == "full"


def test_every_long_running_service_has_a_stop_grace_period(compose):
    # Compose against Podman's API stops with a timeout of 0 (SIGKILL) unless one is given.
    for name, svc in compose["services"].items():
        if svc.get("restart", "no") != "no" or name in ("kafka", "mosquitto"):
            assert "stop_grace_period" in svc, f"service {name} has no stop_grace_period"


def test_processor_is_scalable(compose):
    processor = compose["services"]["processor"]
    assert "container_name" not in processor
    assert not processor.get("ports"), "a fixed host port would clash across replicas"


def test_trainer_runs_on_plain_up_and_processor_waits_for_it(compose):
    assert "profiles" not in compose["services"]["trainer"]
    deps = compose["services"]["processor"]["depends_on"]
    assert deps["trainer"]["condition"] == "service_completed_successfully"


def test_kafka_internal_topics_have_replication_factor_one_and_a_host_listener(compose):
    env = compose["services"]["kafka"]["environment"]
    assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "1"
    assert str(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == "1"
    assert str(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == "1"
    assert "localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert any(str(p).startswith("9092:") for p in compose["services"]["kafka"]["ports"])


def test_depends_on_names_existing_services(compose):
    services = set(compose["services"])
    for name, svc in compose["services"].items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_readings_topic_has_partitions_for_several_processors(compose):
    env = compose["services"]["topics"]["environment"]
    assert int(env.get("IOTML_READINGS_PARTITIONS", 4)) >= 4


def test_mosquitto_config_raises_queue_and_inflight_limits():
    conf = (REPO / "deploy" / "mosquitto.conf").read_text()
    assert re.search(r"^persistence true", conf, re.M)
    assert int(re.search(r"^max_queued_messages (\d+)", conf, re.M).group(1)) > 1000
    assert int(re.search(r"^max_inflight_messages (\d+)", conf, re.M).group(1)) > 20


def test_build_context_is_an_allowlist_that_keeps_data_out():
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded unless let in"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "iotml",
        "bridge",
        "processor",
        "models",
        "dashboard",
        "deploy/docker/pip-ca",
    }
    assert not list(Path(REPO).glob("**/machine_temperature_system_failure.csv"))
