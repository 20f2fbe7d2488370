"""The model in use, and the watcher that follows the registry's ``LATEST`` pointer.

A new version (or a rollback) is loaded in the watcher thread and swapped in with one
attribute assignment, so the processing thread never waits for TensorFlow and never sees a
half-loaded model. A version that would not fit the running per-device state (another
metric, window, K or feature set: :meth:`models.Artifact.compatible_with`) is refused with
a log line saying that a restart is needed; a version that fails to load is refused and the
running one stays. Refusals are remembered per version, so each is logged once.

A cold start runs the statistical baseline (``"kind": "persistence"``) like any version;
the first network ``iotml retrain`` promotes is trained with the baseline's feature spec,
so it passes the same check and is swapped in live, the device state carrying over (its
bands are re-seeded from the network's training, as for any new version).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models import AlertParams, Artifact, FeatureSpec, ModelError, Registry
from processor.metrics import Metrics

log = logging.getLogger(__name__)


class Predictor(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ActiveModel:
    """What the pipeline needs from an artifact."""

    name: str
    version: str
    spec: FeatureSpec
    params: AlertParams
    forecaster: Predictor
    artifact: Artifact | None = None

    @property
    def grace_ms(self) -> int:
        """The grace period recorded in the model's manifest (0 for in-memory models)."""
        return self.artifact.grace_ms if self.artifact is not None else 0

    def fingerprint(self) -> str:
        """What per-device state depends on (a change needs a restart)."""
        s = self.spec
        return f"{s.metric}|{s.window_ms}|{s.k}|{s.min_count}|{','.join(s.names())}"


Loader = Callable[[str, str], Artifact]


class ModelHolder:
    """Holds the active model and swaps in new versions of ``name`` from ``registry``."""

    def __init__(
        self,
        registry: Path,
        name: str,
        metrics: Metrics,
        silence_ms: int | None = None,
        loader: Loader | None = None,
    ) -> None:
        self._registry = Registry(registry)
        self._name = name
        self._metrics = metrics
        self._silence_ms = silence_ms
        self._loader: Loader = loader or (lambda n, v: self._registry.load(n, v))
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: ActiveModel | None = None
        self.reason = f"no model yet: nothing published as {name!r} in {registry}"

    def ready(self) -> tuple[bool, str]:
        model = self.current
        if model is None:
            return False, self.reason
        return True, f"model {model.name} {model.version}"

    def poll(self) -> ActiveModel | None:
        """Check ``LATEST`` once; load and swap when it moved. Returns the active model."""
        with self._lock:
            self._poll()
        return self.current

    def _poll(self) -> None:
        try:
            version = self._registry.latest(self._name)
        except (OSError, ModelError) as exc:
            self._not_ready(f"cannot read the registry: {exc}")
            return
        current = self.current
        if version is None:
            self._not_ready(
                f"no model yet: nothing published as {self._name!r} in {self._registry.root}"
            )
            return
        if (current is not None and current.version == version) or version in self._refused:
            return
        try:
            artifact = self._loader(self._name, version)
            if artifact.forecaster is None:
                raise ModelError("artifact has no forecaster")
        except Exception as exc:  # a broken version must never stop the processor
            # A ModelError says which file and why; anything else is unexpected: name its type.
            cause = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
            self._refuse(version, f"cannot be loaded: {cause}", "broken")
            return
        if current is not None and current.artifact is not None:
            why = current.artifact.compatible_with(artifact)
            if why is not None:
                self._refuse(
                    version,
                    f"is incompatible with running {current.version}: {why}. "
                    "Restart the processor to use it",
                    "incompatible",
                )
                return
        params = artifact.alert_params
        if self._silence_ms is not None:
            params = params.with_overrides(silence_ms=self._silence_ms)
        new = ActiveModel(
            artifact.name, artifact.version, artifact.spec, params, artifact.forecaster, artifact
        )
        self._install(new)

    def install(self, model: ActiveModel) -> None:
        """Use ``model`` (tests and benchmarks that build one in memory)."""
        with self._lock:
            self._install(model)

    def _install(self, new: ActiveModel) -> None:
        old = self.current
        self.current = new
        if old is not None:
            self._metrics.model_info.remove(old.name, old.version)
        self._metrics.model_info.labels(new.name, new.version).set(1)
        self._metrics.model_reloads.labels("swapped" if old else "loaded").inc()
        self.reason = ""
        if old is None:
            log.info("model %s %s loaded (%s)", new.name, new.version, _describe(new))
        else:
            log.info(
                "model %s swapped %s -> %s without restart", new.name, old.version, new.version
            )

    def _refuse(self, version: str, why: str, result: str) -> None:
        self._refused[version] = why
        self._metrics.model_reloads.labels(result).inc()
        running = self.current.version if self.current else "none"
        log.error("model %s %s refused: %s (running: %s)", self._name, version, why, running)
        if self.current is None:
            self.reason = f"no usable model: {self._name} {version} {why}"

    def _not_ready(self, reason: str) -> None:
        if self.current is None and reason != self.reason:
            self.reason = reason
            log.warning("processor not ready: %s", reason)

    def start(self, interval_s: float) -> None:
        """Poll in a daemon thread every ``interval_s`` seconds."""

        def run() -> None:
            while not self._stop.wait(interval_s):
                self.poll()

        self._thread = threading.Thread(target=run, name="iotml-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def _describe(m: ActiveModel) -> str:
    s = m.spec
    mode: Any = getattr(m.forecaster, "mode", "?")
    return (
        f"metric {s.metric}, window {s.window_ms} ms, k {s.k}, horizon {s.horizon_ms} ms, "
        f"inference {mode}, kind {m.artifact.kind if m.artifact is not None else '?'}"
    )
