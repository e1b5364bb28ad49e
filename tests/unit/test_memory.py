"""What a finished step leaves in the process is handed back (`release_memory`)."""

import gc

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from daily_bids import memory


class _Step:
    """Something a step built and let go of, still holding itself (as library objects often do)."""


@pytest.fixture
def column_in_a_cycle():
    """40 MB in Arrow's pool, held only by a reference cycle; the collector must not run on its own meanwhile."""
    baseline = pa.total_allocated_bytes()
    gc.disable()
    step = _Step()
    step.itself, step.column = step, pc.add(pa.array(np.arange(5_000_000)), 1)
    del step
    assert pa.total_allocated_bytes() >= baseline + 40_000_000
    yield baseline
    gc.enable()
    gc.collect()


def test_arrow_memory_held_in_a_reference_cycle_is_freed(column_in_a_cycle, monkeypatch):
    monkeypatch.setattr(memory, "COLLECT_AFTER_GROWTH_BYTES", 1 << 50)  # judged by Arrow's memory alone
    monkeypatch.setattr(memory, "COLLECT_ABOVE_ARROW_BYTES", 20_000_000)
    assert memory.release_memory()
    assert pa.total_allocated_bytes() <= column_in_a_cycle


def test_a_small_process_is_not_collected(column_in_a_cycle, monkeypatch):
    """Below both thresholds a full collection would cost more than it frees: the cycle stays."""
    monkeypatch.setattr(memory, "COLLECT_AFTER_GROWTH_BYTES", 1 << 50)
    monkeypatch.setattr(memory, "COLLECT_ABOVE_ARROW_BYTES", 1 << 50)
    assert not memory.release_memory()
    assert pa.total_allocated_bytes() >= column_in_a_cycle + 40_000_000


def test_a_process_that_grew_is_collected(column_in_a_cycle, monkeypatch):
    """A step that grew the process by more than the threshold since the last hand-back gets its cycles collected."""
    monkeypatch.setattr(memory, "COLLECT_ABOVE_ARROW_BYTES", 1 << 50)  # judged by the growth alone
    monkeypatch.setattr(memory, "COLLECT_AFTER_GROWTH_BYTES", 20_000_000)
    monkeypatch.setattr(memory, "_resident_after_last_release", [0])  # as before a run's first hand-back
    assert memory.release_memory()
    assert pa.total_allocated_bytes() <= column_in_a_cycle
    assert not memory.release_memory()  # nothing grew since
