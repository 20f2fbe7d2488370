"""How a Dask replay task writes its Parquet outputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from models.distributed._task import _DatedParquet

SCHEMA = pa.schema([("x", pa.int64())])


def test_only_the_newest_dates_stay_open_and_a_late_row_gets_a_file_of_its_own(tmp_path: Path):
    out = _DatedParquet(tmp_path, 3, SCHEMA)
    rows = [("01", 1), ("02", 2), ("03", 3), ("01", 4), ("03", 5), ("04", 6), ("01", 7)]
    for day, x in rows:
        out.write(f"2024-01-{day}", pa.table({"x": [x]}, schema=SCHEMA))
        assert len(out._writers) <= 3  # the two newest dates and a late row's
    out.close()
    got = {
        str(f.relative_to(tmp_path)): pq.read_table(f).column("x").to_pylist()
        for f in tmp_path.rglob("*.parquet")
    }
    assert got == {
        "date=2024-01-01/part-3.parquet": [1],
        "date=2024-01-01/part-3-1.parquet": [4],
        "date=2024-01-01/part-3-2.parquet": [7],
        "date=2024-01-02/part-3.parquet": [2],
        "date=2024-01-03/part-3.parquet": [3, 5],
        "date=2024-01-04/part-3.parquet": [6],
    }
    assert not list(tmp_path.rglob(".*.tmp"))  # every file moved into place
