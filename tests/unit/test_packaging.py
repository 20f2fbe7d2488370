"""Services import only what they need: the MQTT edge never loads TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.shared_data import REPO


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_bridge_and_simulator_do_not_import_tensorflow():
    loaded = _modules_after(
        "import bridge.runtime, bridge.simulate, bridge.cli, bridge.simulate_cli, iotml.cli"
    )
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_cli_help_does_not_import_tensorflow():
    loaded = _modules_after(
        "from click.testing import CliRunner\nfrom iotml.cli import cli\n"
        "CliRunner().invoke(cli, ['--help'])"
    )
    assert "tensorflow" not in loaded


def test_bridge_extra_does_not_pull_in_tensorflow():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    edge = project["dependencies"] + project["optional-dependencies"]["bridge"]
    assert not any("tensorflow" in dep or "keras" in dep for dep in edge)


def test_a_command_whose_extra_is_missing_says_what_to_install(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from iotml import cli as cli_module

    (tmp_path / "needs_missing_dep.py").write_text("import not_an_installed_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def load_processor():
        import needs_missing_dep  # noqa: F401

    monkeypatch.setitem(cli_module.COMMANDS, "processor", load_processor)
    runner = CliRunner()
    listing = runner.invoke(cli_module.cli, ["--help"])
    assert listing.exit_code == 0 and 'pip install "iotml[processor]"' in listing.output
    result = runner.invoke(cli_module.cli, ["processor"])
    assert result.exit_code == 1
    assert "not_an_installed_module_xyz" in result.output
