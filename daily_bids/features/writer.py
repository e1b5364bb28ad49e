"""Keyword features written to the warehouse a keyword shard at a time: what the `keyword_features` asset runs.

Each shard of consecutive keyword_ids reads only its rows of the reports (Parquet filters, with row groups outside
the range skipped), so a step holds the rolling state and lags of every keyword, which are compact, plus one
shard's reports and features. That bounds memory by the shard size, not the account size: tens of millions of
keywords fit in a few GB, a first run's 28-day rebuild included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.features.keyword_features import (
    KEYWORDS_PER_SHARD,
    KeywordRange,
    RollingState,
    keyword_shards,
    roll_in_shards,
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
    days = sorted(days)
    previous = days[0] - dt.timedelta(days=1)
    state_reused = store.partition_exists(tables.FEATURE_STATE, previous)

    def read_report(day: dt.date, shard: KeywordRange, columns: list[str] | None) -> pd.DataFrame | None:
        return (
            None if day < history_start else store.read_partitions(reports_table, [day], columns, keyword_range=shard)
        )

    def state_of(shard: KeywordRange) -> RollingState:
        frame = store.read_partitions(tables.FEATURE_STATE, [previous], keyword_range=shard).drop(columns="date")
        return RollingState.from_frame(previous, frame)

    ids = known_keyword_ids(store, reports_table, days[0], history_start, state_reused)
    shards = keyword_shards(ids, keywords_per_shard)
    if log and not state_reused:
        log(f"no rolling state for {previous}: rebuilding it from the 28 report days before {days[0]}")
    rows = 0
    progress = Progress(f"features {days_span(days)}", len(ids) * len(days), log or quiet)
    with store.staging() as staged:
        for number, (day, day_features) in enumerate(
            roll_in_shards(days, read_report, shards, state_of if state_reused else None, log, history_start)
        ):
            # The days left have at least this day's keywords: the state keeps every keyword it has seen.
            progress.total = rows + day_features.keywords * (len(days) - number)
            with staged.partition_writer(features_table, day) as features_out:
                for frame in day_features.features():
                    features_out.write(frame)
                    progress.advance(len(frame))
            with staged.partition_writer(tables.FEATURE_STATE, day) as state_out:
                for state in day_features.states:
                    state_out.write(state.to_frame())
            rows += features_out.rows
        # Published once every day is written: a range that fails on a later day replaces none of its days.
        staged.publish(features_table)
        staged.publish(tables.FEATURE_STATE)
    return FeatureRun(rows, len(days), len(shards), state_reused)


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
