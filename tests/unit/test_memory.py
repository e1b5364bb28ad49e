"""What a finished step leaves in the process is handed back (`release_memory`)."""

import gc

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from daily_bids.memory import release_memory


class _Step:
    """Something a step built and let go of, still holding itself (as library objects often do)."""


def test_a_column_held_in_a_reference_cycle_is_freed():
    baseline = pa.total_allocated_bytes()
    gc.disable()  # the cycle collector must not run on its own: only `release_memory` frees the cycle
    try:
        step = _Step()
        step.itself, step.column = step, pc.add(pa.array(np.arange(5_000_000)), 1)  # 40 MB in Arrow's pool
        del step
        assert pa.total_allocated_bytes() >= baseline + 40_000_000
        release_memory()
        assert pa.total_allocated_bytes() <= baseline
    finally:
        gc.enable()
