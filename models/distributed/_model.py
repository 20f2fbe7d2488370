"""The model a Dask worker runs: NumPy inference only, never TensorFlow."""

from __future__ import annotations

from pathlib import Path

from models.errors import ModelError
from models.forecaster import DENSE_FILE
from models.registry import Artifact, Registry


def load_for_worker(registry: str | Path, name: str, version: str | None) -> Artifact:
    """The artifact ``name``/``version`` of ``registry`` with its forecaster, refused with
    :class:`~models.errors.ModelError` when it has no TensorFlow-free form: importing
    TensorFlow takes a worker past a 1 GiB limit, and Dask then pauses it, so the job would
    hang instead of failing."""
    reg = Registry(Path(registry))
    bare = reg.load(name, version, with_model=False)
    if bare.kind == "network" and not (bare.path / DENSE_FILE).exists():
        raise ModelError(
            f"{name} {bare.version} has no TensorFlow-free form ({DENSE_FILE}), which Dask "
            "workers need (they run NumPy inference only): use --engine local for it, or "
            "retrain it (training writes the form whenever NumPy reproduces the network)"
        )
    return reg.load(name, bare.version)
