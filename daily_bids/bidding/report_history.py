"""The validated report's history as the bid landscape and the bids' context read it: the few columns they need, a
day at a time. At 10M keywords, weeks of whole reports would not fit in memory.

The landscape learns from its sample of keywords over 64 report days. Each day's sampled rows are kept in the
warehouse (`_landscape_sample`, see `storage.derived_days`), so a morning reads one new report day whole, not 64:
at 10M keywords a report day is read in about 0.4 s, its kept sample in about 15 ms.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.bidding.landscape import (
    MAX_TRAINING_KEYWORDS,
    PANEL_COLUMNS,
    ReportForDay,
    in_training_sample,
    sample_halvings,
)
from daily_bids.storage import tables
from daily_bids.storage.derived_days import DerivedDays
from daily_bids.storage.warehouse import PARTITION_COLUMN, Warehouse, with_day

# The report columns the landscape and the bids' context read.
HISTORY_COLUMNS = ["keyword_id", *PANEL_COLUMNS]


def history_reader(store: Warehouse) -> ReportForDay:
    """A function giving one day's validated report (`HISTORY_COLUMNS`, those it carries), or None for a day without
    one."""

    def report_for(day: dt.date) -> pd.DataFrame | None:
        if not store.partition_exists(tables.VALIDATED_REPORT, day):
            return None
        return store.read_partitions(tables.VALIDATED_REPORT, [day], _carried(store, day))

    return report_for


def _carried(store: Warehouse, day: dt.date) -> list[str]:
    """The history columns a report day carries (an account's reports may lack the impression share or the bid)."""
    carried = set(store.partition_columns(tables.VALIDATED_REPORT, day))
    return [name for name in HISTORY_COLUMNS if name in carried]


@dataclass
class SampledHistory:
    reports: pd.DataFrame  # the sample's rows of every day read, with their `date`
    halvings: int  # the sample is one keyword in 2**halvings (`landscape.in_training_sample`)
    days: list[dt.date]  # the report days there were
    read_whole: list[dt.date]  # the days whose sample was not kept yet: read whole, then kept

    def describe(self) -> str:
        kept = len(self.days) - len(self.read_whole)
        keywords = f"one keyword in {2**self.halvings}" if self.halvings else "every keyword"
        return (
            f"{keywords} of {len(self.days)} report days ({kept} kept from earlier runs, "
            f"{len(self.read_whole)} read whole)"
        )


def sampled_history(
    store: Warehouse, last_day: dt.date, days: int, max_keywords: int = MAX_TRAINING_KEYWORDS
) -> SampledHistory:
    """The landscape's sample of keywords' rows (`HISTORY_COLUMNS`) in the validated reports of the `days` days through
    `last_day` that exist (a young deployment has fewer). The sample's size comes from the keywords reported on
    `last_day`, and each day's sampled rows are kept for the next runs."""
    existing = set(store.list_partitions(tables.VALIDATED_REPORT))
    if last_day not in existing:
        store.require_partitions(tables.VALIDATED_REPORT, [last_day])  # raises, naming the day
    present = sorted({last_day - dt.timedelta(days=back) for back in range(days)} & existing)
    # A validated day has a row per keyword reported.
    halvings = sample_halvings(store.partition_rows(tables.VALIDATED_REPORT, last_day), max_keywords)
    samples = DerivedDays(store, tables.VALIDATED_REPORT, tables.LANDSCAPE_SAMPLE, _recipe(halvings))

    def sampled(day: dt.date) -> pd.DataFrame:
        rows = store.read_partitions(tables.VALIDATED_REPORT, [day], _carried(store, day))
        keep = in_training_sample(rows["keyword_id"].to_numpy(dtype="int64"), halvings)
        return rows[keep].drop(columns=[PARTITION_COLUMN]).reset_index(drop=True)

    frames = [with_day(frame, day) for day, frame in samples.read(present, sampled).items()]
    return SampledHistory(pd.concat(frames, ignore_index=True), halvings, present, samples.derived_now)


def _recipe(halvings: int) -> str:
    """The kept samples' recipe: the share, and a digest of the columns and of the sample's hash on a few IDs. A
    change to any (a pandas whose hash differs, too) samples every day again, rather than mix two samples' days."""
    probe = in_training_sample(np.arange(1, 257, dtype="int64"), 4)
    digest = hashlib.sha256(repr((HISTORY_COLUMNS, np.flatnonzero(probe).tolist())).encode()).hexdigest()[:8]
    return f"one_in_{2**halvings}_{digest}"
