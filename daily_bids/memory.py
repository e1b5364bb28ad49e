"""Memory a finished step no longer uses, handed back before the next step of the same run.

A run executes its steps one after another in one process (`in_process_executor`). Each step frees its frames, but the
process kept them: Arrow's allocator (mimalloc) holds freed pages for reuse, and frames held in reference cycles wait
for Python's cycle collector, which counts objects, not bytes. In a 10M-keyword run the process grew past 5 GB where
no step needs more than 4 (`benchmarks/daily_increment.py --together`).
"""

import ctypes
import ctypes.util
import gc

import pyarrow as pa


def release_memory() -> None:
    """Collect reference cycles, then return Arrow's and the C heap's free pages to the operating system."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    _trim_c_heap()


def _trim_c_heap() -> None:
    """glibc's `malloc_trim`: NumPy's and pandas' freed small blocks. Other C libraries have no such call."""
    library = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None
    if trim is not None:
        trim(0)
