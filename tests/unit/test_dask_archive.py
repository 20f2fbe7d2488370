"""The Dask engine's reading of the archive: only the dates and the partition asked for,
in Kafka offset order across files, without repeats, never a whole partition in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.archive import read_archive_records
from models.distributed._archive import (
    merge_runs,
    partition_records,
    partitions_of,
    select_files,
)
from models.errors import DataError
from tests.dask_fixtures import MIDNIGHT, archive_rows, write_archive

DAY = 86_400_000


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_archive(tmp_path_factory.mktemp("archive"), archive_rows())


def _run(keys: list[int], opened: list[int], name: int) -> tuple[int, object]:
    def open_() -> Iterator[tuple[int, tuple[int, int]]]:
        opened.append(name)
        return ((k, (name, k)) for k in keys)

    return keys[0], open_


def test_merge_runs_yields_every_key_once_in_order():
    opened: list[int] = []
    runs = [_run([5, 6, 9], opened, 0), _run([1, 2, 5], opened, 1), _run([3, 4], opened, 2)]
    got = list(merge_runs(runs))  # type: ignore[arg-type]
    assert [k for _, k in got] == [1, 2, 3, 4, 5, 6, 9]


def test_merge_runs_opens_a_run_only_when_the_merge_reaches_its_first_key():
    opened: list[int] = []
    seen: list[int] = []
    runs = [_run([10, 11], opened, 0), _run([1, 2], opened, 1), _run([20], opened, 2)]
    for _, key in merge_runs(runs):  # type: ignore[arg-type]
        seen.append(key)
        if key == 2:
            assert opened == [1]  # the later runs are not open yet
    assert seen == [1, 2, 10, 11, 20] and opened == [1, 0, 2]


def test_select_files_reads_only_the_date_directories_of_the_range(archive: Path):
    every = select_files(archive, None, None)
    assert {f.parent.name for f in every} == {"date=2023-11-14", "date=2023-11-15"}
    before = select_files(archive, None, MIDNIGHT)  # end is exclusive
    assert {f.parent.name for f in before} == {"date=2023-11-14"}
    after = select_files(archive, MIDNIGHT, MIDNIGHT + DAY)
    assert {f.parent.name for f in after} == {"date=2023-11-15"}
    assert select_files(archive, MIDNIGHT + 5 * DAY, None) == []


def test_select_files_says_when_there_is_no_archive(tmp_path: Path):
    with pytest.raises(DataError, match="no Parquet files"):
        select_files(tmp_path, None, None)


def test_partitions_come_from_the_footers(archive: Path):
    assert partitions_of(select_files(archive, None, None)) == [0, 1, 2, 3]


def test_a_partition_streams_in_offset_order_as_the_whole_archive_reads_it(archive: Path):
    files = select_files(archive, None, None)
    expected = [
        (r.device_id, r.ts, r.metrics.get("temperature"), dict(r.tags))
        for p, r in read_archive_records(archive)
        if p == 2
    ]
    got = list(partition_records(files, 2, "temperature", batch_rows=50))
    assert {p for p, _, _ in got} == {2}
    assert [s for _, _, s in got] == expected  # the repeated roll is dropped
    assert any(value is None for _, _, (_, _, value, _) in got)


def test_a_time_range_keeps_only_its_readings(archive: Path):
    lo, hi = MIDNIGHT - 60_000, MIDNIGHT + 60_000
    files = select_files(archive, lo, hi)
    got = list(partition_records(files, 1, "temperature", lo, hi))
    assert got and all(lo <= ts < hi for _, _, (_, ts, _, _) in got)
    everything = partition_records(select_files(archive, None, None), 1, "temperature")
    assert got == [r for r in everything if lo <= r[2][1] < hi]


def test_only_files_whose_offsets_overlap_are_open_at_once(archive: Path, monkeypatch):
    import models.distributed._archive as mod

    open_now, peak = [0], [0]
    real = mod.file_records

    def tracked(*args, **kwargs):
        open_now[0] += 1
        peak[0] = max(peak[0], open_now[0])
        try:
            yield from real(*args, **kwargs)
        finally:
            open_now[0] -= 1

    monkeypatch.setattr(mod, "file_records", tracked)
    files = select_files(archive, None, None)
    assert sum(1 for _ in partition_records(files, 0, "temperature")) > 0
    assert len(files) >= 8 and peak[0] <= 3  # a roll across midnight and its repeat
