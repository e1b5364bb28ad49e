"""The Ads Editor CSV on Spark: `write_ads_editor_csv`'s file, byte for byte, with the formatting spread over tasks.

At 10M keywords the sheet's time is formatting its lines (`ads_editor_pieces`), not reading or writing bytes. The
work items are the row groups of the day's bids partition, in order, a run of them in each of a few Spark tasks per
core: a task reads each of its row groups' rows with pyarrow through the warehouse's own filesystem (a local folder,
or S3 without any Hadoop jar), formats them batch by batch without the header, and writes the bytes to a part file
of the row group's own in the run's staging folder. The driver then writes the header and every part in row-group
order through `Warehouse.byte_writer`, a chunk at a time: the file appears only once complete, and is never held
whole in memory.

The bytes are the local engine's because a line depends on its row alone (the formatting's fallbacks are per cell),
so where a batch starts changes nothing, and the header is written once, first, as its first batch writes it.

pyspark is imported by the caller's SparkSession only; nothing here imports it at module level.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from daily_bids import currency as currencies
from daily_bids.progress import Progress, quiet
from daily_bids.quality.expectations import BATCH_ROWS
from daily_bids.serving.ads_editor import HEADER, ads_editor_pieces
from daily_bids.serving.publishing import ads_editor_columns
from daily_bids.spark_tasks import attempt_name, delete_staging, run_tasks, tasks_for
from daily_bids.storage.warehouse import SPARK_STAGING_FOLDER, Warehouse

# What the driver copies from a part to the sheet at a time: its memory stays bounded whatever a part's size.
COPY_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class SheetTask:
    """What every task of a sheet needs, broadcast once. The warehouse travels as itself: its filesystem (local, or
    S3 with its options) pickles, and a task reads through it as the driver would."""

    store: Warehouse
    bids_table: str
    day: dt.date
    columns: tuple[str, ...]
    batch_rows: int
    currency: str
    staging: str  # the run's folder in the warehouse

    def path(self, number: int, attempt: str) -> str:
        return f"{self.staging}/{number:05d}-{attempt}.csv"


def write_ads_editor_csv_on_spark(
    spark,
    store: Warehouse,
    bids_table: str,
    day: dt.date,
    relative_path: str,
    batch_rows: int = BATCH_ROWS,
    currency: str = currencies.DEFAULT_CURRENCY,
    log: Callable[[str], None] | None = None,
) -> None:
    """`write_ads_editor_csv` with each row group of the day's bids formatted in a Spark task: the same file, byte
    for byte, which appears only once complete. With `log`, progress lines go to it: the row groups formatted, then
    the rows copied into the sheet on a long copy."""
    log = log or quiet
    columns = ads_editor_columns(store, bids_table, day)
    # The columns and the currency judged before any task starts, as the local engine's first batch judges them.
    ads_editor_pieces(pa.table({name: pa.array([], pa.null()) for name in columns}), False, currency)
    row_groups = store.partition_row_groups(bids_table, day)
    run_folder = store.path(SPARK_STAGING_FOLDER, uuid.uuid4().hex)
    if store.is_local:  # a local filesystem opens no file in a missing folder (S3 has no folders to make)
        store.fs.create_dir(run_folder, recursive=True)
    context = spark.sparkContext
    # A read-only view: the run's held partitions are read as the driver reads them, and a task writes none.
    view = store.seen_by_run(store.run_id) if store.run_id is not None else store
    task = SheetTask(view, bids_table, day, tuple(columns), batch_rows, currency, run_folder)
    try:
        shared = context.broadcast(task)
        started = time.perf_counter()
        tasks = min(row_groups, tasks_for(context))
        log(f"Ads Editor CSV for {day} on Spark ({context.master}): {row_groups} row group(s) in {tasks} task(s)")
        formatted = Progress(f"Ads Editor CSV for {day} on Spark", row_groups, log, unit="row groups")
        try:
            parts = run_tasks(
                context,
                list(range(row_groups)),
                lambda part: _sheet_task(shared.value, part),
                formatted,
                "Ads Editor CSV",
                tasks,
            )
        finally:  # gone from the executors and from the driver's temporary file: the warehouse may hold S3 keys
            shared.destroy()
        parts.sort()  # (item, path, rows): in row-group order, whichever task finished first
        if [number for number, _, _ in parts] != list(range(row_groups)):
            raise RuntimeError(f"Ads Editor CSV on Spark: {len(parts)} part(s) for {row_groups} row group(s)")
        log(f"Ads Editor CSV for {day} on Spark: {row_groups} row group(s) formatted in {_since(started)}")
        copied = Progress(f"writing the Ads Editor CSV for {day}", sum(rows for _, _, rows in parts), log)
        with store.byte_writer(relative_path) as sheet:
            sheet.write(HEADER)
            for _, path, rows in parts:
                with store.fs.open_input_stream(path) as part:
                    while chunk := part.read(COPY_CHUNK_BYTES):
                        sheet.write(chunk)
                copied.advance(rows)
    finally:
        delete_staging(store.fs, run_folder)


def _sheet_task(task: SheetTask, items: Iterator[tuple[int, int]]) -> Iterator[tuple[int, str, int]]:
    """One task: each of its row groups' lines, without the header, in a part file of its own; yields the item's
    number, the part's path and its rows."""
    attempt = attempt_name()
    for number, row_group in items:
        path, rows = task.path(number, attempt), 0
        with task.store.fs.open_output_stream(path) as part:
            batches = task.store.iter_partition(
                task.bids_table, task.day, task.batch_rows, list(task.columns), row_groups=[row_group]
            )
            for batch in batches:
                for piece in ads_editor_pieces(batch, with_header=False, currency=task.currency):
                    part.write(piece)
                rows += len(batch)
        yield number, path, rows


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:,.1f} s"
