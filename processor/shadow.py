"""The shadow: a candidate version scored beside the live one (``IOTML_SHADOW_VERSION``).

It forecasts the live version's feature rows, so its forecasts target the same windows and
wait in the same device state: a shadow whose metric, window, K, features, ``min_count``
or horizon differ from the live version's is refused at start with a config error (a
layout change needs its own processor, not a shadow). ``newest`` follows the newest
published version, which is where ``iotml retrain`` leaves a challenger it did not
promote; a newer version that does not fit is refused with a log line and the shadow
idles. While the shadow is the live version itself (it was promoted) the engine leaves
it idle, so nothing is scored twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from iotml.core.errors import ConfigError
from models import FeatureSpec, ModelError, Registry
from processor.metrics import Metrics
from processor.model import ActiveModel, Loader

log = logging.getLogger(__name__)

#: ``IOTML_SHADOW_VERSION`` that follows the newest published version.
NEWEST = "newest"


def layout_mismatch(live: FeatureSpec, shadow: FeatureSpec) -> str | None:
    """What keeps ``shadow`` from forecasting ``live``'s rows, or ``None``."""
    for what in ("metric", "window_ms", "k", "horizon_ms", "min_count"):
        a, b = getattr(live, what), getattr(shadow, what)
        if a != b:
            return f"its {what} is {b}, the live version's {a}"
    if live.names() != shadow.names():
        return "its features differ from the live version's"
    return None


class ShadowHolder:
    """Loads the shadow version of ``name`` and, for ``newest``, follows new versions."""

    def __init__(
        self,
        registry: Path,
        name: str,
        version: str,
        metrics: Metrics,
        loader: Loader | None = None,
    ) -> None:
        self._registry = Registry(registry)
        self._name = name
        self._wanted = version
        self._metrics = metrics
        self._loader: Loader = loader or (lambda n, v: self._registry.load(n, v))
        self._refused: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: ActiveModel | None = None

    def load(self, live: ActiveModel) -> ActiveModel:
        """Load the shadow to run beside ``live`` (at start): a :class:`ConfigError` says
        why it cannot."""
        setting = f"IOTML_SHADOW_VERSION={self._wanted}"
        try:
            version = self._version()
        except (OSError, ModelError) as exc:
            raise ConfigError(f"{setting}: cannot read the registry: {exc}") from exc
        if version is None:
            raise ConfigError(f"{setting}: no such version of {self._name!r} in the registry")
        try:
            shadow = self._load(version)
        except (ModelError, OSError) as exc:
            raise ConfigError(f"{setting}: {self._name} {version} cannot be loaded: {exc}") from exc
        why = layout_mismatch(live.spec, shadow.spec)
        if why is not None:
            raise ConfigError(
                f"{setting}: {self._name} {version} cannot shadow {live.version}: {why}"
            )
        self._install(shadow)
        return shadow

    def poll(self, live: ActiveModel) -> None:
        """For ``newest``: swap in a newer version when one that fits was published."""
        try:
            version = self._version()
        except (OSError, ModelError) as exc:
            log.warning("shadow: cannot read the registry: %s", exc)
            return
        current = self.current
        if version is None or version in self._refused:
            return
        if current is not None and current.version == version:
            return
        try:
            shadow = self._load(version)
            why = layout_mismatch(live.spec, shadow.spec)
            if why is not None:
                raise ModelError(f"cannot shadow {live.version}: {why}")
        except Exception as exc:  # a broken candidate must never stop the processor
            self._refused.add(version)
            log.error("shadow %s %s refused: %s", self._name, version, exc)
            return
        self._install(shadow)

    def _version(self) -> str | None:
        if self._wanted != NEWEST:
            return self._wanted if self._wanted in self._registry.versions(self._name) else None
        versions = self._registry.versions(self._name)
        return versions[-1] if versions else None

    def _load(self, version: str) -> ActiveModel:
        artifact = self._loader(self._name, version)
        if artifact.forecaster is None:
            raise ModelError("the artifact has no forecaster")
        return ActiveModel(
            artifact.name,
            artifact.version,
            artifact.spec,
            artifact.alert_params,
            artifact.forecaster,
            artifact,
        )

    def _install(self, shadow: ActiveModel) -> None:
        old, self.current = self.current, shadow
        if old is not None:
            self._metrics.shadow_info.remove(old.name, old.version)
        self._metrics.shadow_info.labels(shadow.name, shadow.version).set(1)
        log.info("shadow %s %s scored beside the live version", shadow.name, shadow.version)

    def start(self, interval_s: float, live: Callable[[], ActiveModel | None]) -> None:
        """For ``newest``: poll every ``interval_s`` seconds in a daemon thread, against
        the live model ``live()`` returns (a fixed version needs no watching)."""
        if self._wanted != NEWEST:
            return

        def run() -> None:
            while not self._stop.wait(interval_s):
                model = live()
                if model is not None:
                    self.poll(model)

        self._thread = threading.Thread(target=run, name="iotml-shadow-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
