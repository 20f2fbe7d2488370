"""One model location: train, evaluate, batch, the processor and the demo agree on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from iotml.core.options import build_settings
from iotml.demo import DemoSettings
from models.settings import BatchSettings, EvaluateSettings, RegistrySettings, TrainSettings
from processor.settings import ProcessorSettings


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for var in ("IOTML_MODEL_REGISTRY", "IOTML_MODEL_NAME", "IOTML_GRACE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "iotml"


def test_every_command_defaults_to_one_registry_under_the_data_home(data_home: Path) -> None:
    classes = (
        TrainSettings,
        EvaluateSettings,
        BatchSettings,
        RegistrySettings,
        ProcessorSettings,
        DemoSettings,
    )
    registries = {build_settings(cls, {}).model_registry for cls in classes}
    assert registries == {data_home / "models"}


def test_train_processor_and_evaluate_share_the_default_name(data_home: Path) -> None:
    names = {build_settings(c, {}).model_name for c in (TrainSettings, ProcessorSettings)}
    assert names == {build_settings(EvaluateSettings, {}).model_name}


def test_the_demo_keeps_its_short_window_model_under_its_own_name(data_home: Path) -> None:
    assert build_settings(DemoSettings, {}).model_name == "demo"


def test_grace_comes_from_the_manifest_unless_overridden(data_home: Path) -> None:
    assert build_settings(ProcessorSettings, {}).grace is None
    assert build_settings(BatchSettings, {}).grace is None
    assert build_settings(ProcessorSettings, {"grace": "2s"}).grace == 2000


@pytest.mark.slow
def test_a_model_trained_with_no_flags_is_the_one_the_processor_loads(data_home: Path) -> None:
    from models.cli import train
    from processor.metrics import Metrics
    from processor.model import ModelHolder

    args = ["--input", "synthetic://devices=2,duration=2h,step=30s", "--window", "2m"]
    args += ["--horizon", "4m", "--k", "2", "--epochs", "2", "--grace", "1s"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    s = build_settings(ProcessorSettings, {})
    holder = ModelHolder(s.model_registry, s.model_name, Metrics())
    holder.poll()
    model = holder.current
    assert model is not None and model.version == result.stdout.strip()
    assert model.grace_ms == 1000
