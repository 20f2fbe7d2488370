"""Reading the Numenta Anomaly Benchmark's files: a data CSV, the labelled windows
(``labels/combined_windows.json``) and published per-file scores.

NAB's timestamps carry no zone; they are read as UTC, as :mod:`models.sources` reads CSVs.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from models.errors import DataError
from models.nab import RowIndex, Window


@dataclass(frozen=True)
class NabFile:
    key: str  # e.g. "realKnownCause/machine_temperature_system_failure.csv"
    timestamps: list[int]  # epoch ms, file order
    values: list[float]
    windows: list[Window]

    @property
    def rows(self) -> int:
        return len(self.timestamps)


def epoch_ms(text: str) -> int:
    """``"2013-12-02 21:15:00"`` (or with fractions of a second) as epoch ms, UTC."""
    stamp = datetime.fromisoformat(text.strip())
    return round(stamp.replace(tzinfo=stamp.tzinfo or UTC).timestamp() * 1000)


def read_series(path: Path) -> tuple[list[int], list[float]]:
    """Timestamps (epoch ms) and values of a ``timestamp,value`` CSV, in file order."""
    stamps: list[int] = []
    values: list[float] = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise DataError(f"{path}: expected a timestamp,value header, got {header}")
        for row in reader:
            if row:
                stamps.append(epoch_ms(row[0]))
                values.append(float(row[1]))
    return stamps, values


def read_windows(path: Path) -> dict[str, list[tuple[int, int]]]:
    """``{key: [(start ms, end ms), ...]}`` from NAB's ``combined_windows.json``."""
    doc = json.loads(path.read_text())
    return {key: [(epoch_ms(a), epoch_ms(b)) for a, b in spans] for key, spans in doc.items()}


def read_anchor_scores(path: Path) -> dict[str, dict[str, float]]:
    """``{detector: {key: score}}`` from a ``detector,file,score`` CSV."""
    scores: dict[str, dict[str, float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            scores.setdefault(row["detector"], {})[row["file"]] = float(row["score"])
    return scores


def load_file(data_dir: Path, windows: dict[str, list[tuple[int, int]]], key: str) -> NabFile:
    """The file ``data_dir/key`` with its labelled windows as row spans."""
    if key not in windows:
        raise DataError(f"no labelled windows for {key!r} (keys: {sorted(windows)})")
    path = data_dir / key
    if not path.exists():
        raise DataError(f"{path} does not exist")
    stamps, values = read_series(path)
    index = RowIndex(stamps)
    rows = []
    for start, end in windows[key]:
        window = index.window(start, end)
        if window is None:
            raise DataError(f"{key}: the window {start}..{end} holds no rows")
        rows.append(window)
    return NabFile(key, stamps, values, rows)
