"""The client side of ``iotml batch --engine dask``: one task per Kafka partition.

The partition clock is per Kafka partition and a device always lives in one partition,
so a partition is the unit of work: its replay needs nothing from the others. The client
reads only Parquet footers (to find the partitions), submits the tasks, and sums the
counts they return; the workers read the archive and write the outputs themselves.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from models.distributed._archive import partitions_of, select_files
from models.distributed._memory import WORKER_CONFIG, WORKER_ENV
from models.distributed._task import ALERTS, PREDICTIONS, Job, replay_partition
from models.errors import DataError, ModelError

if TYPE_CHECKING:
    from distributed import Client

Progress = Callable[[str], None]
COUNTS = ("readings", "late_readings", "windows", PREDICTIONS, ALERTS)


def _distributed() -> object:
    try:
        import distributed
    except ImportError:
        raise ModelError(
            'the dask engine needs Dask: pip install "iotml[dask]" (or use --engine local)'
        ) from None
    return distributed


@contextlib.contextmanager
def dask_client(
    scheduler: str | None,
    workers: int = 2,
    memory_limit: str = "1GiB",
    processes: bool = True,
    progress: Progress | None = None,
) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler`` or, without one, of a new
    ``LocalCluster`` of ``workers`` single-threaded workers with ``memory_limit`` each
    (``processes=False``: threads of this process without a limit, for tests). Tells
    ``progress`` where the dashboard is."""
    _distributed()
    import dask
    from distributed import Client, LocalCluster

    # the scheduler and nannies log every connection at INFO: warnings only, unless DEBUG
    logger = logging.getLogger("distributed")
    logger.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))

    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            # the nannies hand the configuration of this moment to their workers
            with dask.config.set(WORKER_CONFIG):
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    # threads share this process's memory: a limit would pause them
                    memory_limit=memory_limit if processes else 0,
                    processes=processes,
                    dashboard_address=":8787",
                    # threads (processes=False) start Workers, which take no env
                    **({"env": WORKER_ENV} if processes else {}),
                )
            stack.enter_context(cluster)
            client = stack.enter_context(Client(cluster))
        if progress is not None:
            progress(f"Dask dashboard: {client.dashboard_link}")
        yield client


def clear_outputs(output: Path) -> None:
    """Remove the part files an earlier run left under ``output`` (the task of a partition
    no longer in the input would leave its old files behind)."""
    for kind in (PREDICTIONS, ALERTS):
        for old in (output / kind).glob("date=*/part-*.parquet"):
            old.unlink()


def run_dask_batch(job: Job, client: Client, progress: Progress | None = None) -> dict[str, int]:
    """Replay the archive ``job.archive`` on the cluster of ``client``; the summed counts
    (:data:`COUNTS`). :class:`~models.errors.DataError` when no reading has the model's
    metric, as the local engine."""
    from distributed import as_completed

    files = select_files(Path(job.archive), job.start_ms, job.end_ms)
    partitions = partitions_of(files)
    clear_outputs(Path(job.output))
    paths = [str(f) for f in files]
    run = uuid.uuid4().hex[:8]
    futures = {
        client.submit(replay_partition, job, k, paths, key=f"iotml-replay-{run}-{k}", pure=False): k
        for k in partitions
    }
    totals = dict.fromkeys((*COUNTS, "valued"), 0)
    for future in as_completed(futures):
        counts = future.result()
        for name in totals:
            totals[name] += counts[name]
        if progress is not None:
            progress(
                f"partition {futures[future]}: {counts['readings']} readings, "
                f"{counts[PREDICTIONS]} predictions, {counts[ALERTS]} alerts"
            )
    if not totals.pop("valued"):
        raise DataError(f"no readings of the model's metric in {job.archive}")
    return totals
