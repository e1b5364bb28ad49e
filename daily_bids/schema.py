"""The keyword report's columns: one definition that the simulator, validation and the warehouse all use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Match types as Google Ads spells them in Ads Editor.
MATCH_TYPES: tuple[str, ...] = ("Exact", "Phrase", "Broad")


@dataclass(frozen=True)
class ReportColumn:
    name: str
    kind: str  # "date", "id", "text", "count" or "money"
    description: str
    required: bool = True

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("count", "money")


REPORT_COLUMNS: tuple[ReportColumn, ...] = (
    ReportColumn("date", "date", "Report day."),
    ReportColumn("keyword_id", "id", "The ad platform's keyword identifier; unique per day."),
    ReportColumn("keyword", "text", "Keyword text."),
    ReportColumn("campaign", "text", "Campaign name."),
    ReportColumn("ad_group", "text", "Ad group name."),
    ReportColumn("match_type", "text", "Exact, Phrase or Broad."),
    ReportColumn("impressions", "count", "Times the ad was shown."),
    ReportColumn("clicks", "count", "Clicks on the ad; never more than impressions."),
    ReportColumn("cost", "money", "Spend on clicks, in account currency."),
    ReportColumn("conversions", "count", "Conversions attributed to the clicks; never more than clicks."),
    ReportColumn("conversion_value", "money", "Value of those conversions, in account currency."),
)

REPORT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS)
KEY_COLUMNS: tuple[str, ...] = ("date", "keyword_id")
DIMENSION_COLUMNS: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS if c.kind == "text")
METRIC_COLUMNS: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS if c.is_numeric)

_PANDAS_DTYPES = {"date": "datetime64[ns]", "id": "int64", "text": "string", "count": "int64", "money": "float64"}


def report_dtypes() -> dict[str, str]:
    return {c.name: _PANDAS_DTYPES[c.kind] for c in REPORT_COLUMNS}


def empty_report() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in report_dtypes().items()})


def as_day(values) -> pd.Series:
    """Dates as midnight timestamps, the one representation of a day used in every frame."""
    return pd.to_datetime(pd.Series(values)).dt.normalize().astype("datetime64[ns]")


def conform_report(frame: pd.DataFrame) -> pd.DataFrame:
    """Column order and dtypes of the report contract; raises on a missing column."""
    missing = [name for name in REPORT_COLUMN_NAMES if name not in frame.columns]
    if missing:
        raise ValueError(f"keyword report is missing columns {missing}; expected {list(REPORT_COLUMN_NAMES)}")
    out = frame.loc[:, list(REPORT_COLUMN_NAMES)].copy()
    out["date"] = as_day(out["date"]).to_numpy()
    for name, dtype in report_dtypes().items():
        if name != "date":
            out[name] = out[name].astype(dtype)
    return out.reset_index(drop=True)


def is_integral(values: pd.Series) -> np.ndarray:
    return np.isclose(values.to_numpy(dtype="float64"), np.round(values.to_numpy(dtype="float64")))
