"""What the steps' Spark forms share: running a list of work items as Spark tasks with progress lines, a name of its
own for each task attempt's files, and the staged Parquet frames the tasks hand to the driver.

Every form has the same shape: the driver plans small work items (keyword shards, row groups), each task reads its
items' rows with pyarrow through the warehouse's own filesystem (a local folder, or S3 without any Hadoop jar), and
writes what it made to files of its own under the run's staging folder; the driver then writes the step's outputs
from those files in item order, so the result does not depend on which task ran when.

pyspark is imported by the caller's SparkSession only; nothing here imports it at module level.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids.progress import Progress
from daily_bids.storage.warehouse import parquet_options, read_whole, to_arrow, to_pandas

Item = TypeVar("Item")
PROGRESS_POLL_SECONDS = 1.0
# How long a failed job's other tasks are given to end before the caller removes their staging.
SETTLE_SECONDS = 60.0
# Tasks per core of the session: more tasks than cores balance uneven work and make progress finer, while a task's
# fixed cost (its start, a great-expectations validation built once per task) is paid a few times per core only.
TASKS_PER_CORE = 2


def tasks_for(context) -> int:
    """`TASKS_PER_CORE` tasks for each core of the session."""
    return TASKS_PER_CORE * max(1, context.defaultParallelism)


def run_tasks(
    context,
    items: Sequence[Item],
    work: Callable[[Iterator[tuple[int, Item]]], Iterator],
    progress: Progress,
    description: str,
    tasks: int | None = None,
) -> list:
    """`work` over `items` (numbered in order) in `tasks` Spark tasks, each a run of consecutive items (one task per
    item by default), collected. `progress` counts items, advanced as each task finishes (Spark's status tracker,
    polled in a driver thread). `work` is what a task runs: its items, numbered, in; what it yields (picklable) comes
    back to the driver."""
    slices = max(1, min(len(items), tasks or len(items)))
    items_per_task = len(items) / slices
    rdd = context.parallelize(list(enumerate(items)), slices).mapPartitions(work)
    # The job group names this step's jobs: another step's jobs on the same session are not counted.
    group = f"daily-bids-{uuid.uuid4().hex[:8]}"
    context.setJobGroup(group, description)
    done = threading.Event()
    counted = [0]

    def poll() -> None:
        from py4j.protocol import Py4JError  # the JVM's calls: here only when Spark runs

        tracker = context.statusTracker()
        while not done.wait(PROGRESS_POLL_SECONDS):
            finished = 0
            try:
                for job in tracker.getJobIdsForGroup(group):
                    info = tracker.getJobInfo(job)
                    for stage in info.stageIds if info else ():
                        stage_info = tracker.getStageInfo(stage)
                        finished += stage_info.numCompletedTasks if stage_info else 0
            except Py4JError:  # progress is only reported: a failed look (the job just ended) never fails the step
                continue
            if finished > counted[0]:
                progress.advance((finished - counted[0]) * items_per_task)
                counted[0] = finished

    poller = threading.Thread(target=poll, name=group, daemon=True)
    poller.start()
    collected = False
    try:
        results = rdd.collect()
        collected = True
    finally:
        done.set()
        poller.join()
        if not collected:  # a failed job's other tasks may still be writing: they end before the caller cleans up
            _cancel_and_wait(context, group)
        context.setLocalProperty("spark.jobGroup.id", None)  # later jobs of this thread are in no group
    progress.advance(max(0, slices - counted[0]) * items_per_task)  # a speculative copy counts too
    return results


def _cancel_and_wait(context, group: str) -> None:
    """Cancels the group's jobs and waits (up to `SETTLE_SECONDS`) until none of their tasks is running: Spark fails
    a job at its first failed task, while the others may still be writing their staged files."""
    context.cancelJobGroup(group)
    tracker = context.statusTracker()
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        stages = [
            tracker.getStageInfo(stage)
            for job in tracker.getJobIdsForGroup(group)
            for stage in (getattr(tracker.getJobInfo(job), "stageIds", None) or ())
        ]
        if not any(stage is not None and stage.numActiveTasks > 0 for stage in stages):
            return
        time.sleep(PROGRESS_POLL_SECONDS / 10)


def attempt_name() -> str:
    """A name of the running task attempt's own: a retried or speculative attempt never overwrites another's files.
    Called inside a task."""
    from pyspark import TaskContext

    return f"a{TaskContext.get().attemptNumber()}-{uuid.uuid4().hex[:8]}"


def write_staged(fs: pafs.FileSystem, path: str, frame: pd.DataFrame) -> None:
    """One staged frame, as the warehouse stores it (an empty frame keeps its columns), with its Parquet options."""
    table = to_arrow(frame)
    with fs.open_output_stream(path) as sink:
        pq.write_table(table, sink, **parquet_options(table))


def read_staged(fs: pafs.FileSystem, path: str) -> pd.DataFrame:
    """A staged frame, read whole (`read_whole`: on S3, again where the SDK could not retry an error)."""
    return to_pandas(pq.read_table(pa.BufferReader(read_whole(fs, path))))


def delete_staging(fs: pafs.FileSystem, folder: str) -> None:
    """The run's staging folder, gone; on S3 it exists only once a file was staged."""
    if fs.get_file_info(folder).type != pafs.FileType.NotFound:
        fs.delete_dir(folder)
