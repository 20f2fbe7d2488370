"""``iotml batch --engine dask``: the batch view replayed on a Dask cluster, one task per
Kafka partition of the Parquet archive, workers writing their own outputs."""

from models.distributed._engine import COUNTS, dask_client, run_dask_batch
from models.distributed._task import Job, prepared

__all__ = ["COUNTS", "Job", "dask_client", "prepared", "run_dask_batch"]
