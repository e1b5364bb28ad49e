"""Memory a finished step no longer uses, handed back before the next step of the same run.

A run executes its steps one after another in one process (`in_process_executor`). Each step frees its frames, but the
process kept them: Arrow's allocator (mimalloc) holds freed pages for reuse, and frames held in reference cycles wait
for Python's cycle collector, which counts objects, not bytes. In a 10M-keyword run the process grew past 5 GB where
no step needs more than 4 (`benchmarks/daily_increment.py --together`).
"""

import ctypes
import ctypes.util
import functools
import gc
import os
import resource

import pyarrow as pa

# A full collection costs about 0.3 s with the platform's modules loaded, and a small account's run has some 25 steps:
# cycles are collected only when the process grew much since the last hand-back, or when Arrow still holds much memory
# (frames read from Parquet keep their columns in Arrow's buffers, so a cycle holding them shows there).
COLLECT_AFTER_GROWTH_BYTES = 512 << 20
COLLECT_ABOVE_ARROW_BYTES = 256 << 20
_resident_after_last_release = [0]  # bytes


def release_memory() -> bool:
    """Collect reference cycles (when worth it: above), then return Arrow's and the C heap's free pages to the
    operating system. Returns whether cycles were collected."""
    grown = _resident_bytes() - _resident_after_last_release[0]
    collect = grown > COLLECT_AFTER_GROWTH_BYTES or pa.total_allocated_bytes() > COLLECT_ABOVE_ARROW_BYTES
    if collect:
        gc.collect()
    pa.default_memory_pool().release_unused()
    _trim_c_heap()
    _resident_after_last_release[0] = _resident_bytes()
    return collect


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:  # Linux: pages resident now
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except FileNotFoundError:  # no /proc (macOS): the peak so far, at least what is held now
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _trim_c_heap() -> None:
    """glibc's `malloc_trim`: NumPy's and pandas' freed small blocks. Other C libraries have no such call."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """Looked up once: finding the C library runs `ldconfig` in a subprocess."""
    library = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None
