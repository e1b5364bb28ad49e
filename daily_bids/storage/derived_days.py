"""Days derived from a table's days and kept in the warehouse beside it, so that a step that reads weeks of a large
table for a small part of each day (the bid landscape's sample of keywords) reads each day whole only once.

    <root>/<table>/date=YYYY-MM-DD/<recipe>-<size>-<mtime>.parquet

`size` and `mtime` (nanoseconds) are those of the source day's file the day was derived from. A source day written
again since (another size or modification time) is derived again, and its files from the older file go once the new
one is written. Another recipe (another sample, other columns) derives every day again; a day keeps one file per
recipe, so a step whose recipe moves back and forth (an account near the size that halves its sample) reads both. A
file system that gives no modification time gets no file kept: every day is derived each time.

The one blind spot is a source day rewritten at the same size within the file system's time resolution (milliseconds
on a local disk, a second on S3) of the write it was derived from: it would keep the old derived day. The steps that
write a report day take longer than that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd
import pyarrow.fs as pafs

from daily_bids.storage.warehouse import Warehouse

DERIVED_SUFFIX = ".parquet"


@dataclass
class DerivedDays:
    """The days of `table`, each derived from the same day of `source` by the recipe `recipe` names."""

    store: Warehouse
    source: str
    table: str
    recipe: str  # letters, digits and "_": another recipe derives every day again
    derived_now: list[dt.date] = field(default_factory=list)  # the days `read` derived (not kept from before)

    def __post_init__(self) -> None:
        if not self.recipe.replace("_", "").isalnum():
            raise ValueError(f"a recipe is letters, digits and underscores, not {self.recipe!r}")

    def read(self, days: Iterable[dt.date], derive: Callable[[dt.date], pd.DataFrame]) -> dict[dt.date, pd.DataFrame]:
        """Each of `days` (days `source` has) derived: the kept frame where its source day is the file it was
        derived from, else `derive(day)`, which is kept for next time. A frame holds the columns `derive` gave,
        without the day's `date`."""
        days = sorted(set(days))
        sources = self.store.require_partitions(self.source, days)  # one listing: each day's size and mtime
        kept = self.store.files_by_day(self.table)
        frames = {}
        for day in days:
            name = self._file_name(sources[day])
            found = {other: info for other, info in kept.get(day, {}).items() if _source_of(other) is not None}
            if name is not None and name in found:
                try:
                    frames[day] = self.store.read_file(found[name])
                    continue
                except FileNotFoundError:  # another run derived the day again since the listing, and removed it
                    pass
            frames[day] = derive(day)
            self.derived_now.append(day)
            if name is not None:
                older = [info for other, info in found.items() if _source_of(other) != _source_of(name)]
                self._keep(day, name, frames[day], stale=older)
        return frames

    def _file_name(self, source: pafs.FileInfo) -> str | None:
        if source.mtime_ns is None:
            return None
        return f"{self.recipe}-{source.size}-{source.mtime_ns}{DERIVED_SUFFIX}"

    def _keep(self, day: dt.date, name: str, frame: pd.DataFrame, stale: list[pafs.FileInfo]) -> None:
        self.store.write_day_file(self.table, day, name, frame)
        for info in stale:  # derived from an older file of the source day
            try:
                self.store.fs.delete_file(info.path)
            except FileNotFoundError:  # another run removed it first
                continue


def _source_of(name: str) -> str | None:
    """The source file's size and mtime in a kept file's name (a recipe has no "-"); None for another file."""
    _, dash, source = name.partition("-")
    return source if dash and name.endswith(DERIVED_SUFFIX) else None
