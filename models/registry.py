"""The model registry: ``<root>/<name>/<version>/`` directories and a ``LATEST`` pointer.

A version holds ``manifest.json`` (spec, alert parameters, training data, validation
skill, libraries), ``model.keras`` and ``scaler.json``, or only the manifest for the
statistical baseline (``"kind": "persistence"``). Versions (``v0001``...) are written in
a temporary directory and renamed into place and ``LATEST`` is replaced atomically, so a
reader never sees half a version; ``decisions/`` keeps one record per ``iotml retrain``
decision. Only :meth:`Registry.load` of a network version imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.alerts import AlertParams
from models.bands import BANDS_FILE, Baselines, load_bands
from models.errors import ArtifactNotFound, IncompatibleArtifact, ModelError, UnreadableArtifact
from models.features import FeatureSpec

if TYPE_CHECKING:
    from models.forecaster import Forecaster

MANIFEST = "manifest.json"
LATEST = "LATEST"
DECISIONS = "decisions"
MANIFEST_FORMAT = 1
_VERSION = re.compile(r"^v(\d{4,})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Artifact:
    """One loaded model version."""

    name: str
    version: str
    path: Path
    manifest: dict[str, Any]
    spec: FeatureSpec
    alert_params: AlertParams
    forecaster: Forecaster | None = field(default=None, repr=False)
    bands: Baselines | None = field(default=None, repr=False)  # per-device normal bands

    @property
    def kind(self) -> str:
        """``"persistence"`` (the statistical baseline) or ``"network"`` (the default)."""
        return str(self.manifest.get("kind") or "network")

    @property
    def grace_ms(self) -> int:
        """The windows' grace period the model was trained with."""
        return int((self.manifest.get("training") or {}).get("grace_ms", 0))

    def compatible_with(self, other: Artifact) -> str | None:
        """Why ``other`` cannot replace this artifact in a running processor (its per-device
        state would not fit), or ``None`` when it can be swapped in live."""
        a, b = self.spec, other.spec
        for what, x, y in (
            ("metric", a.metric, b.metric),
            ("window", a.window_ms, b.window_ms),
            ("k", a.k, b.k),
            ("features", a.names(), b.names()),
            ("min_count", a.min_count, b.min_count),
        ):
            if x != y:
                return f"{what} differs ({x} -> {y}): a restart is needed"
        return None


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ModelError(f"invalid model name {name!r} (letters, digits, '.', '_', '-')")
    return name


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def skill(mae: float, persistence_mae: float) -> float | None:
    """``1 - mae / persistence_mae``: the share of the "no change" forecast's error a model
    removes (0: no better than persistence; negative: worse). ``None`` when persistence is
    perfect (the ratio is undefined)."""
    if not persistence_mae > 0:
        return None
    return 1.0 - mae / persistence_mae


def validation_skill(manifest: Mapping[str, Any]) -> float | None:
    """The skill a version had on its validation data at training: stored since manifests
    carry ``validation.val_skill``, computed from ``val_mae``/``val_persistence_mae`` for
    older ones; ``None`` when neither is there."""
    val = manifest.get("validation") or {}
    stored = val.get("val_skill")
    if isinstance(stored, int | float) and not isinstance(stored, bool):
        return float(stored)
    mae, persistence = val.get("val_mae"), val.get("val_persistence_mae")
    if isinstance(mae, int | float) and isinstance(persistence, int | float):
        return skill(float(mae), float(persistence))
    return None


def parse_manifest(obj: Mapping[str, Any]) -> tuple[FeatureSpec, AlertParams]:
    """The feature spec and alert parameters of a manifest; :class:`IncompatibleArtifact`
    when this code cannot use it."""
    if obj.get("format") != MANIFEST_FORMAT:
        raise IncompatibleArtifact(
            f"manifest format {obj.get('format')!r} is not supported (expected {MANIFEST_FORMAT})"
        )
    if not isinstance(obj.get("spec"), dict):
        raise IncompatibleArtifact("manifest has no feature spec")
    spec = FeatureSpec.from_dict(obj["spec"])
    try:
        params = AlertParams.from_dict(obj.get("alert_params") or {})
    except TypeError as exc:
        raise IncompatibleArtifact(f"invalid alert parameters: {exc}") from None
    return spec, params


class Registry:
    """Model versions under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))

    def versions(self, name: str) -> list[str]:
        """Complete versions of ``name``, oldest first."""
        base = self.root / _check_name(name)
        if not base.is_dir():
            return []
        found = [
            p.name for p in base.iterdir() if _VERSION.match(p.name) and (p / MANIFEST).is_file()
        ]
        return sorted(found, key=lambda v: int(v[1:]))

    def latest(self, name: str) -> str | None:
        """The version ``LATEST`` points at, or ``None`` when nothing was published."""
        pointer = self.root / _check_name(name) / LATEST
        try:
            version = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return version or None

    def path(self, name: str, version: str) -> Path:
        path = self.root / _check_name(name) / version
        if not _VERSION.match(version) or not (path / MANIFEST).is_file():
            raise ArtifactNotFound(f"model {name!r} has no version {version!r} in {self.root}")
        return path

    def manifest(self, name: str, version: str | None = None) -> dict[str, Any]:
        version = self._resolve(name, version)
        file = self.path(name, version) / MANIFEST
        try:
            obj = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UnreadableArtifact.from_error(file, exc) from None
        if not isinstance(obj, dict):
            raise IncompatibleArtifact(f"{name} {version}: manifest is not a JSON object")
        return obj

    def load(self, name: str, version: str | None = None, with_model: bool = True) -> Artifact:
        """Load a version (default: ``LATEST``), checking its manifest; with ``with_model``
        also its forecaster (:func:`models.statistical.forecaster_of`)."""
        version = self._resolve(name, version)
        manifest = self.manifest(name, version)
        spec, params = parse_manifest(manifest)
        path = self.path(name, version)
        forecaster = None
        if with_model:
            from models.statistical import forecaster_of  # it imports this module

            forecaster = forecaster_of(path, manifest, spec)
        try:
            bands = load_bands(path)
        except ValueError as exc:
            raise UnreadableArtifact(path / BANDS_FILE, f"unreadable or corrupt ({exc})") from None
        return Artifact(name, version, path, manifest, spec, params, forecaster, bands)

    def promote(self, name: str, version: str) -> None:
        """Point ``LATEST`` at ``version`` (roll forward or back); checks its manifest."""
        manifest = self.manifest(name, version)
        parse_manifest(manifest)
        _write_atomic(self.root / name / LATEST, version + "\n")

    def publish(self, name: str, build: Any, promote: bool = True) -> str:
        """Write a new version: ``build(directory) -> manifest`` fills a temporary directory,
        which is then renamed to the next free version number. Returns the version."""
        base = self.root / _check_name(name)
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            manifest = dict(build(tmp))
            for child in tmp.iterdir():
                if child.is_file():
                    with open(child, "rb") as fh:
                        os.fsync(fh.fileno())
            existing = [int(p.name[1:]) for p in base.iterdir() if _VERSION.match(p.name)]
            number = max(existing, default=0) + 1
            while True:
                version = f"v{number:04d}"
                manifest.update({"format": MANIFEST_FORMAT, "name": name, "version": version})
                _write_atomic(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
                try:
                    os.rename(tmp, base / version)
                except OSError:
                    if (base / version).exists():
                        number += 1  # another trainer took this number
                        continue
                    raise
                _fsync_dir(base)
                break
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if promote:
            self.promote(name, version)
        return version

    def record_decision(self, name: str, record: Mapping[str, Any]) -> Path:
        """Write one retrain decision as ``<name>/decisions/<UTC time>-<sequence>-<id>.json``
        (atomically; names sort in time order). Returns its path."""
        base = self.root / _check_name(name) / DECISIONS
        base.mkdir(parents=True, exist_ok=True)
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
        # Two decisions within one millisecond must still sort in the order they were
        # made: a sequence number follows the stamp, the random id only keeps names unique.
        seq = sum(1 for _ in base.glob("*.json"))
        path = base / f"{stamp}-{seq:08d}-{uuid.uuid4().hex[:8]}.json"
        _write_atomic(path, json.dumps(dict(record), indent=2, sort_keys=True))
        return path

    def decisions(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The retrain decisions of ``name``, newest first (at most ``limit``); a record
        that cannot be read is skipped."""
        base = self.root / _check_name(name) / DECISIONS
        if not base.is_dir():
            return []
        files = sorted((p for p in base.glob("*.json") if p.is_file()), reverse=True)
        out: list[dict[str, Any]] = []
        for file in files:
            if limit is not None and len(out) >= limit:
                break
            try:
                obj = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(obj, dict):
                out.append({**obj, "file": file.name})
        return out

    def _resolve(self, name: str, version: str | None) -> str:
        if version in (None, "", "latest"):
            latest = self.latest(name)
            if latest is None:
                raise ArtifactNotFound(f"model {name!r} has no published version in {self.root}")
            return latest
        return version


def load_path(path: str | os.PathLike[str], with_model: bool = True) -> Artifact:
    """Load from a version directory (``<root>/<name>/<version>``) or a model directory
    (``<root>/<name>``, following ``LATEST``)."""
    p = Path(path)
    if (p / MANIFEST).is_file():
        return Registry(p.parent.parent).load(p.parent.name, p.name, with_model)
    if p.is_dir():
        return Registry(p.parent).load(p.name, None, with_model)
    raise ArtifactNotFound(f"{p} is neither a model version nor a model directory")
