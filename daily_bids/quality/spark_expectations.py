"""A stored table's expectations on Spark: `run_expectations_in_batches` over a table's days, with the row groups of
each day's partition judged in Spark tasks (a few per core, each a run of row groups), and the same outcomes as a
result.

Each task reads its row groups' rows with pyarrow through the warehouse's own filesystem (a local folder, or S3
without any Hadoop jar) and judges the rules on each row alone with one great-expectations validation. When the suite
has rules across rows (uniqueness), it also stages its rows' kept columns (the keys, the rules' columns) under the
run's folder in the warehouse. The driver then merges each rule's outcomes in day and row-group order, and judges the
rules across rows once, on the kept columns of every row group in that order, as the local engine does with its
batches. Counts add up over row groups and the samples are the first failing rows in row order, so how the rows are
cut into batches does not change an outcome.

pyspark is imported by the caller's SparkSession only, and great_expectations inside the tasks and the driver's
judging; nothing here imports either at module level.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from daily_bids.progress import Progress, quiet
from daily_bids.quality.expectations import (
    BATCH_ROWS,
    Expectation,
    Outcome,
    judge_across_rows,
    merged,
    sample_columns,
    split_suite,
    validation,
)
from daily_bids.spark_tasks import attempt_name, delete_staging, read_staged, run_tasks, tasks_for, write_staged
from daily_bids.storage.warehouse import SPARK_STAGING_FOLDER, Warehouse

# A work item: a day and one of its partition's row groups (None for a partition without any: its empty frame).
Item = tuple[dt.date, int | None]


@dataclass(frozen=True)
class CheckTask:
    """What every task of a check needs, broadcast once. The warehouse travels as itself: its filesystem (local, or
    S3 with its options) pickles, and a task reads through it as the driver would."""

    store: Warehouse
    table: str
    name: str
    row_rules: tuple[Expectation, ...]
    across: tuple[Expectation, ...]
    batch_rows: int
    staging: str  # the check's folder in the warehouse

    def path(self, number: int, attempt: str) -> str:
        return f"{self.staging}/{number:06d}-{attempt}.parquet"


def run_expectations_on_spark(
    spark,
    store: Warehouse,
    table: str,
    days: list[dt.date],
    expectations: list[Expectation],
    name: str,
    log: Callable[[str], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> list[Outcome]:
    """`expectations` on the stored rows of `table` over `days`, one Outcome each, in order: what
    `run_expectations_in_batches(store.iter_partitions(table, days, batch_rows), expectations, name)` gives, with
    each row group of each day judged in a Spark task. A rule with a `mostly` share is judged on the counts of every
    row group together. With `log`, progress lines say the row groups checked, the rate and the time left."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    days = list(days)
    if not days:
        raise ValueError(f"{table}: no days were asked for")
    # A read-only view: the run's held partitions are read as the driver reads them, and a task writes none of them.
    view = store.seen_by_run(store.run_id) if store.run_id is not None else store
    view.require_partitions(table, days)  # every missing day named at once, before any task starts
    items: list[Item] = [(day, group) for day in days for group in _row_groups(view, table, day)]
    row_rules, across = split_suite(expectations)
    staging = store.path(SPARK_STAGING_FOLDER, uuid.uuid4().hex)
    if across and store.is_local:  # a local filesystem opens no file in a missing folder (S3 has no folders to make)
        store.fs.create_dir(staging, recursive=True)
    context = spark.sparkContext
    task = CheckTask(view, table, name, tuple(row_rules), tuple(across), batch_rows, staging)
    shared = context.broadcast(task)
    progress = Progress(f"checking {name} on Spark", len(items), log or quiet, unit="row groups")
    try:
        started = time.perf_counter()
        tasks = min(len(items), tasks_for(context))  # a validation is built once per task
        if log is not None:
            log(
                f"checking {name} on Spark ({context.master}): {len(items)} row group(s) of {len(days)} day(s) "
                f"in {tasks} task(s)"
            )
        done = run_tasks(
            context, items, lambda part: _check_task(shared.value, part), progress, f"checking {name}", tasks
        )
        by_item = dict(pickle.loads(row) for row in done)  # item number → (attempt, outcomes of each batch)
        if sorted(by_item) != list(range(len(items))):
            raise RuntimeError(f"checking {name} on Spark: {len(by_item)} results for {len(items)} row groups")
        found: dict[int, list[Outcome]] = {id(e): [] for e in expectations}
        for number in range(len(items)):  # in day and row-group order: samples are the first failing rows
            for batch in by_item[number][1]:
                for rule, outcome in zip(row_rules, batch, strict=True):
                    found[id(rule)].append(dataclasses.replace(outcome, expectation=rule))  # the caller's rule
        if across:
            kept = [read_staged(store.fs, task.path(number, by_item[number][0])) for number in range(len(items))]
            for outcome in judge_across_rows(kept, across, name):
                found[id(outcome.expectation)].append(outcome)
        if log is not None:
            log(f"checked {name} on Spark: {len(items)} row group(s) in {time.perf_counter() - started:,.1f} s")
        return [merged(e, found[id(e)]) for e in expectations]
    finally:  # gone from the executors and from the driver's temporary file: the warehouse may hold S3 keys
        shared.destroy()
        delete_staging(store.fs, staging)


def _row_groups(store: Warehouse, table: str, day: dt.date) -> list[int | None]:
    """A day's work items: each row group of its partition, or the whole partition when it has none (no rows)."""
    return list(range(store.partition_row_groups(table, day))) or [None]


def _check_task(task: CheckTask, items: Iterator[tuple[int, Item]]) -> Iterator[bytes]:
    """A task's row groups, one after the other: each row rule's outcome on each of a row group's batches, in the
    suite's order, and its rows' kept columns staged for the rules across rows."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    attempt = attempt_name()
    row_rules, across = list(task.row_rules), list(task.across)
    position = {id(rule): index for index, rule in enumerate(row_rules)}
    validate = validation(f"{task.name}_rows", row_rules)  # once per task: building one costs ~0.5 s
    for number, (day, group) in items:
        outcomes, kept = [], []
        groups = None if group is None else [group]
        for batch in task.store.iter_partition(task.table, day, task.batch_rows, row_groups=groups):
            outcomes.append(sorted(validate(batch), key=lambda outcome: position[id(outcome.expectation)]))
            if across:
                kept.append(batch[sample_columns(batch, across)])
        if across:
            write_staged(task.store.fs, task.path(number, attempt), pd.concat(kept, ignore_index=True))
        yield pickle.dumps((number, (attempt, outcomes)))
