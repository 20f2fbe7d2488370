"""The compose test's static pre-check: a compose file whose service sets an IOTML_* variable
its command does not have fails, naming the service, before any container starts."""

from __future__ import annotations

from pathlib import Path

from deploy.compose_test import batch_checks, check, driver
from tests.shared_data import REPO

COMPOSE = REPO / "docker-compose.yml"


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    text = COMPOSE.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once in docker-compose.yml"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new))
    return broken


def test_the_compose_file_passes_the_check():
    assert check.main([str(COMPOSE)]) == 0


def test_a_misspelt_iotml_variable_fails_the_check_naming_only_its_service(tmp_path, capsys):
    broken = _copy_with(tmp_path, "IOTML_STATE_DIR:", "IOTML_STATEDIR:")
    assert check.main([str(broken)]) == 1
    err = capsys.readouterr().err
    assert "service processor: IOTML_STATEDIR is not a setting of `iotml processor`" in err
    assert err.count("service ") == 1


def test_the_compose_test_fails_on_a_misspelt_variable_before_using_an_engine(tmp_path, capsys):
    broken = _copy_with(tmp_path, "IOTML_READINGS_PARTITIONS:", "IOTML_READING_PARTITIONS:")
    assert driver.main(["--compose-bin", "/nonexistent/compose", "--file", str(broken)]) == 1
    assert "service topics: IOTML_READING_PARTITIONS" in capsys.readouterr().out


def test_a_command_the_cli_rejects_is_reported_with_its_service(tmp_path, capsys):
    broken = _copy_with(tmp_path, 'command: ["bridge"]', 'command: ["bridges"]')
    assert check.main([str(broken)]) == 1
    assert "service bridge: `iotml bridges` is rejected" in capsys.readouterr().err


def test_services_with_another_entrypoint_are_not_checked_as_iotml_commands():
    compose = check.load(COMPOSE)
    names = set(check.iotml_services(compose))
    assert {"archive", "replay"} <= names
    assert not {"dask-scheduler", "dask-worker"} & names  # `dask scheduler`, `dask worker`
    assert "iotml-batch:latest" in check.images(compose)


def test_a_misspelt_variable_of_the_replay_is_reported(tmp_path, capsys):
    broken = _copy_with(tmp_path, "IOTML_OUTPUT:", "IOTML_OUTPUTS:")
    assert check.main([str(broken)]) == 1
    assert "service replay: IOTML_OUTPUTS is not a setting of `iotml batch`" in (
        capsys.readouterr().err
    )


def test_the_compose_test_passes_its_profiles_to_every_command():
    compose = driver.Compose("echo", [COMPOSE], "p")
    assert "--profile" not in compose.run("ps", timeout=10, capture=True).stdout
    everything = compose.with_profiles("*").run("down", timeout=10, capture=True).stdout
    assert "--profile * " in everything and everything.rstrip().endswith(" down")
    assert compose.profiles == ()  # a copy: the plain one keeps starting the default set


def test_the_replays_summary_is_its_last_json_line():
    out = 'Dask dashboard: http://127.0.0.1:8787/status\n{"predictions": 3, "readings": 9}\n'
    assert batch_checks.summary_of(out) == {"predictions": 3, "readings": 9}
