"""The configuration reference in the README, generated from the settings classes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic_settings import BaseSettings

from iotml.core.options import markdown_reference


def _settings_classes() -> Iterator[tuple[str, type[BaseSettings]]]:
    """(title, settings class) per command; packages not installed are skipped."""
    from iotml.core.topics import TopicsSettings
    from iotml.stack.settings import StackSettings

    yield "iotml stack", StackSettings
    yield "iotml topics", TopicsSettings
    try:
        from bridge.egress.settings import EgressSettings
        from bridge.settings import BridgeSettings, SimulatorSettings

        yield "iotml bridge", BridgeSettings
        yield "iotml simulate", SimulatorSettings
        yield "iotml egress", EgressSettings
    except ModuleNotFoundError:
        pass
    try:
        from processor.settings import ProcessorSettings

        yield "iotml processor", ProcessorSettings
    except ModuleNotFoundError:
        pass
    try:
        from dashboard.settings import DashboardSettings

        yield "iotml dashboard", DashboardSettings
    except ModuleNotFoundError:
        pass
    try:
        from models.settings import (
            ArchiveSettings,
            BatchSettings,
            EvaluateSettings,
            RegistrySettings,
            RetrainSettings,
            TrainSettings,
        )

        yield "iotml train", TrainSettings
        yield "iotml evaluate", EvaluateSettings
        yield "iotml models", RegistrySettings
        yield "iotml batch", BatchSettings
        yield "iotml archive", ArchiveSettings
        yield "iotml retrain", RetrainSettings
    except ModuleNotFoundError:
        pass
    from iotml.demo import DemoSettings

    yield "iotml demo", DemoSettings


BEGIN = "<!-- BEGIN CONFIG REFERENCE (generated: iotml config-reference) -->"
END = "<!-- END CONFIG REFERENCE -->"


def render_reference() -> str:
    return "\n".join(markdown_reference(title, cls) for title, cls in _settings_classes())


def write_readme_reference(readme: Path | None = None) -> Path:
    """Replace the generated section of the README (between the markers) in place."""
    path = readme or Path(__file__).resolve().parents[1] / "README.md"
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n\n{render_reference().strip()}\n\n{END}{tail}")
    return path
