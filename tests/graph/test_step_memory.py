"""Each step of a run hands back the memory it no longer uses before the next one starts in the same process."""

import gc

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assets.automation import JOBS, STEP_HOOKS
from daily_bids import memory


class _Frame:
    """A step's result it let go of, still holding itself."""


@dg.asset
def heavy_step() -> None:
    frame = _Frame()
    frame.itself, frame.column = frame, pc.add(pa.array(np.arange(5_000_000)), 1)  # 40 MB in Arrow's pool


def test_a_step_leaves_nothing_behind_for_the_next_one(monkeypatch):
    monkeypatch.setattr(memory, "COLLECT_ABOVE_ARROW_BYTES", 20_000_000)  # the step leaves 40 MB in a cycle
    job = dg.define_asset_job("heavy_job", selection=dg.AssetSelection.assets(heavy_step), hooks=STEP_HOOKS)
    defs = dg.Definitions(assets=[heavy_step], jobs=[job])
    baseline = pa.total_allocated_bytes()
    gc.disable()  # without the hook, the cycle would hold the column until the collector happened to run
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("heavy_job").execute_in_process(instance=instance)
            assert result.success
            hooks = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.HOOK_COMPLETED]
        assert "heavy_step" in hooks
        assert pa.total_allocated_bytes() <= baseline
    finally:
        gc.enable()


def test_every_job_of_the_project_hands_memory_back_after_each_step():
    for job in JOBS:
        assert STEP_HOOKS <= set(job.hooks), job.name
