"""Scoring a day on Spark: the same batches as the local engine (`daily_bids.serving.scoring`), spread over Spark's tasks.

Spark reads the day's features from the warehouse, joined with the bids' context, and `mapInPandas` hands each task
its rows as Arrow batches. The model travels once, as a broadcast of its bundle, and each Python worker loads it
once (the talks' lesson: per partition, never per row). A task predicts and bids each batch in the same pass and
writes both to Parquet files of its own in a staging folder; it returns only the names of its files and its totals.
The driver then writes each table's partition from the files of the tasks that succeeded (a retried task's first
attempt is ignored), so the warehouse still holds one file per partition, replaced atomically.

With campaign budgets, the rows are first repartitioned by campaign: a budget couples its campaign's keywords, and
every keyword of a campaign then lands in the same task, where `scoring.bid_batches` bids them together.

pyspark is imported by the caller's SparkSession only; nothing here imports it at module level.
"""

from __future__ import annotations

import datetime as dt
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids.bidding.decision import CannotBidError
from daily_bids.bidding.policy import BidPolicy
from daily_bids.models.kinds import model_from_bundle
from daily_bids.models.prediction import CLUSTER_VALUE_INPUTS, cluster_values, predict_next_day
from daily_bids.schema import as_day
from daily_bids.serving.scoring import (
    VALUE_POSTERIOR_INPUTS,
    BidTotals,
    DayScores,
    PartitionSink,
    PredictionTotals,
    bid_batches,
)
from daily_bids.storage.warehouse import (
    PARTITION_COLUMN,
    MissingPartitionsError,
    PartitionWriter,
    Warehouse,
    to_arrow,
    to_pandas,
)

STAGING_FOLDER = ".spark-staging"
# The value posterior's columns as joined onto the features: prefixed, so that no feature's name is shadowed.
POSTERIOR_PREFIX = "posterior__"


class SparkWarehouseError(ValueError):
    """The Spark engine cannot reach this warehouse."""


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
    context_columns: tuple[str, ...]  # the context's columns joined onto the features ("" when no bids)
    with_posterior: bool  # the value posterior's columns are joined onto the features (as POSTERIOR_PREFIX + name)
    staging: str
    day: dt.date
    with_bids: bool


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
) -> DayScores:
    """One day on Spark; the same result as `scoring.score_day` (see the parity check on keyword_predictions). The
    partitions are written to `sink` (a step's staging), or straight into `store`."""
    if not store.is_local:
        raise SparkWarehouseError(
            f"the spark scoring engine reads and writes the warehouse as files, and {store.display_uri()} is on S3; "
            "use BIDS_SCORING_ENGINE=local with an S3 warehouse"
        )
    values_by_cluster = cluster_values(
        store.read_partitions(features_table, [day], list(CLUSTER_VALUE_INPUTS)), clusters
    )
    run_folder = store.path(STAGING_FOLDER, uuid.uuid4().hex)
    store.fs.create_dir(run_folder, recursive=True)
    try:
        features = spark.read.option("basePath", store.path(features_table)).parquet(
            store.path(features_table, f"{PARTITION_COLUMN}={day.isoformat()}")
        )
        with_bids = "bids" in outputs
        if value_table is not None:  # each keyword's pooled value per click, joined to its features row
            if not store.partition_exists(value_table, day):
                raise MissingPartitionsError(f"{value_table}: the partition of {day} has not been materialized")
            posterior = spark.read.parquet(store.partition_path(value_table, day)).selectExpr(
                "keyword_id", *(f"{name} AS {POSTERIOR_PREFIX}{name}" for name in VALUE_POSTERIOR_INPUTS[1:])
            )
            features = features.join(posterior, on="keyword_id", how="left")
        context_columns: tuple[str, ...] = ()
        if with_bids and context is not None:
            context_file = f"{run_folder}/context.parquet"
            pq.write_table(to_arrow(context), context_file)
            context_columns = tuple(name for name in context.columns if name != "keyword_id")
            features = features.join(spark.read.parquet(context_file), on="keyword_id", how="left")
        if with_bids and policy.campaign_budgets:
            features = features.repartition(spark.sparkContext.defaultParallelism, "campaign")
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
            context_columns,
            value_table is not None,
            run_folder,
            day,
            with_bids,
        )
        started = time.perf_counter()
        shared = spark.sparkContext.broadcast(task)
        log(f"scoring {day} on Spark ({spark.sparkContext.master}, {features.rdd.getNumPartitions()} tasks)")
        results = features.mapInPandas(
            lambda batches: _score_task(shared.value, batches), schema="predictions string, bids string, totals binary"
        ).collect()
        shared.unpersist()
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


def _score_task(task: ScoringTask, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """One Spark task: predict and bid its batches, writing both to staging files; yields one row of results."""
    from pyspark import TaskContext

    attempt = TaskContext.get()
    name = f"{attempt.partitionId():05d}-{attempt.attemptNumber()}-{uuid.uuid4().hex[:8]}.parquet"
    model = _model(task)
    predicted, bid, failure = PredictionTotals(), BidTotals(), ""
    writers: dict[str, _StagedFile] = {
        table: _StagedFile(f"{task.staging}/{table}-{name}", task.day) for table in ("predictions", "bids")
    }

    def scored() -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None]]:
        for batch in batches:
            batch[PARTITION_COLUMN] = as_day(batch[PARTITION_COLUMN]).to_numpy()
            joined = [name for name in batch.columns if name.startswith(POSTERIOR_PREFIX)]
            posterior = None
            if task.with_posterior:
                posterior = batch[joined].set_axis(batch["keyword_id"].to_numpy())
                posterior.columns = [name.removeprefix(POSTERIOR_PREFIX) for name in joined]
            predictions = predict_next_day(
                batch.drop(columns=[*task.context_columns, *joined]),
                model,
                task.clusters,
                task.values_by_cluster,
                posterior,
            )
            writers["predictions"].write(predictions)
            predicted.add(predictions)
            context = None
            if task.context_columns:  # the batch's own context rows: its keywords with a bid in force
                context = batch.loc[batch["bid_in_force"].notna().to_numpy(), ["keyword_id", *task.context_columns]]
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


class _StagedFile:
    """A task's Parquet file in the staging folder, written batch by batch; created with the first batch."""

    def __init__(self, path: str, day):
        self.path, self.day = path, day
        self._sink: pa.NativeFile | None = None
        self._writer: PartitionWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self._writer is None:
            self._sink = pa.OSFile(self.path, "wb")
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
            for batch in pq.ParquetFile(path).iter_batches():
                writer.write(to_pandas(pa.Table.from_batches([batch])))
        if not files:
            raise ValueError(f"{table}: the Spark tasks wrote no rows for {day}")
