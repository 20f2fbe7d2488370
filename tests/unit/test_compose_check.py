"""The compose test's static pre-check: a compose file whose service sets an IOTML_* variable
its command does not have fails, naming the service, before any container starts."""

from __future__ import annotations

from pathlib import Path

from deploy.compose_test import check, driver
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
