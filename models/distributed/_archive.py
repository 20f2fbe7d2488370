"""Reading one Kafka partition of the Parquet archive as a stream, in Kafka offset order.

The archive (:mod:`models.archive`) keeps each date in its own directory and each file in
Kafka order per partition, but a partition's readings spread over many files (one per roll
and date). :func:`partition_records` reads only the date directories a time range needs,
only the columns the replay needs, with the partition (and time) filter pushed into the
Parquet scan, and merges the files by offset, opening a file only when the merge reaches
its first offset: memory holds one batch per file whose offsets overlap, never a partition.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from models.archive import date_of
from models.errors import DataError
from models.replay import Record

T = TypeVar("T")

#: What the replay reads of an archived reading (the partition is in the filter).
COLUMNS = ["device_id", "ts", "metrics", "tags", "kafka_offset"]
BATCH_ROWS = 4096


def is_archive(source: str) -> bool:
    """Whether ``source`` names a Parquet archive (a directory or one ``.parquet`` file),
    the only input of the Dask engine (not ``kafka://`` or ``synthetic://``)."""
    return "://" not in source and (Path(source).is_dir() or source.endswith(".parquet"))


def select_files(root: Path, start_ms: int | None, end_ms: int | None) -> list[Path]:
    """The archive's Parquet files whose date directory can hold readings with
    ``start_ms <= ts < end_ms`` (a single ``.parquet`` file is taken as it is)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"input {root} does not exist")
    first = date_of(start_ms) if start_ms is not None else None
    last = date_of(end_ms - 1) if end_ms is not None else None
    files: list[Path] = []
    for directory in sorted(root.glob("date=*")):
        day = directory.name[len("date=") :]
        if (first is None or day >= first) and (last is None or day <= last):
            files.extend(sorted(directory.glob("*.parquet")))
    if not files and not any(root.glob("date=*/*.parquet")):
        raise DataError(f"no Parquet files under {root}")
    return files


def partitions_of(files: Iterable[Path]) -> list[int]:
    """The Kafka partitions in ``files``, from the row groups' statistics (footers only);
    a row group without statistics has its ``kafka_partition`` column read."""
    found: set[int] = set()
    for path in files:
        meta = pq.ParquetFile(path).metadata
        column = meta.schema.names.index("kafka_partition")
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(column).statistics
            if stats is not None and stats.has_min_max:
                found.update(range(int(stats.min), int(stats.max) + 1))
            else:
                table = pq.ParquetFile(path).read_row_group(i, columns=["kafka_partition"])
                found.update(int(p) for p in pc.unique(table["kafka_partition"]).to_pylist())
    return sorted(found)


def _filter(partition: int, start_ms: int | None, end_ms: int | None) -> Any:
    expr = ds.field("kafka_partition") == partition
    if start_ms is not None:
        expr = expr & (ds.field("ts") >= start_ms)
    if end_ms is not None:
        expr = expr & (ds.field("ts") < end_ms)
    return expr


def _scan(path: Path, columns: list[str], expr: Any, batch_rows: int) -> Iterator[Any]:
    scanner = ds.dataset(path, format="parquet").scanner(
        columns=columns,
        filter=expr,
        batch_size=batch_rows,
        batch_readahead=1,
        fragment_readahead=1,
        use_threads=False,
    )
    return (batch for batch in scanner.to_batches() if batch.num_rows)


def first_offset(path: Path, expr: Any, batch_rows: int = 65536) -> int | None:
    """The smallest offset in ``path`` matching ``expr`` (``None``: no row matches); reads
    the offset column only."""
    lows = [
        pc.min(b["kafka_offset"]).as_py() for b in _scan(path, ["kafka_offset"], expr, batch_rows)
    ]
    return min(lows) if lows else None


def file_records(
    path: Path, metric: str, partition: int, expr: Any, batch_rows: int = BATCH_ROWS
) -> Iterator[tuple[int, Record]]:
    """``(offset, record)`` of the rows of ``path`` matching ``expr``, in file order, one
    batch of ``batch_rows`` in memory at a time. Records carry no arrival time (the
    archive does not keep it), as :func:`models.sources.load_records` gives them."""
    for batch in _scan(path, COLUMNS, expr, batch_rows):
        for row in batch.to_pylist():
            value = dict(row["metrics"]).get(metric)
            sample = (
                row["device_id"],
                row["ts"],
                None if value is None else float(value),
                dict(row["tags"]),
            )
            yield row["kafka_offset"], (partition, None, sample)


def merge_runs(runs: Iterable[tuple[int, Callable[[], Iterator[tuple[int, T]]]]]) -> Iterator[T]:
    """The items of sorted runs ``(first key, open)`` in key order, each key once (a
    repeated key, the archive's repeat of a reading after a crash, is dropped). A run is
    opened only when the merge reaches its first key, so only runs that overlap are open
    at the same time."""
    pending = sorted(runs, key=lambda run: run[0])
    heap: list[tuple[int, int, T, Iterator[tuple[int, T]]]] = []
    tie = itertools.count()  # keeps equal keys in run order, never compares items
    opened = 0
    last: int | None = None
    while heap or opened < len(pending):
        while opened < len(pending) and (not heap or pending[opened][0] <= heap[0][0]):
            _push(heap, pending[opened][1](), tie)
            opened += 1
        key, _, item, it = heapq.heappop(heap)
        _push(heap, it, tie)
        if key != last:
            last = key
            yield item


def _push(
    heap: list[tuple[int, int, T, Iterator[tuple[int, T]]]],
    it: Iterator[tuple[int, T]],
    tie: Iterator[int],
) -> None:
    for key, item in it:
        heapq.heappush(heap, (key, next(tie), item, it))
        return


def partition_records(
    files: Iterable[Path],
    partition: int,
    metric: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Record]:
    """The records of one Kafka partition with ``start_ms <= ts < end_ms``, in offset
    order without repeats, streamed from ``files``."""
    expr = _filter(partition, start_ms, end_ms)
    runs = []
    for path in files:
        low = first_offset(path, expr)
        if low is not None:
            runs.append((low, _opener(path, metric, partition, expr, batch_rows)))
    return merge_runs(runs)


def _opener(
    path: Path, metric: str, partition: int, expr: Any, batch_rows: int
) -> Callable[[], Iterator[tuple[int, Record]]]:
    return lambda: file_records(path, metric, partition, expr, batch_rows)
