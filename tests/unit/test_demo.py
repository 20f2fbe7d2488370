"""The demo trains a model only when the registry has none."""

from __future__ import annotations

from iotml.demo import needs_model
from tests.model_fixtures import train_tiny_artifact


def test_demo_trains_only_when_the_registry_has_no_model(tmp_path):
    assert needs_model(tmp_path, "temp")
    train_tiny_artifact(tmp_path, name="temp")
    assert not needs_model(tmp_path, "temp")
