"""Validation of a range's stored raw reports, keyword shard by keyword shard: the same tables as `validate_report` of
the whole range, with one shard's rows in memory at a time, in this process or as Spark tasks.

Every row of a criterion ID falls in one shard, so a shard is judged alone (`validate_shard`): its duplicates, its
keywords' IDs from the registry and its outliers. What needs the whole range is gathered before or after:

1. **A column pass over each day** (`survey_day`): the optional metrics the day left empty on every row (not
   reported, so not missing), its rows' criterion IDs, whose quantiles bound the shards, and whether the day is in
   criterion order.
2. **Each shard's rows.** A day in criterion order is read one shard's ID range at a time (Parquet's row-group
   statistics skip the rest). Any other day is first split into shard files, a run of row groups at a time
   (`split_rows`): the shuffle by keyword key. Rows without a usable criterion ID go to a shard of their own; every
   one of them is quarantined.
3. **Each shard judged** (`judge_shard`), with the registry's pairs of its IDs (`RegistryByShard`) and its
   keywords' 28-day history.
4. **New keywords numbered once** for the range (`number_new_keywords`): a pair that cannot keep its criterion ID
   gets an ID of 2**62 and up, in the order of day, ad group and criterion over every shard.
5. **Written** (`VerdictWriter`): each day's validated rows shard by shard, then the keywords with IDs of 2**62 and
   up (new or registered so, from any shard), sorted; the quarantine in the order its rows came.

pyspark is imported by the caller's SparkSession only (`validate_stored_on_spark`).
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from daily_bids.ingest.tally import ReportTally
from daily_bids.ingest.validation import (
    FIRST_NEW_KEYWORD_ID,
    NEW_KEY_ORDER,
    Plausibility,
    ShardVerdict,
    add_to_key_registry,
    check_key_registry,
    empty_key_registry,
    first_new_keyword_id,
    keyword_history,
    number_new_keywords,
    numbered,
    validate_shard,
)
from daily_bids.progress import Progress, quiet
from daily_bids.schema import COLUMNS_BY_NAME, METRIC_COLUMNS, NUMERIC_COLUMNS, empty_raw, numeric
from daily_bids.spark_tasks import attempt_name, delete_staging, read_staged, run_tasks, tasks_for, write_staged
from daily_bids.storage import tables
from daily_bids.storage.warehouse import ROW_GROUP_ROWS, SPARK_STAGING_FOLDER, StagedPartitions, Warehouse

# A shard's rows over the range: what judging one shard holds in memory (about 1 GB at a million rows).
ROWS_PER_SHARD = 1_000_000
# Rows read at a time by the column pass, and when a day out of criterion order is split into shard files.
BATCH_ROWS = ROW_GROUP_ROWS
# Criterion IDs kept per day to place the shard bounds: quantiles of a sample, not of every row of a month.
SAMPLE_PER_DAY = 100_000
OPTIONAL_METRICS: tuple[str, ...] = tuple(name for name in NUMERIC_COLUMNS if not COLUMNS_BY_NAME[name].required)
# A row's place in the range: its day's number times this, plus its row in the day. Quarantined rows are written in
# this order, as they came.
DAY_STRIDE = 1 << 40
ORDER = "_order"


@dataclass(frozen=True)
class DaySurvey:
    """What the column pass found in one day (`survey_day`)."""

    day: dt.date
    rows: int
    unreported: frozenset[str]  # optional metrics empty on every row of the day
    in_order: bool  # criterion IDs finite and ascending: read by range, not split
    sample: np.ndarray  # criterion IDs, every k-th finite one


@dataclass(frozen=True)
class ValidationPlan:
    """What judging any shard needs; it pickles, so a Spark task gets it as the driver has it. The warehouse travels
    as itself: its filesystem (local, or S3 with its options) reads in a task as in the driver."""

    store: Warehouse
    raw_table: str
    days: tuple[dt.date, ...]
    rows: tuple[int, ...]  # by day
    unreported: tuple[frozenset[str], ...]  # by day
    shard_starts: tuple[tuple[int, ...] | None, ...]  # by day: a day in order, the first row of each keyed shard
    bounds: tuple[float, ...]  # keyed shard s holds criterion IDs in [bounds[s - 1], bounds[s])
    plausibility: Plausibility
    staging: str  # the run's folder: split rows, and on Spark the shards' verdicts

    @property
    def keyed_shards(self) -> int:
        return len(self.bounds) + 1

    @property
    def shards(self) -> int:
        """The keyed shards, then the shard of rows without a usable criterion ID."""
        return self.keyed_shards + 1

    def id_range(self, shard: int) -> tuple[float | None, float | None]:
        """The criterion IDs of a keyed shard, [low, high), None for an open end."""
        low = self.bounds[shard - 1] if shard > 0 else None
        high = self.bounds[shard] if shard < len(self.bounds) else None
        return low, high

    def shard_of(self, criteria: np.ndarray) -> np.ndarray:
        """Each criterion ID's shard: a keyed one by its range, or the last where it is missing or not finite."""
        shards = np.searchsorted(np.asarray(self.bounds, dtype="float64"), criteria, side="right")
        return np.where(np.isfinite(criteria), shards, self.keyed_shards)

    def split_folder(self, day_number: int, shard: int) -> str:
        return f"{self.staging}/split/{day_number:05d}/{shard:05d}"

    def verdict_path(self, kind: str, shard: int, attempt: str) -> str:
        return f"{self.staging}/verdicts/{kind}/{shard:05d}-{attempt}.parquet"


@dataclass
class StoredValidation:
    """What a range's validation wrote, for the step's metadata and the key registry."""

    quarantined_rows: int = 0
    keywords: int = 0
    unreported_metrics: list[str] = field(default_factory=list)
    new_keys: pd.DataFrame = field(default_factory=empty_key_registry)
    reasons: dict[str, int] = field(default_factory=dict)
    valid: ReportTally = field(default_factory=lambda: ReportTally({}))  # the validated rows' days and totals
    shards: int = 0

    @property
    def valid_rows(self) -> int:
        return self.valid.rows


# ---- 1. the column pass ---------------------------------------------------------------------------------------------
def survey_day(store: Warehouse, raw_table: str, day: dt.date) -> DaySurvey:
    """The criterion IDs and optional metrics of one stored day, read a column and a row group at a time: the
    driver never holds a whole column of the day."""
    rows = store.partition_rows(raw_table, day)
    stride = max(1, rows // SAMPLE_PER_DAY)
    sample, in_order, last, first_row = [], True, -np.inf, 0
    for batch in store.iter_partition(raw_table, day, BATCH_ROWS, columns=["keyword_id"]):
        criteria = numeric(batch["keyword_id"])
        if not len(criteria):
            continue
        finite = np.isfinite(criteria)
        in_order = (
            in_order and bool(finite.all()) and criteria[0] >= last and bool((criteria[1:] >= criteria[:-1]).all())
        )
        last = criteria[-1]
        sample.append(criteria[finite & ((first_row + np.arange(len(criteria))) % stride == 0)])
        first_row += len(criteria)
    present = set(store.partition_columns(raw_table, day))
    unreported = frozenset(
        name for name in OPTIONAL_METRICS if name not in present or _empty_column(store, raw_table, day, name)
    )
    return DaySurvey(day, rows, unreported, in_order, np.concatenate(sample) if sample else np.empty(0))


def _empty_column(store: Warehouse, raw_table: str, day: dt.date, column: str) -> bool:
    """Whether every value of `column` is missing that day (null or NaN, as `validate_report` reads it), read a
    row group at a time up to the first value: a metric the day reports is known at its first rows."""
    batches = store.iter_partition(raw_table, day, BATCH_ROWS, columns=[column])
    return not any(batch[column].notna().any() for batch in batches)


def plan_validation(
    store: Warehouse,
    raw_table: str,
    days: list[dt.date],
    plausibility: Plausibility,
    staging: str,
    rows_per_shard: int = ROWS_PER_SHARD,
    min_shards: int = 1,
) -> ValidationPlan:
    """The shard bounds (quantiles of the range's criterion IDs, about `rows_per_shard` rows a shard, and at least
    `min_shards` where there are IDs to spread) and each day's survey."""
    surveys = [survey_day(store, raw_table, day) for day in days]
    total = sum(survey.rows for survey in surveys)
    sample = np.sort(np.concatenate([survey.sample for survey in surveys]))
    shards = max(min_shards, -(-total // rows_per_shard))
    bounds: tuple[float, ...] = ()
    if len(sample) and shards > 1:
        cuts = np.quantile(sample, np.arange(1, shards) / shards, method="inverted_cdf")
        bounds = tuple(float(cut) for cut in np.unique(cuts) if cut > sample[0])
    starts = []
    for survey in surveys:
        if not survey.in_order:
            starts.append(None)
            continue
        # The rows before each bound, counted a row group at a time (the day is in order): not kept from the survey,
        # since the bounds come from every day's sample, and a month of a large account's IDs would not fit.
        edges = np.zeros(len(bounds), dtype="int64")
        for batch in store.iter_partition(raw_table, survey.day, BATCH_ROWS, columns=["keyword_id"]):
            edges += np.searchsorted(numeric(batch["keyword_id"]), np.asarray(bounds, dtype="float64"), side="left")
        starts.append((0, *map(int, edges), survey.rows))
    return ValidationPlan(
        store,
        raw_table,
        tuple(days),
        tuple(survey.rows for survey in surveys),
        tuple(survey.unreported for survey in surveys),
        tuple(starts),
        bounds,
        plausibility,
        staging,
    )


# ---- 2. each shard's rows -------------------------------------------------------------------------------------------
def split_rows(plan: ValidationPlan, day_number: int, piece: str, rows: pd.DataFrame, first_row: int) -> None:
    """One batch of a day out of criterion order, each shard's rows to a file of its own, with their row in the day.
    `piece` names the batch's files; the names sort in the order of the batches' rows."""
    rows = rows.assign(**{ORDER: first_row + np.arange(len(rows), dtype="int64")})
    shard = plan.shard_of(numeric(rows["keyword_id"]) if "keyword_id" in rows else np.full(len(rows), np.nan))
    order = np.argsort(shard, kind="stable")
    grouped = rows.take(order)
    ends = np.searchsorted(shard[order], np.arange(plan.shards), side="right")
    start = 0
    for number, end in enumerate(ends):
        if end > start:
            path = f"{plan.split_folder(day_number, number)}/{piece}.parquet"
            _stage(plan.store, path, grouped.iloc[start:end].reset_index(drop=True))
        start = end


def split_days_out_of_order(plan: ValidationPlan, log: Callable[[str], None]) -> None:
    """`split_rows` over every day not in criterion order, in this process."""
    for number, day in enumerate(plan.days):
        if plan.shard_starts[number] is not None:
            continue
        log(f"{day}: rows not in keyword order, split into {plan.shards} keyword shards first")
        first_row = 0
        for piece, batch in enumerate(plan.store.iter_partition(plan.raw_table, day, BATCH_ROWS)):
            split_rows(plan, number, f"{piece:07d}", batch, first_row)
            first_row += len(batch)


def shard_rows(plan: ValidationPlan, shard: int) -> pd.DataFrame:
    """Every raw row of the shard over the range, in the order they came, with `ORDER` (day and row)."""
    frames = []
    for number, day in enumerate(plan.days):
        starts = plan.shard_starts[number]
        if starts is not None:
            if shard >= plan.keyed_shards:
                continue  # a day in order has no row without a criterion ID
            frame = plan.store.read_partitions(plan.raw_table, [day], keyword_range=plan.id_range(shard))
            if len(frame) != starts[shard + 1] - starts[shard]:
                raise RuntimeError(f"{plan.raw_table} {day} changed while it was validated; run the day again")
            frame[ORDER] = number * DAY_STRIDE + starts[shard] + np.arange(len(frame), dtype="int64")
        else:
            selector = pafs.FileSelector(plan.split_folder(number, shard), allow_not_found=True)
            paths = sorted(info.path for info in plan.store.fs.get_file_info(selector))
            if not paths:
                continue
            frame = pd.concat([read_staged(plan.store.fs, path) for path in paths], ignore_index=True)
            frame[ORDER] += number * DAY_STRIDE
        frames.append(frame)
    if not frames:
        return empty_raw().assign(**{ORDER: pd.Series(dtype="int64")})
    return pd.concat(frames, ignore_index=True)


# ---- 3. each shard judged -------------------------------------------------------------------------------------------
class RegistryByShard:
    """The registry's pairs each shard's rows can meet (`of`): those of its criterion IDs, and those holding one of its
    criterion IDs as their keyword ID (which a new pair of that criterion may then not take). Every ID is placed in
    its shard once, not once a shard: at 10M keywords each pass over the registry costs a quarter of a second."""

    def __init__(self, plan: ValidationPlan, registry: pd.DataFrame):
        self._plan = plan
        self._registry = registry.reset_index(drop=True)
        self._by_criterion = plan.shard_of(registry["criterion_id"].to_numpy(dtype="float64")).astype("int32")
        self._by_keyword = plan.shard_of(registry["keyword_id"].to_numpy(dtype="float64")).astype("int32")

    def of(self, shard: int) -> pd.DataFrame:
        if shard >= self._plan.keyed_shards:  # the rows without a usable criterion ID meet no pair
            return self._registry.iloc[0:0]
        rows = np.flatnonzero((self._by_criterion == shard) | (self._by_keyword == shard))
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # one run, as a first registration gives (shard order)
            return self._registry.iloc[rows[0] : rows[-1] + 1]  # a view, where a take copies a million strings
        return self._registry.take(rows)


def judge_shard(
    plan: ValidationPlan, rows: pd.DataFrame, registry: pd.DataFrame, history: pd.DataFrame | None
) -> ShardVerdict:
    """`validate_shard` of a shard's rows (`shard_rows`); its quarantine carries each row's `ORDER`."""
    order = rows.pop(ORDER).to_numpy(dtype="int64")
    day_number = order // DAY_STRIDE
    unreported = pd.DataFrame(
        {name: np.array([name in day for day in plan.unreported], dtype=bool)[day_number] for name in OPTIONAL_METRICS}
    )
    verdict = validate_shard(rows, list(plan.days), plan.plausibility, history, registry, unreported)
    verdict.quarantine = verdict.quarantine.assign(**{ORDER: order[verdict.quarantine.index.to_numpy()]})
    return verdict


# ---- 5. written -----------------------------------------------------------------------------------------------------
class VerdictWriter:
    """Writes the shards' verdicts, given in shard order, into the staged partitions of every day of the range: the
    validated rows of IDs below 2**62 at once (a shard's are above every earlier shard's), the rest at the end."""

    def __init__(self, staged: StagedPartitions, days: tuple[dt.date, ...], valid: str | None, quarantine: str | None):
        self._stack = ExitStack()
        self._valid, self._quarantine = (
            None if table is None else self._stack.enter_context(staged.day_writers(table, days))
            for table in (valid, quarantine)
        )
        self._tails: list[tuple[int, pd.DataFrame]] = []
        self._set_aside: list[pd.DataFrame] = []
        self._new_keys: list[pd.DataFrame] = []
        self._highest: list[int] = []
        self._empty_valid: pd.DataFrame | None = None
        self.result = StoredValidation(valid=ReportTally.of_days(list(days)))

    def __enter__(self) -> VerdictWriter:
        return self

    def __exit__(self, *error) -> bool:
        return self._stack.__exit__(*error)

    def add(self, shard: int, verdict: ShardVerdict) -> None:
        valid = verdict.valid
        if self._empty_valid is None:
            self._empty_valid = valid.iloc[0:0]
        ids = valid["keyword_id"].to_numpy(dtype="int64")
        head = (ids > 0) & (ids < FIRST_NEW_KEYWORD_ID)
        if self._valid is not None:
            self._valid.write(valid[head])
        if not head.all():
            self._tails.append((shard, valid[~head]))
        self._set_aside.append(verdict.quarantine)
        self._new_keys.append(verdict.new_keys)
        self._highest.append(verdict.highest_reported)
        # A keyword's rows are all in its shard. Counted by sorting: NumPy's hashing unique took 0.4 s a shard.
        ordered = np.sort(ids, kind="stable")  # runs already sorted: each day's rows are in keyword order
        self.result.keywords += int(len(ordered) > 0) + int(np.count_nonzero(ordered[1:] != ordered[:-1]))
        self.result.valid.add(valid)
        self.result.shards += 1

    def finish(self, registry: pd.DataFrame, unreported: tuple[frozenset[str], ...], rows: tuple[int, ...]) -> None:
        """The range's new keywords numbered, the rows waiting for them and the quarantine written, and every day
        without rows given its columns."""
        numbers = number_new_keywords(self._new_keys, first_new_keyword_id(registry, self._highest))
        if self._tails and self._valid is not None:
            tail = pd.concat(
                [
                    frame.assign(keyword_id=numbered(frame["keyword_id"].to_numpy(dtype="int64"), numbers[shard]))
                    for shard, frame in self._tails
                ],
                ignore_index=True,
            )
            self._valid.write(tail.take(np.lexsort((tail["keyword_id"].to_numpy(), tail["date"].to_numpy()))))
        new_keys = [
            keys.assign(keyword_id=numbered(keys["keyword_id"].to_numpy(dtype="int64"), numbers[shard]))
            for shard, keys in enumerate(self._new_keys)
        ]
        # In the order `validate_report` gives them: the order they were numbered in.
        new_keys = pd.concat([empty_key_registry(), *new_keys], ignore_index=True)
        self.result.new_keys = (
            new_keys.astype(empty_key_registry().dtypes.to_dict())
            .sort_values(list(NEW_KEY_ORDER), kind="stable")
            .reset_index(drop=True)
        )
        set_aside = pd.concat(self._set_aside, ignore_index=True)
        set_aside = set_aside.take(np.argsort(set_aside.pop(ORDER).to_numpy(), kind="stable"))  # as the rows came
        if self._quarantine is not None:
            self._quarantine.write(set_aside)
            self._quarantine.fill(set_aside)
        if self._valid is not None:
            self._valid.fill(self._empty_valid)
        self.result.quarantined_rows = len(set_aside)
        self.result.reasons = set_aside["reason"].value_counts().to_dict()
        days_with_rows = [reported for reported, count in zip(unreported, rows) if count]
        self.result.unreported_metrics = sorted(
            name for name in OPTIONAL_METRICS if all(name in day for day in days_with_rows)
        )


# ---- the whole range, in this process --------------------------------------------------------------------------------
def validate_stored(
    store: Warehouse,
    raw_table: str,
    days: list[dt.date],
    plausibility: Plausibility,
    valid_table: str | None,
    quarantine_table: str | None,
    before_publishing: Callable[[StoredValidation], None] | None = None,
    log: Callable[[str], None] | None = None,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> StoredValidation:
    """The range's validated rows and quarantine, staged into `valid_table` and `quarantine_table` (either may be
    None: not written) and published together, one keyword shard in memory at a time. Keywords take their IDs from
    the warehouse's key registry; `before_publishing` gets the result first (the step records the new keywords' IDs
    before any table holds them). The outlier rule judges by the features' rolling state of the day before the range
    (`trailing_totals`), when there is one."""
    log = log or quiet
    registry = key_registry(store)
    history = keyword_history(trailing_totals(store, days[0] - dt.timedelta(days=1)))
    plan = plan_validation(store, raw_table, days, plausibility, _staging_folder(store), rows_per_shard)
    progress = Progress(f"validation {_span(days)}", sum(plan.rows), log)

    def verdicts() -> Iterator[ShardVerdict]:  # judged one at a time, as the writer takes them
        registries = RegistryByShard(plan, registry)
        for shard in range(plan.shards):
            rows = shard_rows(plan, shard)
            progress.advance(len(rows))
            verdict = judge_shard(plan, rows, registries.of(shard), history)
            del rows  # not held while the writer takes the verdict
            yield verdict

    try:
        split_days_out_of_order(plan, log)
        outputs = (valid_table, quarantine_table)
        return _write_verdicts(store, plan, outputs, verdicts(), registry, before_publishing)
    finally:
        delete_staging(store.fs, plan.staging)


# ---- the whole range, on Spark ----------------------------------------------------------------------------------------
def validate_stored_on_spark(
    spark,
    store: Warehouse,
    raw_table: str,
    days: list[dt.date],
    plausibility: Plausibility,
    valid_table: str | None,
    quarantine_table: str | None,
    before_publishing: Callable[[StoredValidation], None] | None = None,
    log: Callable[[str], None] | None = None,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> StoredValidation:
    """`validate_stored` with the splitting and each shard's judgement in Spark tasks. A task reads its rows, the
    registry's pairs of its IDs and its keywords' history itself, and stages its verdict; the driver writes the
    verdicts in shard order, as `validate_stored` does, and reads only the registry's IDs (new ones go above)."""
    log = log or quiet
    registry = key_registry(store, columns=["keyword_id"])
    context = spark.sparkContext
    # A read-only view: the run's held partitions are read as the driver reads them, and a task writes none.
    view = store.seen_by_run(store.run_id) if store.run_id is not None else store
    plan = plan_validation(
        view, raw_table, days, plausibility, _staging_folder(store), rows_per_shard, min_shards=tasks_for(context)
    )
    span = _span(days)
    shared = context.broadcast(plan)
    try:
        started = time.perf_counter()
        pieces = _split_pieces(plan)
        if pieces:
            progress = Progress(f"validation {span} on Spark: split", len(pieces), log, unit="row-group runs")
            run_tasks(context, pieces, lambda part: _split_task(shared.value, part), progress, "split report rows")
        progress = Progress(f"validation {span} on Spark", plan.shards, log, unit="shard tasks")
        judged = run_tasks(
            context, list(range(plan.shards)), lambda part: _judge_task(shared.value, part), progress, "validation"
        )
        attempts = dict(sorted(pickle.loads(row) for row in judged))  # shard → (attempt, highest)
        if sorted(attempts) != list(range(plan.shards)):
            raise RuntimeError(f"validation on Spark: {len(attempts)} shard results for {plan.shards} shards")
        log(f"validation {span} on Spark: {plan.shards} shard(s) judged in {time.perf_counter() - started:,.1f} s")
        verdicts = (_read_verdict(plan, shard, attempt, highest) for shard, (attempt, highest) in attempts.items())
        outputs = (valid_table, quarantine_table)
        return _write_verdicts(store, plan, outputs, verdicts, registry, before_publishing)
    finally:  # gone from the executors and from the driver's temporary file: the warehouse may hold S3 keys
        shared.destroy()
        delete_staging(store.fs, plan.staging)


def _split_pieces(plan: ValidationPlan) -> list[tuple[int, int, list[int], int]]:
    """The split's work items: (day number, piece, row groups, first row), about `BATCH_ROWS` rows each."""
    pieces = []
    for number, day in enumerate(plan.days):
        if plan.shard_starts[number] is not None:
            continue
        first_row, run, run_rows = 0, [], 0
        for group, group_rows in enumerate(plan.store.row_group_rows(plan.raw_table, day)):
            if run and run_rows + group_rows > BATCH_ROWS:
                pieces.append((number, len(pieces), run, first_row))
                first_row, run, run_rows = first_row + run_rows, [], 0
            run.append(group)
            run_rows += group_rows
        if run:
            pieces.append((number, len(pieces), run, first_row))
    return pieces


def _split_task(plan: ValidationPlan, items: Iterator[tuple[int, tuple[int, int, list[int], int]]]) -> Iterator[int]:
    for _, (number, piece, groups, first_row) in items:
        batches = plan.store.iter_partition(plan.raw_table, plan.days[number], BATCH_ROWS, row_groups=groups)
        for part, batch in enumerate(batches):  # one, unless a row group is larger than a batch
            split_rows(plan, number, f"{piece:07d}-{part:05d}", batch, first_row)
            first_row += len(batch)
        yield piece


def _judge_task(plan: ValidationPlan, items: Iterator[tuple[int, int]]) -> Iterator[bytes]:
    attempt = attempt_name()
    for _, shard in items:
        rows = shard_rows(plan, shard)
        registry = _registry_of_shard_read(plan, shard)
        history = keyword_history(_history_read(plan, rows, registry))
        verdict = judge_shard(plan, rows, registry, history)
        for kind, frame in (("valid", verdict.valid), ("quarantine", verdict.quarantine), ("keys", verdict.new_keys)):
            _stage(plan.store, plan.verdict_path(kind, shard, attempt), frame.reset_index(drop=True))
        yield pickle.dumps((shard, (attempt, verdict.highest_reported)))


def _registry_of_shard_read(plan: ValidationPlan, shard: int) -> pd.DataFrame:
    """`RegistryByShard.of`, read by the task from the registry table: only its rows, filtered while reading."""
    if shard >= plan.keyed_shards:
        return empty_key_registry()
    # The registry's IDs are integers: for an integer, x >= 7.5 is x >= 8 (and Arrow compares an integer column
    # with an integer only).
    low, high = (None if bound is None else math.ceil(bound) for bound in plan.id_range(shard))
    filters = [
        [(column, ">=", low)] * (low is not None) + [(column, "<", high)] * (high is not None)
        for column in ("criterion_id", "keyword_id")
    ]
    return key_registry(plan.store, filters=filters if filters[0] else None)  # no bound: one shard holds every ID


def _history_read(plan: ValidationPlan, rows: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame | None:
    """The 28-day totals of the keywords a shard's rows can be: their criterion IDs and their registered pairs'."""
    criteria = numeric(rows["keyword_id"])
    keyed = criteria[(criteria >= 1) & (criteria < 2.0**63)]  # the others are quarantined as out of range
    wanted = np.union1d(keyed.astype("int64"), registry["keyword_id"].to_numpy(dtype="int64"))
    return trailing_totals(plan.store, plan.days[0] - dt.timedelta(days=1), wanted)


def _read_verdict(plan: ValidationPlan, shard: int, attempt: str, highest: int) -> ShardVerdict:
    fs = plan.store.fs
    valid = read_staged(fs, plan.verdict_path("valid", shard, attempt))
    quarantine = read_staged(fs, plan.verdict_path("quarantine", shard, attempt))
    keys = read_staged(fs, plan.verdict_path("keys", shard, attempt)).astype(empty_key_registry().dtypes.to_dict())
    return ShardVerdict(valid, quarantine, keys, highest)


# ---- shared -----------------------------------------------------------------------------------------------------------
def trailing_totals(store: Warehouse, day: dt.date, keyword_ids: np.ndarray | None = None) -> pd.DataFrame | None:
    """Each keyword's metric totals over the 28 days through `day`, from the features' rolling state (one partition,
    not 28 report days); None before the features have run, when the outlier rule has nothing to go by. With
    `keyword_ids`, only theirs."""
    if not store.partition_exists(tables.FEATURE_STATE, day):
        return None
    sums = {f"{m}_sum_28d": m for m in METRIC_COLUMNS}
    columns = ["keyword_id", *sums]
    return store.read_partitions(tables.FEATURE_STATE, [day], columns, keyword_ids=keyword_ids).rename(columns=sums)


def key_registry(store: Warehouse, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
    """The warehouse's key registry (`assign_keyword_ids`), or its `columns` of the rows `filters` keep; checked
    when whole rows are read."""
    if not store.table_exists(tables.KEYWORD_KEYS):
        return empty_key_registry() if columns is None else empty_key_registry()[columns]
    registry = store.read_table(tables.KEYWORD_KEYS, columns, filters)
    return registry if columns is not None else check_key_registry(registry, tables.KEYWORD_KEYS)


def register_new_keys(store: Warehouse, new_keys: pd.DataFrame) -> None:
    """`new_keys` added to the warehouse's key registry, as the step records a range's new keywords before publishing
    it. Raises `KeyRegistryError` when another run registered the same pairs or IDs meanwhile."""
    if len(new_keys):
        store.write_table(tables.KEYWORD_KEYS, add_to_key_registry(key_registry(store), new_keys))


def _write_verdicts(
    store: Warehouse,
    plan: ValidationPlan,
    outputs: tuple[str | None, str | None],
    verdicts: Iterator[ShardVerdict],
    registry: pd.DataFrame,
    before_publishing: Callable[[StoredValidation], None] | None,
) -> StoredValidation:
    """The shards' verdicts, in shard order, staged into the validated table and the quarantine (either None: not
    written), and published together once `before_publishing` has had the result."""
    with store.staging() as staged:
        with VerdictWriter(staged, plan.days, *outputs) as writer:
            for shard, verdict in enumerate(verdicts):
                writer.add(shard, verdict)
            writer.finish(registry, plan.unreported, plan.rows)
        if before_publishing is not None:
            before_publishing(writer.result)
        for table in outputs:
            if table is not None:
                staged.publish(table)
    return writer.result


def _stage(store: Warehouse, path: str, frame: pd.DataFrame) -> None:
    """`write_staged`, making the folder first on a local disk (S3 has no folders to make)."""
    if store.is_local:
        store.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    write_staged(store.fs, path, frame)


def _staging_folder(store: Warehouse) -> str:
    return store.path(SPARK_STAGING_FOLDER, f"validation-{uuid.uuid4().hex}")


def _span(days: list[dt.date]) -> str:
    return str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"
