"""The processor's model holder: readiness without a model, swaps, refusals."""

from __future__ import annotations

from pathlib import Path

from models import Registry
from processor.metrics import Metrics
from processor.model import ModelHolder
from tests.model_fixtures import train_tiny_artifact


def test_without_a_model_the_holder_is_not_ready_and_says_why(tmp_path: Path):
    holder = ModelHolder(tmp_path / "empty", "tiny", Metrics())
    assert holder.poll() is None
    ready, reason = holder.ready()
    assert not ready and "no model yet" in reason and "tiny" in reason


def test_loads_swaps_and_refuses_broken_or_incompatible_versions(tmp_path: Path):
    reg = tmp_path / "reg"
    v1 = train_tiny_artifact(reg, name="tiny", window="10s", horizon="20s")
    metrics = Metrics()
    holder = ModelHolder(reg, "tiny", metrics, silence_ms=5000)
    model = holder.poll()
    assert model is not None and model.version == v1 and model.params.silence_ms == 5000
    assert holder.ready() == (True, f"model tiny {v1}")

    v2 = train_tiny_artifact(reg, name="tiny", window="10s", horizon="20s", seed=3)
    assert holder.poll().version == v2  # type: ignore[union-attr]

    other = train_tiny_artifact(reg, name="tiny", window="20s", horizon="40s")
    assert holder.poll().version == v2  # type: ignore[union-attr]
    (Registry(reg).path("tiny", other) / "model.keras").write_bytes(b"garbage")

    Registry(reg).promote("tiny", v1)  # rollback
    assert holder.poll().version == v1  # type: ignore[union-attr]
    assert metrics.model_reloads.labels("incompatible")._value.get() == 1
