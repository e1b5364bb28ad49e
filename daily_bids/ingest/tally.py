"""What the pieces of a report held, added up as they pass: a step that writes a large day piece by piece still says
how many rows each day had, from how many files, and the metrics' totals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from daily_bids.schema import METRIC_COLUMNS, as_day, numeric


@dataclass
class ReportTally:
    rows_per_day: dict[dt.date, int]
    source_files: set[str] = field(default_factory=set)
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(METRIC_COLUMNS, 0.0))

    @classmethod
    def of_days(cls, days: list[dt.date]) -> ReportTally:
        return cls(dict.fromkeys(days, 0))

    @property
    def rows(self) -> int:
        return sum(self.rows_per_day.values())

    def days_without_rows(self) -> list[dt.date]:
        return [day for day, rows in self.rows_per_day.items() if rows == 0]

    def add(self, piece: pd.DataFrame) -> None:
        # Counted as timestamps and only then made dates: a day's millions of rows as Python dates cost a second.
        for midnight, rows in as_day(piece["date"]).value_counts().items():
            day = midnight.date()
            self.rows_per_day[day] = self.rows_per_day.get(day, 0) + int(rows)
        if "source_file" in piece:
            self.source_files.update(piece["source_file"].dropna().unique())
        for column in METRIC_COLUMNS:
            self.totals[column] += float(np.nansum(numeric(piece[column])))
