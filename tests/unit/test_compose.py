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
    assert set(builds) == check.images(compose)
    assert builds["iotml-slim:latest"][0] == "slim" and builds["iotml:latest"][0] == "full"
    assert builds["iotml-batch:latest"] == ("batch", "archive")  # on plain `up`
    assert all("profiles" not in compose["services"][name] for _, name in builds.values())


def test_every_long_running_service_has_a_stop_grace_period(compose):
    # Compose against Podman's API stops with a timeout of 0 (SIGKILL) unless one is given.
    for name, svc in compose["services"].items():
        if svc.get("restart", "no") != "no" or name in ("kafka", "mosquitto"):
            assert "stop_grace_period" in svc, f"service {name} has no stop_grace_period"


def test_health_checks_survive_podmans_api(compose):
    # Podman's Docker-compatible API splits a CMD check's arguments at their spaces: a
    # check with an argument holding a space must be CMD-SHELL (one string for the shell).
    for name, svc in compose["services"].items():
        test = svc.get("healthcheck", {}).get("test")
        if isinstance(test, list) and test[0] == "CMD":
            assert not any(" " in arg for arg in test[1:]), f"{name}: use CMD-SHELL"


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


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """Volume -> mount point of a service's named volumes."""
    return {v.split(":")[0]: v.split(":")[1] for v in svc.get("volumes", [])}


def test_archive_runs_on_plain_up_into_the_archive_volume(compose):
    archive = compose["services"]["archive"]
    assert "profiles" not in archive and archive["command"] == ["archive"]
    assert archive["restart"] == "unless-stopped"  # continuous: it runs until stopped
    root = _mounts(archive)["archive"]
    assert archive["environment"]["IOTML_ARCHIVE_DIR"].startswith(root + "/")
    assert archive["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert archive["healthcheck"] == {"disable": True}  # it serves no HTTP
    assert "archive" in compose["volumes"]


def test_the_batch_profile_is_a_scheduler_and_two_workers_of_1_gib(compose):
    services = compose["services"]
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["profiles"] == worker["profiles"] == ["batch"]
    assert [n for n, s in services.items() if "batch" in s.get("profiles", [])] == [
        "dask-scheduler",
        "dask-worker",
    ]
    assert scheduler["entrypoint"] == worker["entrypoint"] == ["dask"]
    assert scheduler["image"] == worker["image"] == "iotml-batch:latest"
    assert worker["deploy"]["replicas"] == 2
    assert worker["deploy"]["resources"]["limits"]["memory"] == "1G"
    command = worker["command"]
    assert command[:2] == ["worker", "tcp://dask-scheduler:8786"]
    assert command[command.index("--memory-limit") + 1] == "1GiB"
    assert command[command.index("--nthreads") + 1] == "1"
    assert scheduler["command"][scheduler["command"].index("--port") + 1] == "8786"
    assert scheduler["ports"] == ["127.0.0.1:8788:8787"]  # the dashboard, on localhost only
    assert "container_name" not in worker and not worker.get("ports")  # two replicas
    for svc in (scheduler, worker):
        assert "/health" in " ".join(svc["healthcheck"]["test"])


def test_the_replay_runs_on_the_cluster_and_writes_into_the_archive_volume(compose):
    services = compose["services"]
    replay, worker = services["replay"], services["dask-worker"]
    # not in `batch`: `--profile batch up` starts the cluster without replaying
    assert replay["profiles"] == ["replay"] and replay["restart"] == "no"
    assert replay["command"] == [
        "batch",
        "--engine",
        "dask",
        "--dask-scheduler",
        "tcp://dask-scheduler:8786",
    ]
    env = replay["environment"]
    root = _mounts(replay)["archive"]
    assert env["IOTML_INPUT"] == services["archive"]["environment"]["IOTML_ARCHIVE_DIR"]
    assert env["IOTML_OUTPUT"].startswith(root + "/") and env["IOTML_OUTPUT"] != env["IOTML_INPUT"]
    # tasks open the archive, the registry and the output at the client's paths
    assert _mounts(worker) == _mounts(replay) == {"archive": root, "models": "/models"}
    assert env["IOTML_MODEL_REGISTRY"] == "/models"
    assert env["IOTML_MODEL_NAME"] == services["processor"]["environment"]["IOTML_MODEL_NAME"]
    assert replay["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"
    assert "dask-worker" in replay["depends_on"]
    # the link it prints is the dashboard as the scheduler publishes it on the host
    host, port, _ = services["dask-scheduler"]["ports"][0].split(":")
    assert env["DASK_DISTRIBUTED__DASHBOARD__LINK"] == f"{{scheme}}://{host}:{port}/status"


def test_the_batch_image_has_dask_and_no_tensorflow():
    stages = re.split(r"^FROM ", (REPO / "Dockerfile").read_text(), flags=re.M)
    batch = next(s for s in stages if s.startswith("base AS batch"))
    installs = re.findall(r'pip-ca install --quiet "([^"]+)"', batch)
    assert installs == [".[dask]"]
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    dask = extras["optional-dependencies"]["dask"]
    assert any(d.startswith("distributed") for d in dask)
    assert not any("tensorflow" in d or "keras" in d for d in extras["dependencies"] + dask)
    assert "chown iotml:iotml /archive" in batch  # the archive volume starts out writable
    # the workers' Arrow memory on the C heap, no profiler (models.distributed._memory)
    from models.distributed._memory import WORKER_CONFIG, WORKER_ENV

    env = dict(re.findall(r"(\w+)=(\S+)", batch.split("\nENV ", 1)[1].split("\n\n")[0]))
    for name, value in WORKER_ENV.items():
        assert env[name] == value
    for key, value in WORKER_CONFIG.items():
        assert env["DASK_" + key.upper().replace(".", "__")] == str(value)


def test_the_readme_and_the_compose_file_give_the_replays_one_line():
    line = "docker compose --profile batch run --rm replay"
    assert line in COMPOSE.read_text()
    assert line in (REPO / "README.md").read_text()


def test_the_project_name_that_needs_compose_v2_is_in_the_file_and_the_readme(compose):
    # the README tells users they need Compose v2 because of the top-level `name:` (the
    # compose test passes --project-name, which would hide its absence)
    assert compose.get("name") == "iotml"
    readme = (REPO / "README.md").read_text()
    assert "Compose v2" in readme and "`name:`" in readme
