"""Scoring a day in batches: features → predictions → bids, with memory bounded by the batch, not the partition.

The model is loaded once by the caller and scores one batch of feature rows at a time; each batch's predictions and
bids are written as they come (see `Warehouse.partition_writer`). What needs the whole day is worked out first, or
last:
- each cluster's value per click (the cold-start prior) weighs the clicks of every keyword in the cluster: computed
  first, from three columns of the day's features;
- a campaign with a budget couples its keywords' bids: its keywords are held back and bid together after the last
  batch.
Every other rule (fixed margin, the profit optimizer without a budget, exploration drawn per keyword) decides a
keyword from its own row, so bids in batches equal bids of the whole day at once (tests/test_scoring.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from daily_bids.bidding.decision import BidDecision, CannotBidError, decide_bids
from daily_bids.bidding.policy import BidPolicy
from daily_bids.keyword_index import NOT_FOUND, KeywordIndex
from daily_bids.models.prediction import CLUSTER_VALUE_INPUTS, ClusterPriors, cluster_values, predict_next_day
from daily_bids.models.value_per_click import POSTERIOR_COLUMNS
from daily_bids.progress import Progress
from daily_bids.storage.warehouse import PartitionWriter, Warehouse

# The columns of the `keyword_value` table a prediction takes: its value per click and the spread of it.
VALUE_POSTERIOR_INPUTS = ["keyword_id", "value_per_click", "value_per_click_cv"]
assert set(VALUE_POSTERIOR_INPUTS[1:]) <= set(POSTERIOR_COLUMNS)


def value_posterior(store: Warehouse, value_table: str | None, day) -> pd.DataFrame | None:
    """The day's pooled value per click and its spread, indexed by keyword_id, from `value_table` (the
    `keyword_value` table, whose partition of the day must exist); None without a table: the model's ratio then."""
    if value_table is None:
        return None
    posterior = store.read_partitions(value_table, [day], VALUE_POSTERIOR_INPUTS)
    return posterior.drop(columns=["date"]).set_index("keyword_id")


def cluster_priors(store: Warehouse, features_table: str, day, clusters: pd.DataFrame | None) -> ClusterPriors:
    """Each keyword's cluster value per click, weighing the clicks of the whole day's keywords: read first, from
    three columns of the day's features, so that every batch gets the same priors."""
    features = store.read_partitions(features_table, [day], list(CLUSTER_VALUE_INPUTS))
    return ClusterPriors(clusters, cluster_values(features, clusters))


T = TypeVar("T")
U = TypeVar("U")
_END = object()


def computed_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items` in order, each next one computed in a background thread while the caller works on the one before.

    Scoring a batch (reading Parquet, the model's predict) and bidding and writing the one before mostly run outside
    the GIL, so on two cores the model need not wait for the bids, nor the bids for the model. One batch is computed
    ahead, so memory grows by one batch. An error in `items` is raised here, at the batch it broke."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="computed-ahead") as worker:
        ahead = worker.submit(next, items, _END)
        while (item := ahead.result()) is not _END:
            ahead = worker.submit(next, items, _END)
            yield item


def in_order(function: Callable[[T], U], items: Iterable[T], threads: int) -> Iterator[U]:
    """`function` of each of `items`, yielded in order, with up to `threads` of them computed at once in threads
    (numpy's array work runs outside the GIL). `items` is read here, in the caller's thread."""
    if threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="in-order") as pool:
        running: deque[Future[U]] = deque()
        for item in items:
            running.append(pool.submit(function, item))
            if len(running) > threads:  # one queued behind the running ones: the threads never wait for the caller
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


# Rows per batch: large enough that the model's per-call cost vanishes, small enough to keep a batch's frames
# (features, predictions, bids, the optimizer's keywords × candidates grids) to a few hundred megabytes.
BATCH_ROWS = 262_144
# Batches bid at once in this process: one per core of the benchmark machine. A Spark task bids its batches one by
# one, as Spark runs a task per core already.
BIDDING_THREADS = 2


@dataclass
class PredictionTotals:
    """What the `keyword_predictions` metadata reports of a day, summed over its batches."""

    keywords: int = 0
    sums: dict[str, float] = field(default_factory=dict)  # only the quantities some prediction carries
    values_per_click: list[np.ndarray] = field(default_factory=list)  # 4 bytes a keyword: the median needs all

    def add(self, predictions: pd.DataFrame) -> None:
        self.keywords += len(predictions)
        for column in ("expected_clicks", "expected_conversions", "expected_value"):
            if predictions[column].notna().any():
                self.sums[column] = self.sums.get(column, 0.0) + float(predictions[column].sum())
        self.values_per_click.append(predictions["expected_value_per_click"].dropna().to_numpy(dtype="float32"))

    def merge(self, other: PredictionTotals) -> None:
        """Add another part of the day (a Spark task's)."""
        self.keywords += other.keywords
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.values_per_click.extend(other.values_per_click)

    def summary(self) -> dict[str, float]:
        """Totals for the materialization's metadata; a quantity the reports do not carry is left out, not zeroed."""
        summary = {"keywords": float(self.keywords), **self.sums}
        values = np.concatenate(self.values_per_click) if self.values_per_click else np.zeros(0)
        if len(values):
            summary["median_value_per_click"] = float(np.median(values))
        return summary


@dataclass
class BidTotals:
    """What the `keyword_bids` metadata reports of a day, summed over its batches."""

    bids: int = 0
    unprofitable: int = 0
    priced_by_landscape: int = 0
    explored: int = 0
    bid_sum: float = 0.0
    expected_value: float = 0.0
    spend_at_most: float = 0.0
    basis: dict[str, int] = field(default_factory=dict)
    economics: pd.DataFrame | None = None  # chosen vs fixed margin, as `BidDecision.economics`
    landscape_note: str = ""
    preview: pd.DataFrame | None = None  # the first bids

    def add(self, decision: BidDecision) -> None:
        bids = decision.bids
        self.merge(
            BidTotals(
                bids=len(bids),
                unprofitable=len(decision.unprofitable),
                priced_by_landscape=decision.priced_by_landscape,
                explored=int(bids["exploration"].sum()),
                bid_sum=float(bids["bid"].sum()),
                expected_value=float((bids["expected_clicks"] * bids["expected_value_per_click"]).sum()),
                spend_at_most=float((bids["bid"] * bids["expected_clicks"]).sum()),
                basis={name: int(count) for name, count in bids["bid_basis"].value_counts().items()},
                economics=decision.economics,
                landscape_note=decision.landscape_note,
                preview=bids.head(10),
            )
        )

    def merge(self, other: BidTotals) -> None:
        """Add another part of the day: a batch's decision, or a Spark task's totals."""
        for name in (
            "bids",
            "unprofitable",
            "priced_by_landscape",
            "explored",
            "bid_sum",
            "expected_value",
            "spend_at_most",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, count in other.basis.items():
            self.basis[name] = self.basis.get(name, 0) + count
        if other.economics is not None:
            self.economics = other.economics if self.economics is None else self.economics + other.economics
        # The longest note wins: the held-back budgeted campaigns', decided last, adds what the budgets did.
        if len(other.landscape_note) >= len(self.landscape_note):
            self.landscape_note = other.landscape_note
        if other.preview is not None and (self.preview is None or len(self.preview) < 10):
            self.preview = pd.concat([self.preview, other.preview], ignore_index=True).head(10)

    @property
    def mean_bid(self) -> float:
        return self.bid_sum / self.bids if self.bids else 0.0


def bid_batches(
    batches: Iterable[tuple[pd.DataFrame, pd.DataFrame | None]],
    policy: BidPolicy,
    landscape=None,
    landscape_note: str = "",
    threads: int = 1,
) -> Iterator[BidDecision]:
    """`decide_bids` for each (predictions, their keywords' context) batch, in order, up to `threads` batches at
    once. Keywords of campaigns with a budget are held back and decided together after the last batch (a budget
    couples them), so memory is bounded by the batches in flight plus the budgeted campaigns."""
    budgeted = list(policy.campaign_budgets)
    held_back: list[tuple[pd.DataFrame, pd.DataFrame | None]] = []

    def unbudgeted() -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None]]:
        for predictions, context in batches:
            if budgeted:
                in_budget = predictions["campaign"].astype(str).isin(budgeted).to_numpy()
                held_back.append((predictions[in_budget], context))
                predictions = predictions[~in_budget]
            yield predictions.reset_index(drop=True), context

    def decide(batch: tuple[pd.DataFrame, pd.DataFrame | None]) -> BidDecision:
        predictions, context = batch
        return decide_bids(predictions, policy, landscape, context, landscape_note)

    yield from in_order(decide, unbudgeted(), threads)
    if held_back:
        predictions = pd.concat([p for p, _ in held_back], ignore_index=True)
        contexts = [c for _, c in held_back if c is not None]
        context = pd.concat(contexts, ignore_index=True) if contexts else None
        if context is not None:
            context = context[context["keyword_id"].isin(predictions["keyword_id"].to_numpy())]
        yield decide_bids(predictions, policy, landscape, context, landscape_note)


class ContextLookup:
    """The day's bid context (`landscape.bid_context`), indexed once, handing each batch its keywords' rows."""

    def __init__(self, context: pd.DataFrame | None):
        self.context = context.reset_index(drop=True) if context is not None else None
        self.keywords = KeywordIndex(context["keyword_id"].to_numpy()) if context is not None else None
        self.in_force = context["bid_in_force"].notna().to_numpy() if context is not None else None

    def __call__(self, predictions: pd.DataFrame) -> pd.DataFrame | None:
        """The context rows of the batch's keywords that have a bid in force, in the batch's order."""
        if self.context is None:
            return None
        position = self.keywords.positions(predictions["keyword_id"].to_numpy())
        position = position[position != NOT_FOUND]
        return self.context.iloc[position[self.in_force[position]]].reset_index(drop=True)


@dataclass
class DayScores:
    predictions: PredictionTotals
    bids: BidTotals | None  # None when the bids were not asked for, or could not be made
    rows_per_second: float
    cannot_bid: str = ""  # why no bids were made (CannotBidError), though the predictions were


class PartitionSink(Protocol):
    """Where a step writes its partitions: the warehouse itself, or a step's staging (`Warehouse.staging`)."""

    def partition_writer(self, table: str, day) -> AbstractContextManager[PartitionWriter]: ...


def score_day(
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
    batch_rows: int = BATCH_ROWS,
    log: Callable[[str], None] = print,
    value_table: str | None = None,
    sink: PartitionSink | None = None,
) -> DayScores:
    """One day, locally: feature batches → predictions → bids, each batch written as soon as it is scored.

    `outputs` names the tables to write: "predictions" always, "bids" when the bids are wanted too. When no bid can
    be made (no value per click: `CannotBidError`), the predictions are still written and `cannot_bid` says why.
    `value_table` names the table of each keyword's pooled value per click (`value_posterior`). The partitions are
    written to `sink` (a step's staging), or straight into `store`."""
    sink = sink or store
    priors = cluster_priors(store, features_table, day, clusters)
    posterior = value_posterior(store, value_table, day)
    progress = Progress(f"scoring {day}", store.partition_rows(features_table, day), log)
    predicted, bid = PredictionTotals(), (BidTotals() if "bids" in outputs else None)
    with sink.partition_writer(outputs["predictions"], day) as prediction_sink:

        def predicted_batches() -> Iterator[pd.DataFrame]:
            for features in store.iter_partition(features_table, day, batch_rows):
                yield predict_next_day(features, model, priors, value_posterior=posterior)

        def scored_batches() -> Iterator[pd.DataFrame]:
            for predictions in computed_ahead(predicted_batches()):
                prediction_sink.write(predictions)
                predicted.add(predictions)
                progress.advance(len(predictions))
                yield predictions

        batches, cannot_bid = scored_batches(), ""
        if bid is not None:
            cannot_bid = _write_bids(
                batches, sink, outputs["bids"], day, bid, policy, landscape, context, landscape_note
            )
            bid = None if cannot_bid else bid
        for _ in batches:  # the rest of the predictions, when there are no bids to make
            pass
    return DayScores(predicted, bid, progress.rows_per_second, cannot_bid)


def bid_day(
    store: Warehouse,
    predictions_table: str,
    bids_table: str,
    day,
    policy: BidPolicy,
    landscape=None,
    context: pd.DataFrame | None = None,
    landscape_note: str = "",
    batch_rows: int = BATCH_ROWS,
    log: Callable[[str], None] = print,
    sink: PartitionSink | None = None,
) -> DayScores:
    """One day's bids from its stored predictions, batch by batch as `score_day` bids them: what a run of the bids
    without the predictions does (`--select keyword_bids`). The predictions are read, never rewritten; a day whose
    predictions are missing raises `MissingPartitionsError`."""
    progress = Progress(f"bidding {day}", store.partition_rows(predictions_table, day), log)
    predicted, bid = PredictionTotals(), BidTotals()

    def stored_batches() -> Iterator[pd.DataFrame]:
        for predictions in store.iter_partition(predictions_table, day, batch_rows):
            predicted.add(predictions)
            progress.advance(len(predictions))
            yield predictions

    cannot_bid = _write_bids(
        stored_batches(), sink or store, bids_table, day, bid, policy, landscape, context, landscape_note
    )
    return DayScores(predicted, None if cannot_bid else bid, progress.rows_per_second, cannot_bid)


def _write_bids(
    predictions: Iterator[pd.DataFrame],
    sink: PartitionSink,
    bids_table: str,
    day,
    totals: BidTotals,
    policy: BidPolicy,
    landscape,
    context: pd.DataFrame | None,
    landscape_note: str,
) -> str:
    """Bid each batch of `predictions` and write the bids; returns why no bid could be made (the day's partition is
    then not written), or "" when every batch was bid."""
    lookup = ContextLookup(context)
    paired = ((batch, lookup(batch)) for batch in predictions)
    try:
        with sink.partition_writer(bids_table, day) as bid_sink:
            for decision in bid_batches(paired, policy, landscape, landscape_note, BIDDING_THREADS):
                bid_sink.write(decision.bids)
                totals.add(decision)
    except CannotBidError as error:
        return str(error)
    return ""


# The predictions the parity check compares, and the largest relative difference it allows by model kind: trees give
# the same sums in any engine; a network's float32 matrix products may round differently with the batch's shape.
PARITY_COLUMNS = ("expected_clicks", "expected_conversions", "expected_value", "expected_value_per_click")
PARITY_SAMPLE_ROWS = 5_000  # each model kind states its tolerance as `parity_tolerance`


def rescore_sample(
    store: Warehouse,
    features_table: str,
    day,
    model,
    clusters: pd.DataFrame | None,
    rows: int = PARITY_SAMPLE_ROWS,
    value_table: str | None = None,
) -> pd.DataFrame:
    """Predictions of a sample of the day's keywords, scored here in one call of the model: what the parity check
    holds the written predictions to."""
    sample = next(store.iter_partition(features_table, day, rows))
    priors = cluster_priors(store, features_table, day, clusters)
    return predict_next_day(sample, model, priors, value_posterior=value_posterior(store, value_table, day))


def parity_report(written: pd.DataFrame, rescored: pd.DataFrame) -> pd.DataFrame:
    """Element-wise differences between `written` and `rescored` predictions of the same keywords, per column:
    count, mean, p50, p99 and max of the relative difference |a − b| / max(|a|, |b|, 1e-6), and the max absolute
    one. A keyword missing from `written`, or a value null in one and not the other, counts as a difference of inf."""
    joined = rescored.merge(written, on="keyword_id", how="left", suffixes=("", "_written"), indicator=True)
    missing = (joined["_merge"] != "both").to_numpy()
    rows = {}
    for column in PARITY_COLUMNS:
        a = joined[f"{column}_written"].to_numpy(dtype="float64")
        b = joined[column].to_numpy(dtype="float64")
        both_null = np.isnan(a) & np.isnan(b)
        with np.errstate(invalid="ignore"):
            absolute = np.where(both_null, 0.0, np.abs(a - b))
            relative = absolute / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-6)
        relative = np.where(missing | (np.isnan(a) != np.isnan(b)), np.inf, np.where(both_null, 0.0, relative))
        if not len(relative):
            continue
        rows[column] = {
            "count": len(relative),
            "mean": float(np.mean(relative)),
            "p50": float(np.percentile(relative, 50)),
            "p99": float(np.percentile(relative, 99)),
            "max": float(np.max(relative)),
            "max_absolute": float(np.nanmax(np.where(missing, np.inf, absolute))),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
