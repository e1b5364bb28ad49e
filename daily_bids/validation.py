"""Row-level validation of keyword reports: which rows are trusted, which are rejected and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from daily_bids.schema import KEY_COLUMNS, METRIC_COLUMNS, conform_report


@dataclass(frozen=True)
class RowRule:
    description: str
    broken_by: Callable[[pd.DataFrame], pd.Series]


# Reason codes of rejected rows; the first rule a row breaks is its reason.
ROW_RULES: dict[str, RowRule] = {
    "negative_value": RowRule("a count or amount below zero", lambda r: (r[list(METRIC_COLUMNS)] < 0).any(axis=1)),
    "clicks_above_impressions": RowRule("more clicks than impressions", lambda r: r["clicks"] > r["impressions"]),
    "conversions_above_clicks": RowRule("more conversions than clicks", lambda r: r["conversions"] > r["clicks"]),
}


@dataclass
class ValidatedReport:
    valid: pd.DataFrame
    rejected: pd.DataFrame  # the rejected rows with a `reason` column
    duplicates_dropped: int


def validate_report(report: pd.DataFrame) -> ValidatedReport:
    """Types enforced, rows that break a rule set aside with their reason, duplicates resolved.

    Duplicate (date, keyword_id) rows: the last one in the report wins, since ad platforms append restatements.
    """
    report = conform_report(report)
    reason = pd.Series(pd.NA, index=report.index, dtype="string")
    for code, rule in ROW_RULES.items():
        reason = reason.mask(rule.broken_by(report).to_numpy() & reason.isna().to_numpy(), code)
    rejected = report.loc[reason.notna()].assign(reason=reason[reason.notna()])
    kept = report.loc[reason.isna()]
    deduplicated = kept.drop_duplicates(list(KEY_COLUMNS), keep="last")
    return ValidatedReport(
        valid=deduplicated.sort_values(list(KEY_COLUMNS)).reset_index(drop=True),
        rejected=rejected.reset_index(drop=True),
        duplicates_dropped=len(kept) - len(deduplicated),
    )
