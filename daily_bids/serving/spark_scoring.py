"""Scoring a day on Spark: the same batches as the local engine (`daily_bids.serving.scoring`), spread over Spark's tasks.

The driver reads only the features file's footer and makes a small DataFrame of work units: one per Parquet row group
of the day's features. `mapInPandas` hands the units out to Spark's tasks, and each task reads its units' rows with
pyarrow through the warehouse's own filesystem (a local folder, or S3 without any Hadoop jar), joined with the
keywords' value posterior and the bids' context, read the same way. The model travels once, as a broadcast of its
bundle, and each Python worker loads it once (the talks' lesson: per partition, never per row). A task predicts and
bids each batch in the same pass and writes both to Parquet files of its own in a staging folder of the warehouse; it
returns only the names of its files and its totals. The driver then writes each table's partition from the files of
the tasks that succeeded (a retried task's first attempt is ignored), so the warehouse still holds one file per
partition, replaced atomically.

With campaign budgets, a budget couples its campaign's keywords: the rows of each budgeted campaign are one work unit
of their own (read from every row group), so that every keyword of the campaign lands in the same task, where
`scoring.bid_batches` bids them together; the row-group units leave those rows out.

On S3 the tasks open the warehouse as the driver does (endpoint, region, retries, timeouts). Credentials: a worker
with AWS credentials in its own environment uses those; otherwise the driver's own static keys travel in the task's
broadcast (never in a log line, a table or an event); a driver whose credentials are temporary (a session token, an
IAM role) sends none, and the workers then need credentials of their own (environment, profile or role).

While the tasks run, a driver thread logs their progress every `progress.PROGRESS_EVERY_SECONDS`: tasks done of the
total, the rate and the time left, as `Progress` writes them.

pyspark is imported by the caller's SparkSession only; nothing here imports it at module level.
"""

from __future__ import annotations

import datetime as dt
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids import progress as progress_lines
from daily_bids.bidding.decision import CannotBidError
from daily_bids.bidding.policy import BidPolicy
from daily_bids.models.kinds import model_from_bundle
from daily_bids.models.prediction import CLUSTER_VALUE_INPUTS, ClusterPriors, cluster_values, predict_next_day
from daily_bids.schema import as_day
from daily_bids.serving.scoring import (
    BATCH_ROWS,
    VALUE_POSTERIOR_INPUTS,
    BidTotals,
    DayScores,
    PartitionSink,
    PredictionTotals,
    bid_batches,
)
from daily_bids.settings import S3Options
from daily_bids.spark_tasks import tasks_for
from daily_bids.storage.warehouse import (
    PARTITION_COLUMN,
    SPARK_STAGING_FOLDER,
    MissingPartitionsError,
    PartitionWriter,
    Warehouse,
    to_arrow,
    to_pandas,
)

STAGING_FOLDER = SPARK_STAGING_FOLDER
# The schema of the work units: a row group of the features (`row_group` >= 0, the budgeted campaigns' rows left out),
# or every row of one budgeted campaign (`row_group` -1).
UNITS_SCHEMA = "row_group long, campaign string"


@dataclass(frozen=True)
class WarehouseAddress:
    """How a task opens the warehouse: its URI and S3 options, with the driver's static keys when it has some and
    the worker none of its own. Never printed: the options hold credentials."""

    uri: str
    s3: S3Options | None = field(default=None, repr=False)

    def filesystem(self) -> pafs.FileSystem:
        if not self.uri.startswith("s3://"):
            return pafs.LocalFileSystem()
        s3 = self.s3 or S3Options()
        if s3.access_key and _worker_credentials() is not None:  # the worker's own credentials come first
            s3 = replace(s3, access_key="", secret_key="")
        return Warehouse(self.uri, s3).fs


def _worker_credentials():
    """The AWS credentials in this process's environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or None."""
    from botocore.credentials import EnvProvider

    return EnvProvider().load()


def warehouse_address(store: Warehouse) -> WarehouseAddress:
    """The warehouse as a task reaches it. On S3: the store's connection (endpoint, region, timeouts), with the keys
    it was given, or else the driver's AWS credentials if they are static keys (temporary ones need a session token,
    which the warehouse's options do not carry, and would expire in the broadcast)."""
    if store.is_local:
        return WarehouseAddress(store.root)
    s3 = store.s3
    if not s3.access_key:
        import botocore.session

        found = botocore.session.get_session().get_credentials()
        frozen = found.get_frozen_credentials() if found is not None else None
        if frozen is not None and frozen.access_key and frozen.secret_key and not frozen.token:
            s3 = replace(s3, access_key=frozen.access_key, secret_key=frozen.secret_key)
    return WarehouseAddress(store.uri, s3)


@dataclass(frozen=True)
class ScoringTask:
    """Everything a Spark task needs, broadcast once."""

    model_class: type
    model_bundle: bytes
    model_version: str
    clusters: pd.DataFrame | None
    values_by_cluster: pd.Series
    policy: BidPolicy
    landscape: object
    landscape_note: str
    warehouse: WarehouseAddress
    features_path: str  # the day's features file, as the warehouse's filesystem names it
    posterior_path: str  # the day's value posterior ("" when none)
    context_path: str  # the bids' context, sorted by keyword_id ("" when no bids or no context)
    budgeted: tuple[str, ...]  # the campaigns with a budget: each is a unit of its own
    staging: str
    day: dt.date
    with_bids: bool
    batch_rows: int


# Per Python worker: the models it has loaded, by version (a worker is reused across tasks and runs).
_LOADED_MODELS: dict[str, object] = {}


def _model(task: ScoringTask):
    if task.model_version not in _LOADED_MODELS:
        _LOADED_MODELS.clear()
        _LOADED_MODELS[task.model_version] = model_from_bundle(task.model_class.kind, task.model_bundle)
    return _LOADED_MODELS[task.model_version]


def score_day(
    spark,
    store: Warehouse,
    features_table: str,
    day,
    model,
    clusters: pd.DataFrame | None,
    outputs: dict[str, str],
    policy: BidPolicy,
    landscape=None,
    context: pd.DataFrame | None = None,
    landscape_note: str = "",
    log: Callable[[str], None] = print,
    value_table: str | None = None,
    sink: PartitionSink | None = None,
    batch_rows: int = BATCH_ROWS,
) -> DayScores:
    """One day on Spark; the same result as `scoring.score_day` (see the parity check on keyword_predictions). The
    partitions are written to `sink` (a step's staging), or straight into `store`. The warehouse may be a local
    folder or on S3."""
    values_by_cluster = cluster_values(
        store.read_partitions(features_table, [day], list(CLUSTER_VALUE_INPUTS)), clusters
    )
    features_path = store.stored_partition_path(features_table, day)
    if store.fs.get_file_info(features_path).type != pafs.FileType.File:
        raise MissingPartitionsError(f"{features_table}: the partition of {day} has not been materialized")
    posterior_path = ""
    if value_table is not None:  # each keyword's pooled value per click
        if not store.partition_exists(value_table, day):
            raise MissingPartitionsError(f"{value_table}: the partition of {day} has not been materialized")
        posterior_path = store.stored_partition_path(value_table, day)
    with_bids = "bids" in outputs
    budgeted = tuple(sorted(policy.campaign_budgets)) if with_bids and policy.campaign_budgets else ()
    run_folder = store.path(STAGING_FOLDER, uuid.uuid4().hex)
    store.fs.create_dir(run_folder, recursive=True)
    try:
        context_path = ""
        if with_bids and context is not None:  # sorted, so that a task reads only its keywords' row groups
            context_path = f"{run_folder}/context.parquet"
            with store.fs.open_output_stream(context_path) as file:
                ordered = context.sort_values("keyword_id", kind="stable", ignore_index=True)
                pq.write_table(to_arrow(ordered), file, row_group_size=batch_rows)
        with store.fs.open_input_file(features_path) as file:
            metadata = pq.ParquetFile(file).metadata
        units = pd.DataFrame({"row_group": np.arange(metadata.num_row_groups, dtype="int64"), "campaign": None})
        if budgeted:
            units = pd.concat(
                [units, pd.DataFrame({"row_group": np.full(len(budgeted), -1, "int64"), "campaign": budgeted})],
                ignore_index=True,
            )
        tasks = max(1, min(len(units), tasks_for(spark.sparkContext)))
        work = spark.createDataFrame(units.astype({"campaign": "object"}), schema=UNITS_SCHEMA).repartition(tasks)
        # A plain policy: the Dagster resource that may be passed in holds its run's context, which does not pickle.
        policy = BidPolicy(**{name: getattr(policy, name) for name in BidPolicy.model_fields})
        task = ScoringTask(
            type(model),
            model.to_bytes(),
            model.version,
            clusters,
            values_by_cluster,
            policy,
            landscape,
            landscape_note,
            warehouse_address(store),
            features_path,
            posterior_path,
            context_path,
            budgeted,
            run_folder,
            day,
            with_bids,
            batch_rows,
        )
        started = time.perf_counter()
        shared = spark.sparkContext.broadcast(task)
        log(
            f"scoring {day} on Spark ({spark.sparkContext.master}, {metadata.num_rows:,} rows in "
            f"{len(units)} work units over {tasks} tasks)"
        )
        scored = work.mapInPandas(
            lambda batches: _score_task(shared.value, batches), schema="predictions string, bids string, totals binary"
        )
        try:
            with _TaskProgress(spark, f"scoring {day}", tasks, metadata.num_rows, log):
                results = scored.collect()
        finally:  # gone from the executors and from the driver's temporary file: it may hold the S3 keys
            shared.destroy()
        predicted, bid, cannot_bid = PredictionTotals(), (BidTotals() if with_bids else None), ""
        for row in results:
            prediction_part, bid_part, failure = pickle.loads(row["totals"])
            predicted.merge(prediction_part)
            if failure:
                cannot_bid = failure
            elif bid is not None:
                bid.merge(bid_part)
        _adopt(store, sink or store, outputs["predictions"], day, [row["predictions"] for row in results])
        if with_bids and not cannot_bid:
            _adopt(store, sink or store, outputs["bids"], day, [row["bids"] for row in results])
        rows_per_second = predicted.keywords / max(time.perf_counter() - started, 1e-9)
        return DayScores(predicted, None if cannot_bid else bid, rows_per_second, cannot_bid)
    finally:
        store.fs.delete_dir(run_folder)


class _TaskProgress:
    """While the driver waits for the tasks: a thread that logs, every `PROGRESS_EVERY_SECONDS`, the tasks done of
    the total from Spark's status tracker, with the rate and the time left (`Progress`, counting tasks), and the
    rows that makes at the day's average rows per task."""

    def __init__(self, spark, what: str, tasks: int, rows: int, log: Callable[[str], None]):
        self.context, self.what, self.tasks, self.rows, self.log = spark.sparkContext, what, tasks, rows, log
        self.group = f"daily-bids-{uuid.uuid4().hex}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="spark-progress", daemon=True)

    def __enter__(self) -> _TaskProgress:
        # The job group names this step's jobs, so that another step's jobs on the same session are not counted.
        self.context.setJobGroup(self.group, self.what)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.context.setLocalProperty("spark.jobGroup.id", None)
        self.context.setLocalProperty("spark.job.description", None)

    def done(self) -> int:
        """Tasks finished of the scoring stage: the last stage of this step's jobs with one task per task asked (the
        units' own shuffle comes before it)."""
        tracker = self.context.statusTracker()
        stages = []
        for job_id in tracker.getJobIdsForGroup(self.group):
            job = tracker.getJobInfo(job_id)
            stages += [tracker.getStageInfo(stage_id) for stage_id in (job.stageIds if job is not None else ())]
        scoring = [stage for stage in stages if stage is not None and stage.numTasks == self.tasks]
        return max(scoring, key=lambda stage: stage.stageId).numCompletedTasks if scoring else 0

    def _watch(self) -> None:
        from py4j.protocol import Py4JError  # the JVM's calls: here only when Spark runs

        every = progress_lines.PROGRESS_EVERY_SECONDS
        progress = progress_lines.Progress(self.what, self.tasks, self.log, every_seconds=every, unit="tasks")
        while not self._stop.wait(max(every, 0.1)):  # never a busy loop of the tracker's calls
            try:
                progress.done = self.done()
            except Py4JError:  # the status is only reported: a failed look (the job just ended) never fails the step
                continue
            rows = self.rows * progress.done / self.tasks if self.tasks else 0
            self.log(f"{progress.line()} (about {rows:,.0f} of {self.rows:,} rows)")


def _score_task(task: ScoringTask, units: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """One Spark task: read its units' features, predict and bid them batch by batch, writing both to staging files;
    yields one row of results."""
    from pyspark import TaskContext

    attempt = TaskContext.get()
    name = f"{attempt.partitionId():05d}-{attempt.attemptNumber()}-{uuid.uuid4().hex[:8]}.parquet"
    fs = task.warehouse.filesystem()
    model = _model(task)
    predicted, bid, failure = PredictionTotals(), BidTotals(), ""
    writers: dict[str, _StagedFile] = {
        table: _StagedFile(fs, f"{task.staging}/{table}-{name}", task.day) for table in ("predictions", "bids")
    }

    priors = ClusterPriors(task.clusters, task.values_by_cluster)  # the cluster table hashed once per task

    def scored() -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None]]:
        for batch in _feature_batches(fs, task, units):
            posterior = context = None
            if task.posterior_path or task.context_path:
                keywords = batch["keyword_id"].to_numpy()
                span = (int(keywords.min()), int(keywords.max())) if len(keywords) else (0, -1)
            if task.posterior_path:  # indexed by keyword_id, as `scoring.value_posterior` gives it
                posterior = _keyword_rows(fs, task.posterior_path, VALUE_POSTERIOR_INPUTS, span).set_index("keyword_id")
            predictions = predict_next_day(batch, model, priors, value_posterior=posterior)
            writers["predictions"].write(predictions)
            predicted.add(predictions)
            if task.context_path:  # the batch's own context rows, in its order: its keywords with a bid in force
                rows = batch[["keyword_id"]].merge(_keyword_rows(fs, task.context_path, None, span), on="keyword_id")
                context = rows[rows["bid_in_force"].notna().to_numpy()].reset_index(drop=True)
            yield predictions, context

    batches_scored = scored()
    if task.with_bids:
        try:
            for decision in bid_batches(batches_scored, task.policy, task.landscape, task.landscape_note):
                writers["bids"].write(decision.bids)
                bid.add(decision)
        except CannotBidError as error:
            failure = str(error)
    for _ in batches_scored:  # the rest of the predictions, when there are no bids to make
        pass
    for writer in writers.values():
        writer.close()
    yield pd.DataFrame(
        {
            "predictions": [writers["predictions"].path],
            "bids": [writers["bids"].path],
            "totals": [pickle.dumps((predicted, bid, failure))],
        }
    )


def _feature_batches(fs: pafs.FileSystem, task: ScoringTask, units: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The features of a task's units, in frames of at most `batch_rows` rows, with their `date` column: a row
    group without its budgeted campaigns' rows, or one budgeted campaign's rows from every row group."""
    with fs.open_input_file(task.features_path) as source:
        parquet = pq.ParquetFile(source)
        for unit in (row for frame in units for row in frame.itertuples(index=False)):
            if unit.row_group >= 0:  # a row group, less the budgeted campaigns' rows (their units have them)
                batches = parquet.iter_batches(batch_size=task.batch_rows, row_groups=[int(unit.row_group)])
                campaigns, wanted = list(task.budgeted), False
            else:  # one budgeted campaign, from every row group
                batches = parquet.iter_batches(batch_size=task.batch_rows)
                campaigns, wanted = [unit.campaign], True
            for batch in batches:
                frame = to_pandas(pa.Table.from_batches([batch]))
                if campaigns:
                    frame = frame[frame["campaign"].isin(campaigns).to_numpy() == wanted].reset_index(drop=True)
                if len(frame):
                    frame.insert(0, PARTITION_COLUMN, as_day([task.day] * len(frame)).to_numpy())
                    yield frame


def _keyword_rows(fs: pafs.FileSystem, path: str, columns: list[str] | None, span: tuple[int, int]) -> pd.DataFrame:
    """The rows of `path` whose keyword_id lies in `span` (inclusive); row groups outside it are skipped by their
    statistics."""
    filters = [("keyword_id", ">=", span[0]), ("keyword_id", "<=", span[1])]
    return to_pandas(pq.read_table(path, filesystem=fs, columns=columns, filters=filters))


class _StagedFile:
    """A task's Parquet file in the staging folder, written batch by batch; created with the first batch."""

    def __init__(self, fs: pafs.FileSystem, path: str, day):
        self.fs, self.path, self.day = fs, path, day
        self._sink: pa.NativeFile | None = None
        self._writer: PartitionWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self._writer is None:
            self._sink = self.fs.open_output_stream(self.path)
            self._writer = PartitionWriter(self.path, self.day, self._sink)
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()


def _adopt(store: Warehouse, sink: PartitionSink, table: str, day, staged: list[str]) -> None:
    """Write `table`'s partition to `sink` from the tasks' staged files, in task order (a task with no rows wrote
    none)."""
    files = sorted(path for path in staged if store.fs.get_file_info(path).type == pafs.FileType.File)
    with sink.partition_writer(table, day) as writer:
        for path in files:
            with store.fs.open_input_file(path) as source:
                for batch in pq.ParquetFile(source).iter_batches():
                    writer.write(to_pandas(pa.Table.from_batches([batch])))
        if not files:
            raise ValueError(f"{table}: the Spark tasks wrote no rows for {day}")
