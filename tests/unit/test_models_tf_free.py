"""A trained artifact runs without TensorFlow: the processor's installation has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import Registry
from models.forecaster import DENSE_FILE
from tests.model_fixtures import train_tiny_artifact

# Makes `import tensorflow` and `import keras` fail, as in an installation without them.
NO_TF = """
import sys
sys.modules["tensorflow"] = None
sys.modules["keras"] = None
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reg = tmp_path_factory.mktemp("registry")
    train_tiny_artifact(reg, name="temp", epochs=2)
    return reg


def _without_tf(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_TF + code], capture_output=True, text=True, timeout=120
    )


def test_a_trained_version_carries_its_weights_in_a_tensorflow_free_form(registry: Path):
    assert (registry / "temp" / "v0001" / DENSE_FILE).exists()


def test_it_loads_and_forecasts_without_tensorflow_exactly_as_with_it(registry: Path):
    artifact = Registry(registry).load("temp")
    assert artifact.forecaster is not None
    X = np.random.default_rng(1).normal(20, 2, size=(8, len(artifact.spec.names())))
    expected = artifact.forecaster.predict(X)
    code = f"""
import numpy as np, sys
from models import Registry
f = Registry({str(registry)!r}).load("temp").forecaster
print(f.mode)
print(repr(f.predict(np.array({X.tolist()!r})).tolist()))
assert "tensorflow" not in [m for m in sys.modules if sys.modules[m] is not None]
"""
    out = _without_tf(code)
    assert out.returncode == 0, out.stderr
    mode, values = out.stdout.splitlines()
    assert mode == "numpy"
    np.testing.assert_allclose(eval(values), expected, rtol=1e-6)


def test_a_version_that_needs_tensorflow_says_which_installation_runs_it(registry: Path):
    version = registry / "temp" / "v0001"
    (version / DENSE_FILE).rename(version / "moved.npz")
    try:
        code = f"""
from models import Registry, ModelError
try:
    Registry({str(registry)!r}).load("temp")
except ModelError as exc:
    print(exc)
"""
        out = _without_tf(code)
    finally:
        (version / "moved.npz").rename(version / DENSE_FILE)
    assert "needs TensorFlow" in out.stdout and "iotml[models]" in out.stdout


def test_a_truncated_weights_file_is_unreadable_or_corrupt(registry: Path, tmp_path: Path):
    import shutil

    from models.errors import UnreadableArtifact

    root = tmp_path / "copy"
    shutil.copytree(registry, root)
    dense = root / "temp" / "v0001" / DENSE_FILE
    dense.write_bytes(dense.read_bytes()[:100])
    with pytest.raises(UnreadableArtifact, match="unreadable or corrupt"):
        Registry(root).load("temp")
