"""The forecaster of an artifact: scaler + Keras network, with a fast batched ``predict``.

The network predicts the change from the window's last value to the value ``horizon``
later, in units of ``target_scale``; :meth:`Forecaster.predict` returns the forecast
itself (``last + delta``). For the small dense networks ``iotml train`` builds, inference
runs the layers' weights in NumPy (a few microseconds per call), which :meth:`load` checks
against Keras on a probe batch; other networks fall back to a ``tf.function`` with a fixed
input signature. ``model.predict()`` is never used on the hot path (~40 ms per call).

Artifacts of such networks also carry their weights in ``dense.npz`` (written at training,
once NumPy and Keras agreed on a probe batch): loading those needs neither TensorFlow nor
Keras, so the processor runs without them. An artifact without it (another network) needs
TensorFlow, and a TensorFlow-free installation says so.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import IncompatibleArtifact, ModelError, UnreadableArtifact

MODEL_FILE = "model.keras"
SCALER_FILE = "scaler.json"
DENSE_FILE = "dense.npz"
_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
}


def tf_threads(n: int = 2) -> None:
    """Limit TensorFlow's thread pools (call before the first TF operation)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        pass  # already initialised: keep the existing pools


def save_scaler(directory: Path, mean: np.ndarray, scale: np.ndarray, target_scale: float) -> None:
    (directory / SCALER_FILE).write_text(
        json.dumps(
            {
                "kind": "standard",
                "mean": [float(x) for x in mean],
                "scale": [float(x) for x in scale],
                "target_scale": float(target_scale),
            }
        ),
        encoding="utf-8",
    )


class Forecaster:
    """``predict(X[n, f]) -> forecasts[n]`` for rows in :meth:`FeatureSpec.names` order."""

    def __init__(
        self,
        model: Any,
        mean: np.ndarray,
        scale: np.ndarray,
        target_scale: float,
        last_index: int,
        dense: list[tuple[np.ndarray, np.ndarray, str]] | None = None,
    ) -> None:
        self.model = model
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.target_scale = np.float32(target_scale)
        self.last_index = last_index
        self.n_features = len(self.mean)
        self._tf_fn: Callable[[Any], Any] | None = None
        self._dense: list[tuple[np.ndarray, np.ndarray, str]] | None
        if model is None:  # the TensorFlow-free form, checked against Keras at training
            if dense is None:
                raise ValueError("a Forecaster needs a Keras model or its dense layers")
            self._dense = dense
            self.mode = "numpy"
            return
        self._dense = _dense_layers(model)
        self.mode = "numpy" if self._dense is not None else "tf.function"
        if self._dense is None or not self._numpy_matches_keras():
            self.mode = "tf.function"
            self._dense = None
            self._tf_fn = _tf_function(model, self.n_features)

    @classmethod
    def load(cls, path: Path, manifest: Mapping[str, Any]) -> Forecaster:
        try:
            scaler = json.loads((path / SCALER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UnreadableArtifact.from_error(path / SCALER_FILE, exc) from exc
        names = list(manifest["spec"]["names"])
        if (path / DENSE_FILE).exists():
            dense = _load_dense(path / DENSE_FILE)
            if len(scaler["mean"]) != len(names) or dense[0][0].shape[0] != len(names):
                raise IncompatibleArtifact(
                    f"{path}: the weights expect {dense[0][0].shape[0]} features, the scaler "
                    f"{len(scaler['mean'])}, the manifest {len(names)}"
                )
            mean, scale = np.asarray(scaler["mean"]), np.asarray(scaler["scale"])
            target = float(scaler["target_scale"])
            return cls(None, mean, scale, target, names.index("last"), dense=dense)
        try:
            import keras
        except ImportError:
            raise ModelError(
                f"{path} has no TensorFlow-free form ({DENSE_FILE}): it needs TensorFlow, "
                "which this installation lacks. Run it with the full image (iotml) or "
                'pip install "iotml[models]", or retrain it with this version of iotml.'
            ) from None
        try:
            model = keras.models.load_model(path / MODEL_FILE, compile=False)
        except Exception as exc:  # keras raises many types for a corrupt file
            raise UnreadableArtifact.from_error(path / MODEL_FILE, exc) from exc
        if len(scaler["mean"]) != len(names) or model.input_shape[-1] != len(names):
            raise IncompatibleArtifact(
                f"{path}: the model expects {model.input_shape[-1]} features, the scaler "
                f"{len(scaler['mean'])}, the manifest {len(names)}"
            )
        return cls(
            model,
            np.asarray(scaler["mean"]),
            np.asarray(scaler["scale"]),
            float(scaler["target_scale"]),
            names.index("last"),
        )

    def save_dense(self, directory: Path) -> bool:
        """Write the TensorFlow-free form (``dense.npz``) when inference runs in NumPy."""
        if self._dense is None:
            return False
        arrays: dict[str, np.ndarray] = {}
        for i, (kernel, bias, act) in enumerate(self._dense):
            arrays[f"kernel_{i}"], arrays[f"bias_{i}"] = kernel, bias
            arrays[f"activation_{i}"] = np.asarray(act)
        with open(directory / DENSE_FILE, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return True

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Forecasts (float64) for a batch of raw feature rows."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {X.shape[1]}")
        delta = self._raw(X)
        return X[:, self.last_index].astype(np.float64) + delta.astype(np.float64) * float(
            self.target_scale
        )

    def _raw(self, X: np.ndarray) -> np.ndarray:
        h = (X - self.mean) / self.scale
        if self._dense is not None:
            for kernel, bias, act in self._dense:
                h = _ACTIVATIONS[act](h @ kernel + bias)
            return np.asarray(h[:, 0])
        assert self._tf_fn is not None
        return np.asarray(self._tf_fn(h))[:, 0]

    def _numpy_matches_keras(self) -> bool:
        rng = np.random.default_rng(0)
        probe = rng.normal(size=(16, self.n_features)).astype(np.float32)
        ours = self._raw(probe * self.scale + self.mean)
        theirs = np.asarray(self.model(probe, training=False))[:, 0]
        return bool(np.allclose(ours, theirs, rtol=1e-4, atol=1e-5))


def _load_dense(path: Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            layers = []
            for i in range(len(npz.files) // 3):
                act = str(npz[f"activation_{i}"])
                if act not in _ACTIVATIONS:
                    raise ValueError(f"unknown activation {act!r}")
                kernel = np.asarray(npz[f"kernel_{i}"], dtype=np.float32)
                layers.append((kernel, np.asarray(npz[f"bias_{i}"], dtype=np.float32), act))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise UnreadableArtifact.from_error(path, exc) from exc
    if not layers:
        raise UnreadableArtifact.from_error(path, ValueError("no layers"))
    return layers


def _dense_layers(model: Any) -> list[tuple[np.ndarray, np.ndarray, str]] | None:
    layers = []
    for layer in getattr(model, "layers", []):
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind != "Dense":
            return None
        act = getattr(layer.activation, "__name__", "")
        if act not in _ACTIVATIONS or not layer.use_bias:
            return None
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
        layers.append((kernel, bias, act))
    return layers or None


def _tf_function(model: Any, n_features: int) -> Callable[[Any], Any]:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)])
    def run(x: Any) -> Any:
        return model(x, training=False)

    return run  # type: ignore[no-any-return,unused-ignore]
