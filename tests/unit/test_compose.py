"""docker-compose.yml is valid and runs the pipeline as the README says (checked statically:
no Docker engine runs on CI machines)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from iotml.cli import cli
from tests.shared_data import REPO, need_shared

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _iotml_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if str(svc.get("image", "")).startswith("iotml")
    }


def _resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """The iotml (sub)command that ``args`` names, and the rest of the arguments."""
    command: click.Command = cli
    ctx = click.Context(cli)
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"iotml has no command {args[0]!r}"
        command, args = sub, args[1:]
    return command, args


def test_compose_file_matches_the_compose_specification(compose):
    spec = json.loads(need_shared("schemas/compose-spec/compose-spec.json").read_text())
    jsonschema.Draft7Validator(spec).validate(compose)


def test_every_service_command_is_accepted_by_the_cli(compose):
    for name, svc in _iotml_services(compose).items():
        command, rest = _resolve(list(svc["command"]))
        try:
            command.make_context(name, rest)
        except click.exceptions.UsageError as exc:  # pragma: no cover - message for humans
            pytest.fail(f"service {name}: `iotml {' '.join(svc['command'])}` rejected: {exc}")


def test_every_iotml_variable_is_a_setting_of_its_command(compose):
    for name, svc in _iotml_services(compose).items():
        command, _ = _resolve(list(svc["command"]))
        accepted = {f"IOTML_{p.name.upper()}" for p in command.params if p.name}
        for var in svc.get("environment", {}):
            if var.startswith("IOTML_"):
                assert var in accepted, f"service {name}: {var} is not a setting of its command"


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


def test_nab_data_stays_out_of_the_image():
    assert "shared" in (REPO / ".dockerignore").read_text()
    assert not list(Path(REPO).glob("**/machine_temperature_system_failure.csv"))
