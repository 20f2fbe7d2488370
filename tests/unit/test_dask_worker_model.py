"""The model a Dask worker loads: NumPy inference or a clear refusal, never TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.distributed._model import load_for_worker
from models.errors import ModelError
from models.forecaster import DENSE_FILE
from models.registry import Registry
from tests.model_fixtures import train_tiny_artifact


def test_a_network_without_its_numpy_form_is_refused_before_tensorflow_is_needed(
    tmp_path: Path,
):
    train_tiny_artifact(tmp_path, name="m")
    artifact = load_for_worker(tmp_path, "m", None)  # with its NumPy form: loads
    assert artifact.forecaster is not None
    (Registry(tmp_path).load("m", with_model=False).path / DENSE_FILE).unlink()
    with pytest.raises(ModelError, match=r"no TensorFlow-free form.*--engine local"):
        load_for_worker(tmp_path, "m", None)
