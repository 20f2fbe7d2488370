"""The processor child of ``bench_fleet.py``: one ``iotml processor`` with the model, from
``IOTML_*`` variables, with the bench's gauges in its ``/metrics`` (partition times, RocksDB
and malloc memory).

    python bench/fleet_child.py [--profile FILE]
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any


def child(profile: str | None) -> None:
    """One processor with the model, from IOTML_* variables, with this bench's gauges;
    ``profile``: cProfile its processing thread from the first record on, written there
    when it stops."""
    import cProfile

    from prometheus_client import Gauge

    from iotml.core.logs import setup_logging
    from iotml.core.options import build_settings
    from processor.app import Processor
    from processor.settings import ProcessorSettings

    setup_logging("WARNING")
    proc = Processor(build_settings(ProcessorSettings, {}))
    clocks = proc.engine.clocks

    def gauge(name: str, fn: Callable[[], float]) -> None:
        Gauge(f"bench_{name}", name, registry=proc.metrics.registry).set_function(fn)

    def times() -> list[int]:
        return [c.event_time or 0 for c in list(clocks.values())]

    gauge("partition_time_min_ms", lambda: min(times(), default=0))
    gauge("partition_time_max_ms", lambda: max(times(), default=0))
    gauge("rocksdb_memtables_bytes", lambda: _rocksdb(proc, "cur-size-all-mem-tables"))
    gauge("rocksdb_block_cache_bytes", lambda: _rocksdb(proc, "block-cache-usage", True))
    gauge("rocksdb_keys", lambda: _rocksdb(proc, "estimate-num-keys"))
    gauge("python_blocks", sys.getallocatedblocks)
    gauge("malloc_in_use_bytes", lambda: _mallinfo()[0])
    gauge("malloc_free_bytes", lambda: _mallinfo()[1])
    profiler = cProfile.Profile() if profile else None
    if profiler:  # from the first record on: start-up (imports, model load) is not the cost
        engine, first = proc.engine, proc.engine.process

        def profiled(*args: Any) -> Any:
            engine.process = first  # type: ignore[method-assign]
            profiler.enable()
            return first(*args)

        engine.process = profiled  # type: ignore[method-assign,assignment]
    try:
        proc.run()
    finally:
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)


def _rocksdb(proc: Any, prop: str, shared: bool = False) -> float:
    """A RocksDB property summed over the store partitions (``shared``: the first one's,
    e.g. the block cache every partition shares). Reads quixstreams internals: for this
    bench's diagnostics only."""
    app, total = proc._app, 0
    try:
        for stores in list(app._state_manager.stores.values()) if app else []:
            for store in list(stores.values()):
                for part in list(store.partitions.values()):
                    value = part._db.property_int_value(f"rocksdb.{prop}") or 0
                    if shared:
                        return value
                    total += value
    except Exception:  # a partition closing under us: report nothing this time
        return 0
    return total


_MALLINFO2 = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


@functools.cache
def _mallinfo2() -> Any:
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in _MALLINFO2.split()]

    fn = ctypes.CDLL("libc.so.6").mallinfo2  # glibc >= 2.33
    fn.restype = MallInfo2
    return fn


def _mallinfo() -> tuple[int, int]:
    """glibc malloc: (bytes in use, bytes free but kept by the process); 0s elsewhere."""
    try:
        m = _mallinfo2()()
    except (OSError, AttributeError):
        return 0, 0
    return m.uordblks + m.hblkhd, m.fordblks


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="cProfile the processing thread into this file")
    child(parser.parse_args().profile)
