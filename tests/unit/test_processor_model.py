"""The processor's model holder: readiness without a model, swaps, refusals."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from models import Registry
from processor.metrics import Metrics
from processor.model import ModelHolder
from tests.model_fixtures import train_tiny_artifact

RELOADS = "iotml_processor_model_reloads_total"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with one version of ``tiny`` (10 s windows), trained once."""
    reg = tmp_path_factory.mktemp("trained")
    train_tiny_artifact(reg, name="tiny", window="10s", horizon="20s")
    return reg


@pytest.fixture
def reg(trained: Path, tmp_path: Path) -> Path:
    """A copy of ``trained`` the test may publish into."""
    return Path(shutil.copytree(trained, tmp_path / "reg"))


def reloads(metrics: Metrics, result: str) -> float | None:
    return metrics.registry.get_sample_value(RELOADS, {"result": result})


def test_without_a_model_the_holder_is_not_ready_and_says_why(tmp_path: Path):
    holder = ModelHolder(tmp_path / "empty", "tiny", Metrics())
    assert holder.poll() is None
    ready, reason = holder.ready()
    assert not ready and "no model yet" in reason and "tiny" in reason


def test_the_published_version_is_loaded_with_the_silence_override(reg: Path):
    metrics = Metrics()
    holder = ModelHolder(reg, "tiny", metrics, silence_ms=5000)
    model = holder.poll()
    assert model is not None and model.version == "v0001" and model.params.silence_ms == 5000
    assert holder.ready() == (True, "model tiny v0001")
    assert reloads(metrics, "loaded") == 1
    info = {"name": "tiny", "version": "v0001"}
    assert metrics.registry.get_sample_value("iotml_processor_model_info", info) == 1


def test_a_new_version_and_a_rollback_are_swapped_in(reg: Path):
    metrics = Metrics()
    holder = ModelHolder(reg, "tiny", metrics)
    holder.poll()
    v2 = train_tiny_artifact(reg, name="tiny", window="10s", horizon="20s", seed=3)
    assert holder.poll().version == v2  # type: ignore[union-attr]
    Registry(reg).promote("tiny", "v0001")
    assert holder.poll().version == "v0001"  # type: ignore[union-attr]
    assert reloads(metrics, "swapped") == 2
    old = {"name": "tiny", "version": v2}
    assert metrics.registry.get_sample_value("iotml_processor_model_info", old) is None


def test_an_incompatible_version_is_refused_and_the_running_one_keeps_serving(
    reg: Path, caplog: pytest.LogCaptureFixture
):
    metrics = Metrics()
    holder = ModelHolder(reg, "tiny", metrics)
    holder.poll()
    other = train_tiny_artifact(reg, name="tiny", window="20s", horizon="40s")
    with caplog.at_level(logging.ERROR, logger="processor.model"):
        assert holder.poll().version == "v0001"  # type: ignore[union-attr]
    assert holder.ready() == (True, "model tiny v0001")
    assert reloads(metrics, "incompatible") == 1
    assert f"tiny {other} refused: is incompatible with running v0001" in caplog.text
    assert "Restart the processor" in caplog.text


def test_a_broken_version_is_refused_once_and_the_running_one_keeps_serving(
    reg: Path, caplog: pytest.LogCaptureFixture
):
    metrics = Metrics()
    holder = ModelHolder(reg, "tiny", metrics)
    holder.poll()
    broken = train_tiny_artifact(reg, name="tiny", window="10s", horizon="20s", seed=3)
    (Registry(reg).path("tiny", broken) / "dense.npz").write_bytes(b"garbage")
    with caplog.at_level(logging.ERROR, logger="processor.model"):
        assert holder.poll().version == "v0001"  # type: ignore[union-attr]
        assert holder.poll().version == "v0001"  # type: ignore[union-attr]
    assert holder.ready() == (True, "model tiny v0001")
    assert reloads(metrics, "broken") == 1
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert f"tiny {broken} refused: cannot be loaded" in refusals[0].getMessage()
    assert "(running: v0001)" in refusals[0].getMessage()
