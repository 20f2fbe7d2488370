"""Keeping a long task's resident memory at the size of what it holds.

A replay frees nearly everything it allocates within a chunk (the Parquet batches, the
records, the chunk's outputs) and keeps only the partition's device states. Its resident
memory still crept up with the length of the archive (a worker's peak 260, 300 and
365 MiB for 1, 4 and 30 days) because the freed memory was not given back:

* Arrow's default allocator, mimalloc, keeps freed pages in per-thread heaps, including
  those of Arrow's I/O threads, which the replaying thread cannot release;
* glibc keeps freed pages between live blocks (the states, replaced a reading at a time,
  end up scattered over the heap) until ``malloc_trim``;
* Dask's statistical profiler samples the task's stack every 10 ms and keeps a profile
  per second for the last 1,000 seconds; its objects, allocated between the replay's,
  pin the heap's pages for as long as a task runs (with the two above fixed, a worker's
  peak at 30 days was 333/341 MiB with it and 263/265 MiB without).

So workers allocate Arrow memory on the C heap (:data:`WORKER_ENV`, which must be set
before Arrow's first allocation; :func:`use_system_pool` covers most of it in a worker
started without it), run without the profiler (:data:`WORKER_CONFIG`; the dashboard's
Profile page stays empty), and a task returns free pages after each chunk
(:func:`release_free_memory`, a few milliseconds per chunk of 10,000 readings). The
LocalCluster's workers and the batch image are set up so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

#: The environment of a worker process: Arrow on the C heap (``malloc_trim`` returns it).
WORKER_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system"}
#: The Dask configuration of a worker: no statistical profiler.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return trim


def use_system_pool() -> None:
    """Make the C heap Arrow's default pool for what Python code allocates (Arrow's own
    C++ code keeps the pool it started with: :data:`WORKER_ENV` covers both)."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def release_free_memory() -> None:
    """Return the free pages of Arrow's pool and of the C heap to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
