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
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids.storage.warehouse import (
    PARTITION_COLUMN,
    Warehouse,
    parquet_options,
    read_whole,
    to_arrow,
    to_pandas,
)

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
        kept = self._kept_files()
        frames = {}
        for day in days:
            name = self._file_name(sources[day])
            found = kept.get(day, {})
            if name is not None and name in found:
                try:
                    frames[day] = to_pandas(pq.read_table(pa.BufferReader(read_whole(self.store.fs, found[name].path))))
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

    def _day_folder(self, day: dt.date) -> str:
        return f"{self.table}/{PARTITION_COLUMN}={day.isoformat()}"

    def _kept_files(self) -> dict[dt.date, dict[str, pafs.FileInfo]]:
        """The files kept for each day, from one recursive listing (a temporary file's hidden name is left out)."""
        prefix = f"{self.store.path(self.table)}/{PARTITION_COLUMN}="
        selector = pafs.FileSelector(self.store.path(self.table), allow_not_found=True, recursive=True)
        kept: dict[dt.date, dict[str, pafs.FileInfo]] = {}
        for info in self.store.fs.get_file_info(selector):
            folder, _, name = info.path.rpartition("/")
            day = folder[len(prefix) :]
            if info.type != pafs.FileType.File or not folder.startswith(prefix) or "/" in day or name.startswith("."):
                continue
            if name.endswith(DERIVED_SUFFIX):
                kept.setdefault(dt.date.fromisoformat(day), {})[name] = info
        return kept

    def _keep(self, day: dt.date, name: str, frame: pd.DataFrame, stale: list[pafs.FileInfo]) -> None:
        table = to_arrow(frame)
        with self.store.byte_writer(f"{self._day_folder(day)}/{name}") as sink:
            pq.write_table(table, sink, **parquet_options(table))
        for info in stale:  # derived from an older file of the source day
            try:
                self.store.fs.delete_file(info.path)
            except FileNotFoundError:  # another run removed it first
                continue


def _source_of(name: str) -> str:
    """The source file's size and mtime in a kept file's name (a recipe has no "-")."""
    return name.split("-", 1)[1]
