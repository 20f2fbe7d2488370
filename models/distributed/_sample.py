"""Bounded samples that do not depend on how the input was split or ordered.

Each item gets a key, a 64-bit hash of what it is (a feature row and its window's end, a
reading's device, time and value); a sample of ``k`` keeps the ``k`` items with the
smallest keys (a bottom-k sample). As the keys behave like uniform random numbers, that is
a uniform sample without replacement; and as the bottom ``k`` of a union is the bottom
``k`` of the parts' bottom ``k``, every task samples its partition and the client merges
the samples, holding ``k`` items at most, with the same result for any number of tasks,
in any order of completion. Below ``k`` items the sample is all of them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import TypeVar

import numpy as np

T = TypeVar("T")
_U64 = np.uint64


def mix(h: np.ndarray, column: np.ndarray) -> np.ndarray:
    """``h`` with ``column`` (64-bit words) folded in: splitmix64's finaliser, so every
    input bit moves every output bit."""
    x = (h ^ column.astype(_U64)) + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def row_keys(X: np.ndarray, y: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Keys of feature rows: a hash of the window's end, the target and the features."""
    h = mix(np.zeros(len(ends), dtype=_U64), ends.astype(np.int64).view(_U64))
    h = mix(h, np.asarray(y, dtype=np.float64).view(_U64))
    words = np.ascontiguousarray(X, dtype=np.float32).view(np.uint32)
    for j in range(words.shape[1] if words.ndim == 2 else 0):
        h = mix(h, words[:, j])
    return h


def device_key(device_id: str) -> int:
    return int(mix(np.asarray([zlib.crc32(device_id.encode())], dtype=_U64), np.zeros(1))[0])


def value_keys(devices: np.ndarray, stamps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Keys of readings: a hash of the device's key, the time and the value."""
    h = mix(devices.astype(_U64), stamps.astype(np.int64).view(_U64))
    return mix(h, values.astype(np.float64).view(_U64))


class BottomK:
    """The ``k`` items with the smallest keys of all added; items are rows of the named
    arrays (the first dimension). ``seen`` counts every item added."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.seen = 0
        self.keys = np.empty(0, dtype=_U64)
        self.columns: dict[str, np.ndarray] = {}

    def add(self, keys: np.ndarray, **columns: np.ndarray) -> None:
        self.seen += len(keys)
        self._extend(keys, columns)

    def merge(self, other: BottomK) -> None:
        """Take in another sample (of other items: a task's sample of its partition)."""
        self.seen += other.seen
        self._extend(other.keys, other.columns)
        self.trim()

    def _extend(self, keys: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        if not len(keys):
            return
        if not self.columns:
            self.keys, self.columns = keys, dict(columns)
        else:
            self.keys = np.concatenate([self.keys, keys])
            self.columns = {n: np.concatenate([c, columns[n]]) for n, c in self.columns.items()}
        if len(self.keys) > 2 * self.k + 65_536:  # trim now and then, not at every add
            self.trim()

    def trim(self) -> None:
        """Keep the ``k`` smallest keys, in key order (a deterministic order for a fit)."""
        order = np.argsort(self.keys, kind="stable")[: self.k]
        self.keys = self.keys[order]
        self.columns = {n: c[order] for n, c in self.columns.items()}

    def column(self, name: str, empty: np.ndarray) -> np.ndarray:
        self.trim()
        return self.columns.get(name, empty)


def smallest(items: Mapping[str, T], k: int) -> dict[str, T]:
    """The ``k`` entries whose names (device ids) have the smallest :func:`device_key`."""
    return {name: items[name] for name in sorted(items, key=device_key)[:k]}


def merged(parts: Iterable[Mapping[str, T]], k: int) -> dict[str, T]:
    out: dict[str, T] = {}
    for part in parts:
        out.update(part)
        out = smallest(out, k)
    return out
