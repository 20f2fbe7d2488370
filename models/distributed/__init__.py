"""The batch path on a Dask cluster, one task per Kafka partition of the Parquet archive:
``iotml batch --engine dask`` (workers replay and write their own outputs) and
``iotml train --engine dask`` (workers compute windows and features, the client fits) and
``iotml evaluate --engine dask`` (workers replay and score, the client adds up)."""

from models.distributed._archive import is_archive
from models.distributed._engine import COUNTS, dask_client, run_dask_batch
from models.distributed._evaluate import run_dask_evaluation
from models.distributed._evaluate_task import EvalJob
from models.distributed._task import Job, prepared
from models.distributed._train import plan, run_dask_training
from models.distributed._train_task import TrainJob

__all__ = [
    "COUNTS",
    "EvalJob",
    "Job",
    "TrainJob",
    "dask_client",
    "is_archive",
    "plan",
    "prepared",
    "run_dask_batch",
    "run_dask_evaluation",
    "run_dask_training",
]
