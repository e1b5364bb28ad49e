"""Keyword features on Spark: `write_features`' shards, each in a Spark task, with the same partitions as a result.

Two Spark jobs over the keyword shards, one shard per task, with the driver in between:

1. Each task rolls its shard's state over the range (from the stored state of the day before, or the 28-day
   bootstrap), reading only its keywords' report rows with pyarrow through the warehouse's own filesystem (no
   `spark.read`, so an S3 warehouse needs no Hadoop jars). For each day it stages, under the run's folder in the
   warehouse, its rolling state (the state partition's rows of the shard), its keywords' lags (t-1, t-7) and its
   `prior_inputs`: each keyword's campaign, ad group and 28-day sums.
2. The driver reads every shard's prior inputs of a day in keyword order and computes the ratio priors exactly as
   the local engine does (`ratio_priors`), then stages each shard's rows of them. The priors cannot be combined from
   per-shard group totals: each keyword's numerator is first capped at the account's 99th percentile of keyword
   ratios (an order statistic over every keyword), and the pooled sums are pandas sums whose rounding depends on the
   order of every term, so per-shard partial sums would drift from the local engine's last bits.
3. Each task computes its shard's features of every day from its staged state, lags and priors (`shard_features`).

The driver then writes each day's features and state partitions from the tasks' files in shard (keyword) order, a
shard a row group as the local engine does, staged and published together once every day is written.

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

from daily_bids.features.keyword_features import (
    KEYWORDS_PER_SHARD,
    LOOKBACK_DAYS,
    KeywordRange,
    RollingState,
    consecutive,
    days_of_history,
    keyword_shards,
    prior_inputs,
    ratio_priors,
    roll_shard,
    shard_features,
)
from daily_bids.features.writer import FeatureRun, days_span, known_keyword_ids, report_reader, stored_state
from daily_bids.progress import Progress, quiet
from daily_bids.schema import DIMENSION_COLUMNS, METRIC_COLUMNS
from daily_bids.spark_tasks import TASKS_PER_CORE, attempt_name, delete_staging, read_staged, run_tasks, write_staged
from daily_bids.storage import tables
from daily_bids.storage.warehouse import SPARK_STAGING_FOLDER, Warehouse

STAGING_FOLDER = SPARK_STAGING_FOLDER
STATE, LAGS, PRIORS, INPUTS, FEATURES = "state", "lags", "priors", "prior_inputs", "features"


@dataclass(frozen=True)
class FeatureTask:
    """What every task of a run needs, broadcast once. The warehouse travels as itself: its filesystem (local, or
    S3 with its options) pickles, and a task reads through it as the driver would."""

    store: Warehouse
    reports_table: str
    days: tuple[dt.date, ...]
    history_start: dt.date
    state_reused: bool
    staging: str  # the run's folder in the warehouse

    def path(self, kind: str, day: dt.date, shard: int, attempt: str) -> str:
        return f"{self.staging}/{kind}/{day.isoformat()}/{shard:05d}-{attempt}.parquet"


def write_features_on_spark(
    spark,
    store: Warehouse,
    reports_table: str,
    features_table: str,
    days: list[dt.date],
    history_start: dt.date,
    log: Callable[[str], None] | None = None,
    keywords_per_shard: int = KEYWORDS_PER_SHARD,
) -> FeatureRun:
    """`write_features` with each keyword shard's work in a Spark task: the same partitions of `features_table` and
    of the rolling state, staged and replacing the stored days only once every day is written."""
    days = consecutive(days)
    log = log or quiet
    previous = days[0] - dt.timedelta(days=1)
    state_reused = store.partition_exists(tables.FEATURE_STATE, previous)
    cores = spark.sparkContext.defaultParallelism
    shards = _shards(store, reports_table, days[0], history_start, state_reused, keywords_per_shard, cores)
    if not state_reused:
        log(f"no rolling state for {previous}: rebuilding it from the {LOOKBACK_DAYS} report days before {days[0]}")
    run_folder = store.path(STAGING_FOLDER, uuid.uuid4().hex)
    if store.is_local:  # a local filesystem opens no file in a missing folder (S3 has no folders to make)
        for kind in (STATE, LAGS, PRIORS, INPUTS, FEATURES):
            for day in days:
                store.fs.create_dir(f"{run_folder}/{kind}/{day.isoformat()}", recursive=True)
    context = spark.sparkContext
    # A read-only view: the run's held partitions are read as the driver reads them, and a task writes none.
    view = store.seen_by_run(store.run_id) if store.run_id is not None else store
    task = FeatureTask(view, reports_table, tuple(days), history_start, state_reused, run_folder)
    shared = context.broadcast(task)
    span = days_span(days)
    tasks = Progress(f"features {span} on Spark", 2 * len(shards), log, unit="shard tasks")
    try:
        started = time.perf_counter()
        log(f"features {span} on Spark ({context.master}): {len(shards)} shard(s), one task each")
        rolled = run_tasks(context, shards, lambda part: _roll_task(shared.value, part), tasks, "keyword features")
        rolled = sorted(pickle.loads(row) for row in rolled)  # (shard, attempt): in keyword order
        attempts = [attempt for _, attempt in rolled]
        if [shard for shard, _ in rolled] != list(range(len(shards))):
            raise RuntimeError(f"features on Spark: {len(rolled)} shard results for {len(shards)} shards")
        for day in days:
            _stage_priors(task, day, attempts)
        computed = run_tasks(
            context, attempts, lambda part: _features_task(shared.value, part), tasks, "keyword features"
        )
        rows_by_shard = dict(sorted(pickle.loads(row) for row in computed))  # shard → (attempt, rows by day)
        log(f"features {span} on Spark: {len(shards)} shard(s) computed in {time.perf_counter() - started:,.1f} s")
        total = sum(sum(rows.values()) for _, rows in rows_by_shard.values())
        progress = Progress(f"features {span}", total, log)
        rows = 0
        with store.staging() as staged:
            for day in days:
                with staged.partition_writer(features_table, day) as features_out:
                    for shard in range(len(shards)):
                        frame = read_staged(task.store.fs, task.path(FEATURES, day, shard, rows_by_shard[shard][0]))
                        features_out.write(frame)
                        progress.advance(len(frame))
                with staged.partition_writer(tables.FEATURE_STATE, day) as state_out:
                    for shard, attempt in enumerate(attempts):
                        state_out.write(read_staged(task.store.fs, task.path(STATE, day, shard, attempt)))
                rows += features_out.rows
            # Published once every day is written: a range that fails on a later day replaces none of its days.
            staged.publish(features_table)
            staged.publish(tables.FEATURE_STATE)
        return FeatureRun(rows, len(days), len(shards), state_reused)
    finally:  # gone from the executors and from the driver's temporary file: the warehouse may hold S3 keys
        shared.destroy()
        delete_staging(store.fs, run_folder)


def _shards(
    store: Warehouse,
    reports_table: str,
    first: dt.date,
    history_start: dt.date,
    state_reused: bool,
    keywords_per_shard: int,
    cores: int,
) -> list[KeywordRange]:
    """`write_features`' shard bounds, from the keywords known on the first day; but at least `TASKS_PER_CORE`
    shards per core of the session, since a shard is a task: one shard of a million keywords would leave the other
    cores idle. A shard still holds at most `keywords_per_shard` keywords, which bounds a task's memory."""
    ids = known_keyword_ids(store, reports_table, first, history_start, state_reused)
    per_task = -(-len(ids) // (TASKS_PER_CORE * max(cores, 1)))
    return keyword_shards(ids, max(1, min(keywords_per_shard, per_task)))


def _roll_task(task: FeatureTask, shards: Iterator[tuple[int, KeywordRange]]) -> Iterator[bytes]:
    """Phase 1, one shard: its rolling state of every day, its lags and its prior inputs, staged."""
    attempt = attempt_name()
    previous = task.days[0] - dt.timedelta(days=1)
    for number, shard in shards:
        read = report_reader(task.store, task.reports_table, task.history_start, shard)
        state = stored_state(task.store, previous, shard) if task.state_reused else None
        for day, state_of_day, (lag_1, lag_7) in roll_shard(list(task.days), read, state):
            write_staged(task.store.fs, task.path(STATE, day, number, attempt), state_of_day.to_frame())
            lags = {f"lag_1__{m}": lag_1[m] for m in METRIC_COLUMNS} | {f"lag_7__{m}": lag_7[m] for m in METRIC_COLUMNS}
            write_staged(task.store.fs, task.path(LAGS, day, number, attempt), pd.DataFrame(lags))
            write_staged(task.store.fs, task.path(INPUTS, day, number, attempt), prior_inputs(state_of_day))
        yield pickle.dumps((number, attempt))


def _stage_priors(task: FeatureTask, day: dt.date, attempts: list[str]) -> None:
    """Phase 2, on the driver: the day's ratio priors from every shard's prior inputs in keyword order, as the local
    engine computes them, and each shard's rows of them staged for its task."""
    inputs = [
        read_staged(task.store.fs, task.path(INPUTS, day, shard, attempt)) for shard, attempt in enumerate(attempts)
    ]
    for frame in inputs:
        frame[["campaign", "ad_group"]] = frame[["campaign", "ad_group"]].astype("string")
    priors = ratio_priors(inputs)
    end = 0
    for shard, (attempt, frame) in enumerate(zip(attempts, inputs)):
        rows = slice(end, end + len(frame))
        end += len(frame)
        columns = {_prior_column(pair): values[rows] for pair, values in priors.items()}
        write_staged(task.store.fs, task.path(PRIORS, day, shard, attempt), pd.DataFrame(columns))


def _features_task(task: FeatureTask, shards: Iterator[tuple[int, str]]) -> Iterator[bytes]:
    """Phase 3, one shard: its features of every day, from its staged state, lags and priors."""
    attempt = attempt_name()
    for number, rolled in shards:
        rows = {}
        for day in task.days:
            state = RollingState.from_frame(day, read_staged(task.store.fs, task.path(STATE, day, number, rolled)))
            # As the rolled state held them: text columns as pandas strings.
            state.keywords[list(DIMENSION_COLUMNS)] = state.keywords[list(DIMENSION_COLUMNS)].astype("string")
            lags = read_staged(task.store.fs, task.path(LAGS, day, number, rolled))
            priors_frame = read_staged(task.store.fs, task.path(PRIORS, day, number, rolled))
            lag_1 = {m: lags[f"lag_1__{m}"].to_numpy(dtype="float64") for m in METRIC_COLUMNS}
            lag_7 = {m: lags[f"lag_7__{m}"].to_numpy(dtype="float64") for m in METRIC_COLUMNS}
            priors = {_prior_pair(name): priors_frame[name].to_numpy(dtype="float64") for name in priors_frame}
            features = shard_features(state, lag_1, lag_7, priors, days_of_history(day, task.history_start))
            write_staged(task.store.fs, task.path(FEATURES, day, number, attempt), features)
            rows[day] = len(features)
        yield pickle.dumps((number, (attempt, rows)))


def _prior_column(pair: tuple[str, str]) -> str:
    return "__over__".join(pair)


def _prior_pair(column: str) -> tuple[str, str]:
    numerator, denominator = column.split("__over__")
    return numerator, denominator
