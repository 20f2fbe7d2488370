"""The configuration reference in the README, generated from the settings classes."""

from __future__ import annotations

import importlib
from pathlib import Path

from iotml.core.options import markdown_reference

# title -> "module:SettingsClass"; entries whose package is not installed are skipped.
SETTINGS: dict[str, str] = {
    "iotml stack": "iotml.stack.settings:StackSettings",
    "iotml topics": "iotml.core.topics:TopicsSettings",
    "iotml bridge": "bridge.settings:BridgeSettings",
    "iotml simulate": "bridge.settings:SimulatorSettings",
    "iotml processor": "processor.settings:ProcessorSettings",
    "iotml train": "models.settings:TrainSettings",
    "iotml batch": "models.settings:BatchSettings",
    "iotml archive": "models.settings:ArchiveSettings",
    "iotml demo": "iotml.demo:DemoSettings",
}

BEGIN = "<!-- BEGIN CONFIG REFERENCE (generated: iotml config-reference) -->"
END = "<!-- END CONFIG REFERENCE -->"


def render_reference() -> str:
    parts = []
    for title, target in SETTINGS.items():
        module_name, attr = target.split(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ModuleNotFoundError, AttributeError):
            continue
        parts.append(markdown_reference(title, cls))
    return "\n".join(parts)


def write_readme_reference(readme: Path | None = None) -> Path:
    """Replace the generated section of the README (between the markers) in place."""
    path = readme or Path(__file__).resolve().parents[1] / "README.md"
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n\n{render_reference().strip()}\n\n{END}{tail}")
    return path
