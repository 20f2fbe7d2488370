"""The README's configuration reference is generated from the settings and is current."""

from __future__ import annotations

from iotml.reference import BEGIN, END, render_reference
from tests.shared_data import REPO


def test_config_reference_in_readme_is_current(monkeypatch):
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME"):  # defaults shown relative to ~
        monkeypatch.delenv(var, raising=False)
    text = (REPO / "README.md").read_text()
    assert BEGIN in text and END in text, "README lacks the generated configuration reference"
    current = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert current == render_reference().strip(), (
        "README configuration reference is stale: run `python -m iotml config-reference "
        "--write-readme`"
    )


def test_readme_names_the_two_setup_commands():
    text = (REPO / "README.md").read_text()
    assert "make demo" in text and "make test" in text
