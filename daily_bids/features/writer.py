"""Keyword features written to the warehouse a keyword shard at a time: what the `keyword_features` asset runs.

Each shard of consecutive keyword_ids reads only its rows of the reports (Parquet filters, with row groups outside
the range skipped). A day is made in two passes over the shards, because the ratio priors pool every keyword of an
ad group, a campaign and the account, across shards:

1. each shard's rolling state moves a day on and is written as its rows of the day's state partition; only what the
   priors need of it stays in memory (each keyword's campaign, ad group and 28-day sums);
2. the priors are computed from every shard's, then each shard's state is read back with its lags, and its features
   are written.

So a step holds the priors' inputs of every keyword, which are compact, plus one shard's state, reports and
features: memory is bounded by the shard size, not the account size, a first run's 28-day rebuild included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.features.keyword_features import (
    KEYWORDS_PER_SHARD,
    LEAVING_COLUMNS,
    DayReader,
    KeywordRange,
    RollingState,
    advance_day,
    consecutive,
    days_of_history,
    keyword_shards,
    lags,
    prior_inputs,
    ratio_priors,
    rebuilding,
    rebuilt_state,
    shard_features,
)
from daily_bids.keyword_index import unique_keyword_ids
from daily_bids.progress import Progress, quiet
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse


@dataclass(frozen=True)
class FeatureRun:
    rows: int  # feature rows written, over every day
    days: int
    shards: int
    state_reused: bool  # False: the state was rebuilt from the 28 report days before the first day


def write_features(
    store: Warehouse,
    reports_table: str,
    features_table: str,
    days: list[dt.date],
    history_start: dt.date,
    log: Callable[[str], None] | None = None,
    keywords_per_shard: int = KEYWORDS_PER_SHARD,
) -> FeatureRun:
    """Write the features and the rolling state of consecutive `days`: staged, and replacing the stored days only
    once every day is written.
    Reports before `history_start` (the account's first report day) are read as no rows.

    With `log`, progress lines say the feature rows written of the range's, the rate and the time left. A day has a
    row per keyword known by then: the total starts as today's keywords times the days, and is set again as each
    day's keywords are known (new keywords, or a rebuilt state's older ones), so the last day's lines are exact."""
    days = consecutive(days)
    previous = days[0] - dt.timedelta(days=1)
    state_reused = store.partition_exists(tables.FEATURE_STATE, previous)
    ids = known_keyword_ids(store, reports_table, days[0], history_start, state_reused)
    shards = keyword_shards(ids, keywords_per_shard)
    readers = [report_reader(store, reports_table, history_start, shard) for shard in shards]
    if not state_reused:
        readers = [rebuilding(read, days[0]) for read in readers]
        if log:
            log(f"no rolling state for {previous}: rebuilding it from the 28 report days before {days[0]}")
    rows = 0
    progress = Progress(f"features {days_span(days)}", len(ids) * len(days), log or quiet)
    log_every = max(1, len(days) // 10)  # about ten lines of days however long the range
    with store.staging() as staged:

        def state_before(day: dt.date, shard: int) -> RollingState:
            if day > days[0]:  # the state this run wrote for the day before
                frame = staged.read_partition(tables.FEATURE_STATE, day - dt.timedelta(days=1), shards[shard])
                return RollingState.from_frame(day - dt.timedelta(days=1), frame.drop(columns="date"))
            if state_reused:
                return stored_state(store, previous, shards[shard])
            return rebuilt_state(day, readers[shard])

        for number, day in enumerate(days):
            # 1: every shard's state a day on, written; only the priors' inputs are kept.
            inputs = []
            with staged.partition_writer(tables.FEATURE_STATE, day) as state_out:
                for shard, read in enumerate(readers):
                    state, _ = advance_day(state_before(day, shard), read)
                    state_out.write(state.to_frame())
                    inputs.append(prior_inputs(state))
            # The days left have at least this day's keywords: the state keeps every keyword it has seen.
            progress.total = rows + state_out.rows * (len(days) - number)
            if log and ((number + 1) % log_every == 0 or day == days[-1]):
                log(f"features {number + 1}/{len(days)}: {day}, {state_out.rows:,} keywords in {len(shards)} shard(s)")
            priors = ratio_priors(inputs)
            del inputs
            # 2: each shard's state read back, with its lags and its rows of the priors, makes its features.
            end = 0  # the priors' rows follow the keywords, shard by shard
            with staged.partition_writer(features_table, day) as features_out:
                for shard, read in enumerate(readers):
                    frame = staged.read_partition(tables.FEATURE_STATE, day, shards[shard]).drop(columns="date")
                    state = RollingState.from_frame(day, frame)
                    lag_1, lag_7 = lags(state, read, read(day, LEAVING_COLUMNS))
                    mine = slice(end, end + len(state.keywords))
                    end = mine.stop
                    shard_priors = {pair: values[mine] for pair, values in priors.items()}
                    features = shard_features(state, lag_1, lag_7, shard_priors, days_of_history(day, history_start))
                    features_out.write(features)
                    progress.advance(len(features))
            rows += features_out.rows
        # Published once every day is written: a range that fails on a later day replaces none of its days.
        staged.publish(features_table)
        staged.publish(tables.FEATURE_STATE)
    return FeatureRun(rows, len(days), len(shards), state_reused)


def report_reader(store: Warehouse, reports_table: str, history_start: dt.date, shard: KeywordRange) -> DayReader:
    """A shard's rows of the reports, by day; no rows before `history_start`, the account's first report day."""

    def read(day: dt.date, columns: list[str] | None) -> pd.DataFrame | None:
        if day < history_start:
            return None
        return store.read_partitions(reports_table, [day], columns, keyword_range=shard)

    return read


def stored_state(store: Warehouse, day: dt.date, shard: KeywordRange) -> RollingState:
    """A shard's rolling state as of `day`, from the stored state partition."""
    frame = store.read_partitions(tables.FEATURE_STATE, [day], keyword_range=shard).drop(columns="date")
    return RollingState.from_frame(day, frame)


def known_keyword_ids(
    store: Warehouse, reports_table: str, first: dt.date, history_start: dt.date, state_reused: bool
) -> np.ndarray:
    """The keywords known on `first`, each once and sorted: the stored state's of the day before and the day's
    report's (IDs only). The shard bounds of a range are drawn from them."""
    known = [store.read_partitions(reports_table, [first], ["keyword_id"])] if first >= history_start else []
    if state_reused:
        known.append(store.read_partitions(tables.FEATURE_STATE, [first - dt.timedelta(days=1)], ["keyword_id"]))
    # int64 throughout: a float would round the IDs of a criterion's later ad groups (2**62 and up) together.
    ids = [frame["keyword_id"].to_numpy(dtype="int64") for frame in known]
    return unique_keyword_ids(np.concatenate([*ids, np.zeros(0, "int64")]))


def days_span(days: list[dt.date]) -> str:
    """A range of days in words: `2025-04-01`, or `2025-04-01 to 2025-04-03`."""
    return str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"
