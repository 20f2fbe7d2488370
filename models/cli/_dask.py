"""What the commands running on Dask (``batch``, ``train``, ``evaluate``) share: their one
input, the Parquet archive, and the cluster their settings describe."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import click

from models.settings import DaskSettings

if TYPE_CHECKING:
    from distributed import Client


def require_archive(source: str) -> None:
    """Refuse any input but a Parquet archive (a usage error naming what to do instead)."""
    from models.distributed import is_archive

    if not is_archive(source):
        raise click.UsageError(
            f"--engine dask reads the Parquet archive only (a directory written by "
            f"`iotml archive`), not {source}: archive the topic first, or use --engine local"
        )


@contextlib.contextmanager
def cluster(s: DaskSettings, progress: Callable[[str], None]) -> Iterator[Client]:
    """A client of the scheduler or the LocalCluster ``s`` names (``progress`` is told
    where its dashboard is)."""
    from models.distributed import dask_client

    with dask_client(
        s.dask_scheduler, s.dask_workers, s.dask_memory_limit, progress=progress
    ) as client:
        yield client
