"""The memory hygiene of Dask tasks (models.distributed._memory)."""

from __future__ import annotations

import pyarrow as pa

from models.distributed._memory import release_free_memory, use_system_pool


def test_release_free_memory_returns_what_the_pool_no_longer_uses() -> None:
    pool = pa.default_memory_pool()
    table = pa.table({"x": list(range(100_000))})
    del table
    release_free_memory()  # glibc: malloc_trim; elsewhere only the pool
    assert pool.bytes_allocated() >= 0


def test_use_system_pool_makes_the_c_heap_the_default_and_keeps_it() -> None:
    before = pa.default_memory_pool()
    try:
        use_system_pool()
        assert pa.default_memory_pool().backend_name == "system"
        use_system_pool()  # a second task in the same worker
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)
