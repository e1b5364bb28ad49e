"""The warehouse: partitioned Parquet tables under one root, on a local disk or on S3.

Layout, Hive-style so that pyarrow, DuckDB and Spark read a whole table at once:

    <root>/<table>/date=YYYY-MM-DD/data.parquet      a daily partition (the `date` column lives in the path)
    <root>/<table>/data.parquet                      an unpartitioned table
    <root>/<table>/date=YYYY-MM-DD/<recipe>-….parquet  a day derived from another table's day (`derived_days.py`)
    <root>/charts/<table>/<name>.png                 a table's charts, outside its folder: Spark, DuckDB and
                                                     pyarrow read a table's folder as Parquet and nothing else
    <root>/<model>/...                               model bundles and pointers; exports/: the bid CSVs

A partition is one file, replaced atomically: on a local disk it is written to a hidden temporary file in the same
folder and renamed over the old one; on S3 a PUT replaces an object atomically. Readers (Hive partitioning included)
skip names that start with `.`, so a write that dies half-way leaves nothing a reader would see.

A step that writes several partitions (a range, or two tables) stages them (`Warehouse.staging`): they are written
under `<root>/.staging/<id>/` and moved over the warehouse's only once the step has made all of them, so a step that
fails part-way leaves every stored partition as it was.

A table with blocking checks is held a step longer (`Warehouse.holding`): a run writes its partitions under
`<root>/.staging/run-<run id>/`, where that run's readers (its checks) see them in place of the stored ones, and they
replace the stored ones only once every blocking check on them has passed (`release_if_checked`). Other runs and
other readers see the stored partitions until then, and a check that fails leaves them as they were.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids.schema import as_day
from daily_bids.settings import S3Options  # the one form of the S3 settings; imported from here too

PARTITION_COLUMN = "date"
DATA_FILE = "data.parquet"
UPLOAD_CHUNK_BYTES = 8 << 20
# Rows per row group of a whole frame written at once: Arrow's own default, converted one row group at a time.
ROW_GROUP_ROWS = 1 << 20
# On S3 a Parquet file up to this size is fetched in one GET and decoded in memory: pyarrow reading it in place asks
# for each column chunk of each row group on its own (9 requests for a small partition, measured on moto). A larger
# file is read in place, so that only the row groups and columns asked for travel.
WHOLE_READ_BYTES = 64 << 20
# A temporary file this old is left over from a killed write (a real write takes seconds to minutes).
STALE_TEMPORARY_SECONDS = 3600
# Where a step's partitions wait until the step has written all of them (hidden from readers by its leading dot).
STAGING_FOLDER = ".staging"
# Where the Spark engine's tasks stage their files (features and scoring), each run in a folder of its own; swept
# with the steps' staging when a killed driver leaves one behind.
SPARK_STAGING_FOLDER = ".spark-staging"
# Parquet dictionaries pay only for columns whose values repeat. Building one costs a hash per value, and the writer
# drops a column chunk's dictionary once it outgrows a page (Arrow's default limit), after paying for it. A column is
# written with a dictionary when a file's first rows repeat each of its values this many times on average and its
# distinct values fit a page: per-keyword IDs and model estimates are written plain.
DICTIONARY_MIN_REPEATS = 4
DICTIONARY_PAGE_BYTES = 1 << 20
DICTIONARY_SAMPLE_ROWS = 1 << 18
# A run's partitions held for their blocking checks: `<staging>/run-<run id>/<table>/date=…`, beside what each held
# table waits for (`_tables/<table>.json`: the checks' names) and the checks that passed (`_passed/<check>`).
HELD_PREFIX, HELD_TABLES, HELD_PASSES = "run-", "_tables", "_passed"


class MissingPartitionsError(LookupError):
    """Raised when a read asks for partitions that were never written."""


# The AWS SDK reads a ranged GET's body into a buffer the size of the range. When S3 answers a small object's GET with
# an error (500, 503 SlowDown), its XML body does not fit, and the SDK reports this non-retryable INTERNAL_FAILURE
# instead of the retryable error it was (apache/doris#66557 traces it). A whole read of a small file retries it.
UNFLUSHED_RESPONSE = "Failed to flush response stream"
WHOLE_READ_ATTEMPTS = 4


def read_whole(fs: pafs.FileSystem, path: str) -> bytes:
    """A file's bytes, read again (with a short backoff) where S3's answer was an error the SDK could not hold."""
    for attempt in range(1, WHOLE_READ_ATTEMPTS + 1):
        try:
            with fs.open_input_stream(path) as source:
                return source.read()
        except OSError as error:
            if UNFLUSHED_RESPONSE not in str(error) or attempt == WHOLE_READ_ATTEMPTS:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def filesystem_for(uri: str, s3: S3Options | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path of a local folder or an `s3://bucket/prefix` URI."""
    uri = uri.rstrip("/")
    if uri.startswith("s3://"):
        s3 = s3 or S3Options()
        filesystem = pafs.S3FileSystem(
            endpoint_override=s3.endpoint_url or None,
            region=s3.region,
            access_key=s3.access_key or None,
            secret_key=s3.secret_key or None,
            scheme="http" if s3.endpoint_url.startswith("http://") else "https",
            # Bounded: a throttled, failing or stalled request is retried with backoff a few times, then the step
            # fails (the writes are atomic, so a failed step leaves nothing half-written).
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=s3.max_attempts),
            connect_timeout=s3.timeout_seconds,
            request_timeout=s3.timeout_seconds,
            # A small object is then one PutObject at close instead of a multipart upload's three requests.
            allow_delayed_open=True,
        )
        return filesystem, uri[len("s3://") :]
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


CHARTS_FOLDER = "charts"


def chart_path(table: str, name: str) -> str:
    """Where a chart of `table` is kept (a relative path for `write_bytes` and `display_uri`)."""
    return f"{CHARTS_FOLDER}/{table}/{name}"


# Whose data the warehouse holds: the report source that first wrote to it.
SOURCE_IDENTITY_FILE = "_deployment/source.json"


class SourceMismatchError(ValueError):
    """The warehouse holds another source's reports; the message says whose, and what to do."""


class Warehouse:
    def __init__(self, uri: str, s3: S3Options | None = None):
        self.uri = uri.rstrip("/")
        self.fs, self.root = filesystem_for(uri, s3)
        # How an S3 warehouse is reached (None for a folder): what the Spark engine's tasks open it with.
        self.s3: S3Options | None = (s3 or S3Options()) if self.uri.startswith("s3://") else None
        # The run whose held partitions this view reads in place of the stored ones, and the checks its partition
        # writes are held for (empty: written straight into the tables). See `seen_by_run` and `holding`.
        self.run_id: str | None = None
        self.held_checks: dict[str, tuple[str, ...]] = {}
        self._held_written: set[str] = set()

    def seen_by_run(self, run_id: str) -> Warehouse:
        """The warehouse as the run `run_id` sees it: its own held partitions in place of the stored ones."""
        view = copy.copy(self)
        view.run_id, view.held_checks, view._held_written = run_id, {}, set()
        return view

    def holding(self, run_id: str, checks_by_table: Mapping[str, Iterable[str]]) -> Warehouse:
        """The warehouse a step of `run_id` writes through, when blocking checks judge what it writes (the names of
        each of the step's tables' own checks): its partition writes are held under the run's folder until the checks
        have passed (`release_if_checked`). A table is held for its own checks; one without any (a by-product, or an
        output no check looks at) for every check of the step. With no checks at all, partitions are written straight
        into the tables."""
        view = self.seen_by_run(run_id)
        view.held_checks = {table: tuple(sorted(checks)) for table, checks in checks_by_table.items()}
        return view

    def checks_holding(self, table: str) -> tuple[str, ...]:
        """The checks `table`'s partitions written through this view wait for (none: written straight in)."""
        return self.held_checks.get(table) or tuple(sorted({c for checks in self.held_checks.values() for c in checks}))

    def discard_held(self) -> None:
        """Throw away the partitions this view held (its step failed): the stored ones stay as they were."""
        if not self._held_written:
            return
        for table in sorted(self._held_written):
            self.fs.delete_dir_contents(self._held_folder(table), missing_dir_ok=True)
            manifest = self._held_folder(HELD_TABLES, f"{table}.json")
            if self.fs.get_file_info(manifest).type == pafs.FileType.File:
                self.fs.delete_file(manifest)
        self._held_written.clear()
        if not self.held_tables():
            self.fs.delete_dir_contents(self._held_folder(), missing_dir_ok=True)
            self.fs.delete_dir(self._held_folder())

    def _held_folder(self, *parts: str) -> str:
        return self.path(STAGING_FOLDER, f"{HELD_PREFIX}{self.run_id}", *parts)

    def _held_partition_path(self, table: str, day: dt.date) -> str:
        return self._held_folder(table, f"{PARTITION_COLUMN}={day.isoformat()}", DATA_FILE)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def display_uri(self, *parts: str) -> str:
        """The path as a user would type it: a local path or an s3:// URI."""
        return self.path(*parts) if self.is_local else "s3://" + self.path(*parts)

    def claim_for_source(self, identity: dict[str, object], settings_hint: str) -> None:
        """Record `identity` (which report source this warehouse holds) on first use; afterwards refuse any other,
        so that one account's keywords, features and champion never mix with another's."""
        if not self.exists(SOURCE_IDENTITY_FILE):
            self.write_bytes(SOURCE_IDENTITY_FILE, json.dumps(identity, indent=2, sort_keys=True).encode())
            return
        recorded = json.loads(self.read_bytes(SOURCE_IDENTITY_FILE))
        if recorded != identity:
            raise SourceMismatchError(
                f"the warehouse {self.display_uri()} holds the reports of {describe_source(recorded)}, but this "
                f"deployment reads {describe_source(identity)} ({settings_hint}). Give this account a warehouse of "
                f"its own (a new BIDS_WAREHOUSE, and a new DAGSTER_HOME); if it is the same account's reports in a new "
                f"place, delete {self.display_uri(SOURCE_IDENTITY_FILE)} and the next run records the new one."
            )

    # ---- daily partitions ---------------------------------------------------------------------------------------
    def partition_path(self, table: str, day: dt.date) -> str:
        return self.path(table, f"{PARTITION_COLUMN}={day.isoformat()}", DATA_FILE)

    def write_partition(self, table: str, day: dt.date, frame: pd.DataFrame) -> str:
        """Replace one day of `table` with `frame` (whose `date` column, if present, must all be `day`)."""
        frame = _undated(frame, table, day)
        path = self._written_partition_path(table, day)
        self._write_parquet_atomically(path, frame)
        return path

    def _written_partition_path(self, table: str, day: dt.date) -> str:
        """Where a write of `table`'s day goes: the table, or the run's held folder (noting what the table waits
        for, once per table)."""
        checks = self.checks_holding(table)
        if not checks:
            return self.partition_path(table, day)
        self._held_written.add(table)
        manifest = self._held_folder(HELD_TABLES, f"{table}.json")
        if self.fs.get_file_info(manifest).type == pafs.FileType.NotFound:
            self._write_atomically(manifest, lambda sink: sink.write(json.dumps(list(checks)).encode()))
        return self._held_partition_path(table, day)

    def stored_partition_path(self, table: str, day: dt.date) -> str:
        """The file a reader of `table`'s day reads: this run's held partition if there is one, else the table's."""
        if self.run_id is not None:
            held = self._held_partition_path(table, day)
            if self.fs.get_file_info(held).type == pafs.FileType.File:
                return held
        return self.partition_path(table, day)

    def write_partitions(self, table: str, days: Iterable[dt.date], frame: pd.DataFrame) -> list[str]:
        """Split `frame` by its `date` column into the given days; every day is written, empty or not."""
        days = list(days)
        dates = as_day(frame[PARTITION_COLUMN])
        outside = sorted(set(dates.dt.date) - set(days))
        if outside:
            raise ValueError(f"{table}: rows dated {outside[:3]} fall outside the partitions being written")
        by_day = {key.date(): group for key, group in frame.groupby(dates.to_numpy(), sort=False)}
        with self.staging() as staged:  # all days or none: a failure on one day leaves every stored day as it was
            for day in days:
                staged.write_partition(table, day, by_day.get(day, frame.iloc[0:0]))
            return staged.publish(table)

    def read_partitions(
        self,
        table: str,
        days: Iterable[dt.date],
        columns: list[str] | None = None,
        keyword_ids: np.ndarray | None = None,
        keyword_range: tuple[int | None, int | None] = (None, None),
    ) -> pd.DataFrame:
        """The given days of `table` with their `date` column; raises MissingPartitionsError naming absent days.
        With `keyword_ids`, only those keywords' rows, and with `keyword_range` (low, high), only keyword_id in
        [low, high), None for an open end: filtered while reading, day by day, so a sample or a shard of a large
        table costs its own memory (and row groups outside a range are skipped by their statistics)."""
        days = sorted(set(days))
        files = self.require_partitions(table, days)
        filters = _keyword_filters(keyword_ids, keyword_range)
        frames = [self._read_day(files[day], day, columns, filters) for day in days]
        if not frames:
            raise ValueError(f"{table}: no days were asked for")
        return pd.concat(frames, ignore_index=True)

    def sample_partition(self, table: str, day: dt.date, columns: list[str], rows: int, seed: int = 0) -> pd.DataFrame:
        """At most `rows` rows of `table`'s day, drawn without replacement by `seed`, in the day's order, with a fresh
        index. Taken from the decoded columns before they become a frame: a sample of a 10M-row day costs the sample,
        not the day, in pandas. NumPy's Generator draws a million of 10M rows in 0.04 s; the legacy RandomState
        that `DataFrame.sample` uses shuffles all 10M first (0.34 s), for each of the drift check's seven days."""
        arrow = self._read_parquet(self.require_partitions(table, [day])[day], columns)
        drawn = np.random.default_rng(seed).choice(
            arrow.num_rows, min(rows, arrow.num_rows), replace=False, shuffle=False
        )
        return with_day(to_pandas(arrow.take(np.sort(drawn))), day)

    def require_partitions(self, table: str, days: Iterable[dt.date]) -> dict[dt.date, pafs.FileInfo]:
        """The files of the given days of `table`; raises MissingPartitionsError naming the days that have none."""
        files = self._partition_files(table)  # one listing, not a request per day
        missing = sorted(d for d in set(days) if d not in files)
        if missing:
            raise MissingPartitionsError(
                f"{table}: {len(missing)} partition(s) have not been materialized: "
                f"{_day_ranges(missing)} (looked under {self.display_uri(table)})"
            )
        return files

    def iter_partition(
        self,
        table: str,
        day: dt.date,
        batch_rows: int,
        columns: list[str] | None = None,
        row_groups: list[int] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """One day of `table` in frames of at most `batch_rows` rows, with their `date` column: memory stays bounded
        by the batch, whatever the partition's size. Whole row groups are read together up to a batch; a larger one
        is split. With `row_groups`, only those row groups' rows, in that order: the work of one Spark task
        (`partition_row_groups` says how many there are)."""
        path = self.stored_partition_path(table, day)  # resolved once: on S3 each lookup is a request
        file = self.fs.get_file_info(path)
        if file.type != pafs.FileType.File:
            raise MissingPartitionsError(
                f"{table}: partition {day} has not been materialized (looked under {self.display_uri(table)})"
            )
        with self._parquet_source(file) as source:
            # Pre-buffering reads a row group's column chunks ahead in one piece: it saves requests on S3, but on a
            # local disk it only doubles what a batch holds.
            parquet = pq.ParquetFile(source, pre_buffer=not self.is_local)
            if parquet.metadata.num_rows == 0:  # no batch at all: hand over the empty table, with its columns
                yield with_day(
                    to_pandas(parquet.schema_arrow.empty_table().select(columns or parquet.schema_arrow.names)), day
                )
                return
            groups = range(parquet.num_row_groups) if row_groups is None else row_groups
            for piece in _row_group_pieces(parquet, list(groups), batch_rows, columns):
                frame = to_pandas(piece)
                del piece  # the numbers are copied into the frame: only the frame holds the batch
                if len(frame):
                    yield with_day(frame, day)
                # Arrow's allocator keeps the memory of batches gone by; a day of batches would pile it up.
                pa.default_memory_pool().release_unused()

    def iter_partitions(
        self, table: str, days: Iterable[dt.date], batch_rows: int, columns: list[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """Several days of `table` in frames of about `batch_rows` rows: small days are grouped into one frame (one
        validation judges a month of a small account at once) and big days come in batches."""
        waiting: list[pd.DataFrame] = []
        for day in days:
            for batch in self.iter_partition(table, day, batch_rows, columns):
                if waiting and sum(map(len, waiting)) + len(batch) > batch_rows:
                    yield pd.concat(waiting, ignore_index=True)
                    waiting = []
                waiting.append(batch)
        if waiting:
            yield pd.concat(waiting, ignore_index=True)

    @contextmanager
    def partition_writer(self, table: str, day: dt.date) -> Iterator[PartitionWriter]:
        """Write one day of `table` frame by frame; it replaces the old partition atomically once the block ends
        without an error (a failure leaves the old one in place)."""
        with self._partition_writer_at(self._written_partition_path(table, day), table, day) as writer:
            yield writer

    @contextmanager
    def _partition_writer_at(self, path: str, table: str, day: dt.date) -> Iterator[PartitionWriter]:
        with self._atomic_output(path) as sink:
            writer = PartitionWriter(table, day, sink)
            try:
                yield writer
            except BaseException:
                writer.abandon()  # before the temporary file closes and goes
                raise
            writer.close()

    @contextmanager
    def staging(self) -> Iterator[StagedPartitions]:
        """Partitions written aside, which replace the stored ones only when `publish`ed; whatever is not published
        when the block ends (by an error, or a table the step refused to finish) is thrown away, and so is what this
        view held for its checks if the block fails."""
        self._remove_stale_staging()
        staged = StagedPartitions(self, self.path(STAGING_FOLDER, uuid.uuid4().hex))
        try:
            yield staged
        except BaseException:
            self.discard_held()
            raise
        finally:
            staged.discard()

    def _remove_stale_staging(self) -> None:
        """Staging folders a killed step (or Spark driver) left behind: only those whose every file is old (a fresh
        one may belong to a step still running)."""
        cutoff = time.time_ns() - STALE_TEMPORARY_SECONDS * 1_000_000_000
        for staging in (STAGING_FOLDER, SPARK_STAGING_FOLDER):
            for folder in self.fs.get_file_info(pafs.FileSelector(self.path(staging), allow_not_found=True)):
                if folder.type != pafs.FileType.Directory:
                    continue
                files = self.fs.get_file_info(pafs.FileSelector(folder.path, recursive=True))
                if all((info.mtime_ns or 0) < cutoff for info in files if info.type == pafs.FileType.File):
                    self.fs.delete_dir(folder.path)

    def partition_rows(self, table: str, day: dt.date) -> int:
        """Row count of a partition, from the Parquet footer (no data is read)."""
        return self._footer(table, day).metadata.num_rows

    def partition_row_groups(self, table: str, day: dt.date) -> int:
        """Row groups of a partition, from the Parquet footer: the units a Spark form hands its tasks."""
        return self._footer(table, day).metadata.num_row_groups

    def row_group_rows(self, table: str, day: dt.date) -> list[int]:
        """Each row group's rows in a partition, from the Parquet footer."""
        metadata = self._footer(table, day).metadata
        return [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]

    def partition_columns(self, table: str, day: dt.date) -> list[str]:
        """The columns of a partition's file, from its footer (the `date` column lives in the path)."""
        return self._footer(table, day).schema_arrow.names

    def empty_partition(self, table: str, day: dt.date) -> pd.DataFrame:
        """A partition's columns and types as a frame read from it holds them, with none of its rows (from the
        footer): what a check of the contract's types needs."""
        schema = self._footer(table, day).schema_arrow
        return with_day(to_pandas(schema.empty_table()), day)

    def partition_exists(self, table: str, day: dt.date) -> bool:
        return self.fs.get_file_info(self.stored_partition_path(table, day)).type == pafs.FileType.File

    def list_partitions(self, table: str) -> list[dt.date]:
        """The days of `table` whose file is there."""
        return sorted(self._partition_files(table))

    def _partition_files(self, table: str) -> dict[dt.date, pafs.FileInfo]:
        """Each day's file of `table` (this run's held ones in place of the stored ones), from one recursive listing
        each: on S3 a request per thousand files, where asking after each day's file would cost a request per day."""
        files = _day_files(self.fs, self.path(table))
        if self.run_id is not None:
            files.update(_day_files(self.fs, self._held_folder(table)))
        return files

    # ---- partitions held for their checks --------------------------------------------------------------------------
    def release_if_checked(self, passed_check: str) -> list[str]:
        """Record that `passed_check` passed in this run, and move every held table all of whose checks have now
        passed over the stored one; returns the tables released. Checks run in parallel: each records its pass
        before it looks at the others', so the last one to pass sees every pass and releases."""
        self.write_bytes(self._relative(self._held_folder(HELD_PASSES, passed_check)), b"")
        passes = {info.base_name for info in self._listing(self._held_folder(HELD_PASSES))}
        released = []
        for manifest in self._listing(self._held_folder(HELD_TABLES)):
            try:
                waits_for = set(json.loads(read_whole(self.fs, manifest.path)))
                if waits_for <= passes:
                    released.append(self._release(manifest))
            except FileNotFoundError:  # another check of the run saw every pass too, and released it first
                continue
        # Nothing left to wait for: the run's folder goes (a failed check's stays a while). Safe because a step that
        # holds partitions starts only after the blocking checks on its inputs, the releases, are done.
        if not self.held_tables():
            self.fs.delete_dir(self._held_folder())
        return released

    def _release(self, manifest: pafs.FileInfo) -> str:
        table = manifest.base_name.removesuffix(".json")
        for day, held in sorted(_day_files(self.fs, self._held_folder(table)).items()):
            target = self.partition_path(table, day)
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            self.fs.move(held.path, target)
        self.fs.delete_file(manifest.path)
        return table

    def held_tables(self) -> list[str]:
        """The tables this run holds, waiting for their checks."""
        return sorted(info.base_name.removesuffix(".json") for info in self._listing(self._held_folder(HELD_TABLES)))

    def _listing(self, folder: str) -> list[pafs.FileInfo]:
        return [
            info
            for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
            if info.type == pafs.FileType.File
        ]

    def _relative(self, path: str) -> str:
        return path[len(self.root) + 1 :]

    def _read_day(
        self, file: pafs.FileInfo, day: dt.date, columns: list[str] | None = None, filters=None
    ) -> pd.DataFrame:
        """One partition file of `day`, as a frame with its `date` column."""
        return with_day(to_pandas(self._read_parquet(file, columns, filters)), day)

    def _read_parquet(self, file: pafs.FileInfo, columns: list[str] | None = None, filters=None) -> pa.Table:
        if self.is_local or file.size > WHOLE_READ_BYTES:
            return pq.read_table(file.path, filesystem=self.fs, columns=columns, filters=filters)
        return pq.read_table(pa.BufferReader(read_whole(self.fs, file.path)), columns=columns, filters=filters)

    def _parquet_source(self, file: pafs.FileInfo) -> pa.NativeFile:
        """A Parquet file to read ranges of: on S3, a small one is read whole first (`read_whole`), since the SDK
        cannot retry an error answered to a GET of a range smaller than the error's own body (a column chunk of a
        small partition)."""
        if self.is_local or file.size > WHOLE_READ_BYTES:
            return self.fs.open_input_file(file.path)
        return pa.BufferReader(read_whole(self.fs, file.path))

    def _footer(self, table: str, day: dt.date) -> pq.ParquetFile:
        """A partition's Parquet file as its footer describes it (rows, row groups, schema): read when it opens. In
        place, even on S3: the footer's read asks for at least 64 KB, a range the SDK can retry, and a small file
        read whole for its row count alone would cost the whole file."""
        return pq.ParquetFile(self.stored_partition_path(table, day), filesystem=self.fs)

    # ---- unpartitioned tables and files --------------------------------------------------------------------------
    def write_table(self, table: str, frame: pd.DataFrame) -> str:
        path = self.path(table, DATA_FILE)
        self._write_parquet_atomically(path, frame)
        return path

    def table_exists(self, table: str) -> bool:
        return self.exists(f"{table}/{DATA_FILE}")

    def read_table(self, table: str, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
        """An unpartitioned table; with `filters` (pyarrow's), only the rows they keep, filtered while reading."""
        file = self.fs.get_file_info(self.path(table, DATA_FILE))
        if file.type != pafs.FileType.File:
            raise MissingPartitionsError(f"{table} has not been materialized (no {self.display_uri(table, DATA_FILE)})")
        return to_pandas(self._read_parquet(file, columns, filters))

    @contextmanager
    def byte_writer(self, relative_path: str) -> Iterator[pa.NativeFile]:
        """A stream to write a file piece by piece; the file appears whole once the block ends without an error."""
        with self._atomic_output(self.path(relative_path)) as sink:
            yield sink

    def write_bytes(self, relative_path: str, data: bytes) -> str:
        path = self.path(relative_path)
        self._write_atomically(path, lambda sink: sink.write(data))
        return path

    def read_bytes(self, relative_path: str) -> bytes:
        path = self.path(relative_path)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            raise FileNotFoundError(f"no file at {self.display_uri(relative_path)}")
        return read_whole(self.fs, path)

    def exists(self, relative_path: str) -> bool:
        return self.fs.get_file_info(self.path(relative_path)).type == pafs.FileType.File

    # ---- files of a day's folder beside its partition (`derived_days.py`) -------------------------------------------
    def files_by_day(self, table: str) -> dict[dt.date, dict[str, pafs.FileInfo]]:
        """The files in each of `table`'s day folders, by name, from one listing."""
        return _files_by_day(self.fs, self.path(table))

    def write_day_file(self, table: str, day: dt.date, name: str, frame: pd.DataFrame) -> None:
        """`frame` as the Parquet file `name` in `table`'s folder of `day`, written as a partition is."""
        self._write_parquet_atomically(self.path(table, f"{PARTITION_COLUMN}={day.isoformat()}", name), frame)

    def read_file(self, file: pafs.FileInfo) -> pd.DataFrame:
        """A Parquet file of the warehouse (from a listing), read as a partition is."""
        return to_pandas(self._read_parquet(file))

    # ---- atomic writes -------------------------------------------------------------------------------------------
    def _write_parquet_atomically(self, path: str, frame: pd.DataFrame) -> None:
        """`frame` as one Parquet file, converted and written a row group at a time: a whole day converted at once
        would hold a second copy of it in Arrow, and its file in memory."""
        schema = _stored_schema(frame)
        row_groups = (
            to_arrow(frame.iloc[start : start + ROW_GROUP_ROWS]).cast(schema)
            for start in range(0, len(frame), ROW_GROUP_ROWS)
        )
        first = next(row_groups, schema.empty_table())
        with self._atomic_output(path) as sink, pq.ParquetWriter(sink, schema, **parquet_options(first)) as writer:
            writer.write_table(first)
            for row_group in row_groups:
                writer.write_table(row_group)

    def _write_atomically(self, path: str, write) -> None:
        with self._atomic_output(path) as sink:
            write(sink)

    @contextmanager
    def _atomic_output(self, path: str) -> Iterator[pa.NativeFile]:
        """A stream to `path` that readers see only once it is complete, and never if the writer fails."""
        folder, name = path.rsplit("/", 1)
        if not self.is_local:
            # Spooled to a local file, then uploaded in one go (S3 replaces objects atomically): a writer that fails
            # half-way uploads nothing, where a streamed upload would be completed with what it had.
            with tempfile.TemporaryFile() as spool:
                yield pa.PythonFile(spool, mode="w")
                spool.seek(0)
                with self.fs.open_output_stream(path) as sink:
                    shutil.copyfileobj(spool, sink, UPLOAD_CHUNK_BYTES)
            return
        self.fs.create_dir(folder, recursive=True)  # S3 has no folders: creating one there costs requests only
        self._remove_stale_temporaries(folder, name)
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open_output_stream(temporary) as sink:
                yield sink
            self.fs.move(temporary, path)  # rename(2): atomic replacement on one filesystem
        finally:
            if self.fs.get_file_info(temporary).type != pafs.FileType.NotFound:
                self.fs.delete_file(temporary)

    def _remove_stale_temporaries(self, folder: str, name: str) -> None:
        """Temporary files of writes to `name` that a killed process left behind. Only old ones: a fresh one may
        belong to a writer that is still running."""
        cutoff = time.time_ns() - STALE_TEMPORARY_SECONDS * 1_000_000_000
        for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            if (
                info.type == pafs.FileType.File
                and info.base_name.startswith(f".{name}.")
                and info.base_name.endswith(".tmp")
                and (info.mtime_ns or 0) < cutoff
            ):
                self.fs.delete_file(info.path)


class StagedPartitions:
    """A step's partitions, written under its own staging folder and moved into the warehouse table by table with
    `publish`, once the step knows the table is complete. A locally staged file is renamed over the stored one (one
    filesystem: atomic); on S3 each object is copied over its target, which S3 also replaces atomically."""

    def __init__(self, warehouse: Warehouse, folder: str):
        self.warehouse, self.folder = warehouse, folder
        self._staged: dict[str, dict[dt.date, str]] = {}  # table → day → staged file

    def staged_path(self, table: str, day: dt.date) -> str:
        return "/".join([self.folder, table, f"{PARTITION_COLUMN}={day.isoformat()}", DATA_FILE])

    @contextmanager
    def partition_writer(self, table: str, day: dt.date) -> Iterator[PartitionWriter]:
        """As `Warehouse.partition_writer`, into the staging folder: a failure leaves nothing staged for the day."""
        path = self.staged_path(table, day)
        with self.warehouse._partition_writer_at(path, table, day) as writer:
            yield writer
        self._staged.setdefault(table, {})[day] = path

    @contextmanager
    def day_writers(self, table: str, days: Iterable[dt.date]) -> Iterator[DayWriters]:
        """A partition writer for each of `days`, open together (`DayWriters`): frames of any of the days, in
        pieces; each day is staged once the block ends without an error."""
        with ExitStack() as stack:
            yield DayWriters(table, {day: stack.enter_context(self.partition_writer(table, day)) for day in days})

    def write_partition(self, table: str, day: dt.date, frame: pd.DataFrame) -> None:
        path = self.staged_path(table, day)
        self.warehouse._write_parquet_atomically(path, _undated(frame, table, day))
        self._staged.setdefault(table, {})[day] = path

    def read_partition(
        self, table: str, day: dt.date, keyword_range: tuple[int | None, int | None] = (None, None)
    ) -> pd.DataFrame:
        """A staged day of `table`, as `Warehouse.read_partitions` reads a stored one: with its `date` column, and
        only keyword_id in `keyword_range`."""
        path = self._staged[table][day]
        file = self.warehouse.fs.get_file_info(path)
        return self.warehouse._read_day(file, day, filters=_keyword_filters(None, keyword_range))

    def days(self, table: str) -> list[dt.date]:
        """The days of `table` staged so far."""
        return sorted(self._staged.get(table, {}))

    def publish(self, table: str) -> list[str]:
        """Move every staged day of `table` over the stored one (or over the run's held one, when the warehouse holds
        the table for its checks); returns the partitions' paths."""
        published = []
        for day, staged in sorted(self._staged.pop(table, {}).items()):
            target = self.warehouse._written_partition_path(table, day)
            self.warehouse.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            self.warehouse.fs.move(staged, target)
            published.append(target)
        return published

    def discard(self) -> None:
        """Throw away whatever was staged and not published."""
        self._staged.clear()
        if self.warehouse.fs.get_file_info(self.folder).type != pafs.FileType.NotFound:
            self.warehouse.fs.delete_dir(self.folder)


class DayWriters:
    """One writer for each day of a range (`StagedPartitions.day_writers`): a frame of rows of any of its days is
    split by its `date` column, and each day's rows appended to its partition in the order they come."""

    def __init__(self, table: str, writers: dict[dt.date, PartitionWriter]):
        self.table, self._writers = table, writers
        self._written: set[dt.date] = set()

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        dates = as_day(frame[PARTITION_COLUMN]).to_numpy()
        days = pd.unique(dates)
        outside = sorted(str(pd.Timestamp(d).date()) for d in days if pd.Timestamp(d).date() not in self._writers)
        if outside:
            raise ValueError(f"{self.table}: rows dated {outside[:3]} fall outside the partitions being written")
        for moment in days:
            day = pd.Timestamp(moment).date()
            self._writers[day].write(frame if len(days) == 1 else frame[dates == moment])
            self._written.add(day)

    def fill(self, empty: pd.DataFrame) -> None:
        """Every day without a row so far gets `empty`'s columns: a partition is written even for a day without
        rows, so a re-run replaces rather than adds."""
        for day, writer in self._writers.items():
            if day not in self._written:
                writer.write(empty.iloc[0:0])
                self._written.add(day)


class PartitionWriter:
    """Appends frames to one partition's Parquet file, each as a row group, under the first frame's schema.

    A frame is encoded and compressed in a thread of its own while the caller makes the next one (Arrow lets go of
    Python while it writes): at most one frame is in the writer's hands, so memory grows by one frame at most."""

    def __init__(self, table: str, day: dt.date, sink):
        self.table, self.day, self._sink = table, day, sink
        self._writer: pq.ParquetWriter | None = None
        self._in_flight: Future | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{table}")
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Append `frame` (its `date` column, if any, must all be the partition's day); an empty frame still sets
        the file's columns. A failure to write the frame before is raised here."""
        frame = _undated(frame, self.table, self.day)
        arrow = to_arrow(frame)
        self._finish_in_flight()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._sink, arrow.schema, **parquet_options(arrow))
        elif arrow.schema != self._writer.schema:
            arrow = arrow.cast(self._writer.schema)  # e.g. a column that was all null in the first frame
        self._in_flight = self._thread.submit(self._writer.write_table, arrow)
        self.rows += len(frame)

    def close(self) -> None:
        try:
            self._finish_in_flight()
            if self._writer is None:
                raise ValueError(f"{self.table}: nothing was written to partition {self.day}, not even its columns")
            self._writer.close()
        finally:
            self._thread.shutdown()

    def abandon(self) -> None:
        """Stop without finishing the file, after an error elsewhere: the frame in flight is let finish, and any
        error of its own is dropped, so that the error that stopped the writer is the one raised."""
        if self._in_flight is not None:
            wait([self._in_flight])
            self._in_flight = None
        self._thread.shutdown()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _finish_in_flight(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()


def _row_group_pieces(
    parquet: pq.ParquetFile, groups: list[int], batch_rows: int, columns: list[str] | None
) -> Iterator[pa.Table]:
    """The given row groups, in order, in pieces of at most `batch_rows` rows: runs of whole row groups that fit in a
    batch are read together in one call, and a row group larger than a batch is split into batches. A piece never
    holds part of a row group beside another: reading across that boundary decodes both groups at once."""
    run: list[int] = []
    run_rows = 0
    for group in groups:
        rows = parquet.metadata.row_group(group).num_rows
        if run and run_rows + rows > batch_rows:
            yield parquet.read_row_groups(run, columns=columns)
            run, run_rows = [], 0
        if rows <= batch_rows:
            run.append(group)
            run_rows += rows
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns, row_groups=[group]):
            yield pa.Table.from_batches([batch])
    if run:
        yield parquet.read_row_groups(run, columns=columns)


def _day_files(fs: pafs.FileSystem, table_folder: str) -> dict[dt.date, pafs.FileInfo]:
    """Each day's file under a table's folder, from one recursive listing."""
    return {day: names[DATA_FILE] for day, names in _files_by_day(fs, table_folder).items() if DATA_FILE in names}


def _files_by_day(fs: pafs.FileSystem, table_folder: str) -> dict[dt.date, dict[str, pafs.FileInfo]]:
    """The files in each day's folder under a table's folder, by name, from one recursive listing; a temporary
    file's hidden name is left out."""
    prefix = f"{table_folder}/{PARTITION_COLUMN}="
    files: dict[dt.date, dict[str, pafs.FileInfo]] = {}
    for info in fs.get_file_info(pafs.FileSelector(table_folder, allow_not_found=True, recursive=True)):
        folder, _, name = info.path.rpartition("/")
        day = folder[len(prefix) :]
        if (
            info.type == pafs.FileType.File
            and folder.startswith(prefix)
            and "/" not in day
            and not name.startswith(".")
        ):
            files.setdefault(dt.date.fromisoformat(day), {})[name] = info
    return files


def _keyword_filters(keyword_ids: np.ndarray | None, keyword_range: tuple[int | None, int | None]) -> list | None:
    low, high = keyword_range
    filters = [("keyword_id", "in", keyword_ids)] if keyword_ids is not None else []
    filters += [("keyword_id", ">=", low)] if low is not None else []
    filters += [("keyword_id", "<", high)] if high is not None else []
    return filters or None


def with_day(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """`frame` with its `date` column first, as the warehouse's readers give a partition's rows."""
    # The day as `as_day` makes it (midnight, nanoseconds), filled in directly: parsing a date per row took 0.7 s a
    # 10M-row day.
    frame.insert(0, PARTITION_COLUMN, np.full(len(frame), np.datetime64(day, "ns")))
    return frame


def _undated(frame: pd.DataFrame, table: str, day: dt.date) -> pd.DataFrame:
    """`frame` without its `date` column, which lives in the partition's path; refuses rows of another day."""
    if PARTITION_COLUMN not in frame.columns:
        return frame
    dates = as_day(frame[PARTITION_COLUMN])
    stray = dates[dates != pd.Timestamp(day)]
    if len(stray):
        raise ValueError(f"{table}: rows dated {stray.iloc[0].date()} cannot be written to partition {day}")
    return frame.drop(columns=[PARTITION_COLUMN])


def parquet_options(first_rows: pa.Table) -> dict:
    """How the warehouse writes a Parquet file that begins with `first_rows`: zstd, and dictionaries only for the
    columns whose values repeat there. At 10M keywords, dictionaries built and dropped for per-keyword columns took a
    third of the time of writing the predictions (5.7 s against 3.5 s)."""
    return {"compression": "zstd", "use_dictionary": _repeating_columns(first_rows.slice(0, DICTIONARY_SAMPLE_ROWS))}


def _repeating_columns(sample: pa.Table) -> list[str]:
    repeating = []
    for name, column in zip(sample.column_names, sample.columns):
        try:
            distinct = pc.unique(column)
        except pa.ArrowNotImplementedError:  # a type Arrow cannot hash (lists, structs): Arrow's default, a dictionary
            repeating.append(name)
            continue
        if len(distinct) * DICTIONARY_MIN_REPEATS <= len(sample) and distinct.nbytes <= DICTIONARY_PAGE_BYTES:
            repeating.append(name)
    return repeating


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """`frame` as the warehouse stores it. Days (naive timestamps at midnight, how frames hold a day) become Parquet
    dates, and other timestamps microseconds: Spark rejects Parquet's nanosecond timestamps, pandas' default."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    for index, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type):
            wanted = _stored_timestamp_type(frame[column.name], column.type)
            table = table.set_column(index, column.name, table.column(index).cast(wanted))
    return table


def _stored_schema(frame: pd.DataFrame) -> pa.Schema:
    """The schema `to_arrow(frame)` gives, without converting the rows: every slice of `frame` is cast to it, so a
    slice whose column is all null, or whose timestamps all fall at midnight, is stored as the whole column is."""
    schema = pa.Schema.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    for index, field in enumerate(schema):
        if pa.types.is_timestamp(field.type):
            schema = schema.set(index, field.with_type(_stored_timestamp_type(frame[field.name], field.type)))
    return schema


def _stored_timestamp_type(values: pd.Series, arrow_type: pa.TimestampType) -> pa.DataType:
    is_day = arrow_type.tz is None and bool((values.dropna() == values.dropna().dt.normalize()).all())
    return pa.date32() if is_day else pa.timestamp("us", tz=arrow_type.tz)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """A warehouse table as frames hold it: dates as midnight nanosecond timestamps, as `schema.as_day` makes them."""
    return table.to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True)


def describe_source(identity: dict[str, object]) -> str:
    """A source identity as a person would say it, e.g. "the simulator (seed 7)"."""
    if identity.get("source") == "simulator":
        return f"the simulator (seed {identity.get('seed')})"
    return f"the landing zone {identity.get('uri')}"


def _day_ranges(days: list[dt.date]) -> str:
    """`2025-01-01...2025-01-05, 2025-02-01` for a sorted list of days."""
    spans: list[list[dt.date]] = []
    for day in days:
        if spans and (day - spans[-1][1]).days == 1:
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return ", ".join(a.isoformat() if a == b else f"{a.isoformat()}...{b.isoformat()}" for a, b in spans)
