"""Row-level validation of raw keyword reports: every raw row ends up validated or quarantined with a reason.

    raw rows = validated rows + quarantined rows      (for every partition; a check enforces it)

Duplicates of (date, keyword_id) are resolved last-wins, because ad platforms and exports append restatements after
the original rows; the superseded rows are quarantined with reason `duplicate_superseded`, so nothing disappears.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.schema import (
    COLUMNS_BY_NAME,
    DIMENSION_COLUMNS,
    KEY_COLUMNS,
    MATCH_TYPES,
    METRIC_COLUMNS,
    NOT_REPORTED,
    NUMERIC_COLUMNS,
    OUTLIER_FACTOR_DEFAULT,
    PAIR_RULES,
    RAW_COLUMN_NAMES,
    REPORT_COLUMNS,
    as_day,
    conform_raw,
    conform_report,
    numeric,
)

# The reason of a row replaced by a later row of its keyword and day: set aside, but the keyword's day is not lost.
SUPERSEDED = "duplicate_superseded"
# Reason codes of quarantined rows, in the order they are tested: a row's reason is the first it meets.
QUARANTINE_REASONS: dict[str, str] = {
    "unparseable_value": "a value could not be read as a number or date (detail names the column and value)",
    "missing_value": "a key, or a metric the source reports, is empty",
    "date_outside_partition": "the row's date is not a day of the partition it was delivered in",
    "out_of_range": "a number that is not finite, above its column's plausible daily maximum (`BIDS_PLAUSIBLE_MAX`), "
    "or a keyword ID below 1",
    "negative_value": "a count or amount below zero",
    **{rule.code: f"more {rule.smaller} than {rule.larger}" for rule in PAIR_RULES},
    "invalid_match_type": f"match type other than {', '.join(MATCH_TYPES)}",
    "outlier_vs_history": "a metric above `BIDS_OUTLIER_FACTOR` (5) times the keyword's own total of the previous 28 "
    "days, and above the column's floor",
    SUPERSEDED: "an earlier row of the same (date, keyword_id); the last one delivered is kept",
}
QUARANTINE_COLUMNS: tuple[str, ...] = (*RAW_COLUMN_NAMES, "reason", "detail")


@dataclass(frozen=True)
class Plausibility:
    """What a believable row looks like beyond the contract's types: each numeric column's plausible daily maximum,
    and how far above a keyword's own recent history a day may go."""

    maximum: dict[str, float]
    outlier_factor: float = OUTLIER_FACTOR_DEFAULT

    @classmethod
    def from_contract(
        cls, overrides: dict[str, float] | None = None, outlier_factor: float = OUTLIER_FACTOR_DEFAULT
    ) -> Plausibility:
        maximum = {c.name: c.plausible_max for c in REPORT_COLUMNS if c.plausible_max is not None}
        for column, value in (overrides or {}).items():
            if column not in maximum or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"plausible maximum {column!r}: {value!r}; expected a positive finite number for one "
                    f"of {sorted(maximum)}"
                )
            maximum[column] = float(value)
        if not math.isfinite(outlier_factor) or outlier_factor < 0:
            raise ValueError(f"outlier factor {outlier_factor!r}: expected 0 (off) or a positive finite number")
        return cls(maximum, outlier_factor)


@dataclass
class ValidatedReport:
    valid: pd.DataFrame
    quarantine: pd.DataFrame  # the raw rows set aside, with `reason` and `detail`
    unreported_metrics: list[str]  # optional metric columns the source left empty on every row of a day


def quarantine_reasons_markdown() -> str:
    """The README's table of quarantine reasons."""
    rows = ["| reason | the row has |", "|---|---|"]
    return "\n".join(rows + [f"| `{code}` | {text} |" for code, text in QUARANTINE_REASONS.items()])


def normalize_match_type(values: pd.Series) -> pd.Series:
    """`exact match`, `EXACT`, `Exact` → `Exact`; anything else is left for the match-type rule to reject.
    Works on the distinct values only: a report has millions of rows but a handful of spellings."""
    codes, spellings = pd.factorize(values.astype("string"), use_na_sentinel=True)
    normalized = (
        pd.Series(spellings, dtype="string")
        .str.strip()
        .str.replace(r"\s+match$", "", case=False, regex=True)
        .str.title()
    )
    lookup = np.append(normalized.to_numpy(dtype=object), pd.NA)  # code -1 (a null) picks the trailing NA
    return pd.Series(lookup[codes], index=values.index, dtype="string")


def validate_report(
    raw: pd.DataFrame,
    days: list[dt.date],
    plausibility: Plausibility | None = None,
    trailing_totals: pd.DataFrame | None = None,
) -> ValidatedReport:
    """Split `raw` into validated rows and the quarantine. `trailing_totals` (keyword_id and each metric's total over
    the 28 days before `days`) is what the outlier rule compares against; without it the rule is skipped."""
    plausibility = plausibility or Plausibility.from_contract()
    raw = conform_raw(raw)
    raw["match_type"] = normalize_match_type(raw["match_type"])
    unreported = _unreported_metrics(raw)
    reason = pd.Series(pd.NA, index=raw.index, dtype="string")
    detail = pd.Series(pd.NA, index=raw.index, dtype="string")

    def flag(code: str, broken, why=None) -> None:
        if code not in QUARANTINE_REASONS:  # the table above is the one list of codes (and the README's)
            raise KeyError(f"undocumented quarantine reason {code!r}")
        broken = np.asarray(broken, dtype=bool) & reason.isna().to_numpy()
        reason[broken] = code
        if why is not None:
            detail[broken] = why[broken] if isinstance(why, pd.Series) else why

    flag("unparseable_value", raw["parse_errors"].notna().to_numpy(), raw["parse_errors"])
    for name in ("date", "keyword_id", *NUMERIC_COLUMNS):
        if name in unreported.columns:
            empty = raw[name].isna().to_numpy() & ~unreported[name].to_numpy()
        else:
            empty = raw[name].isna().to_numpy()
        flag("missing_value", empty, f"{name} is empty")
    in_partition = as_day(raw["date"]).isin([pd.Timestamp(d) for d in days]).to_numpy()
    flag("date_outside_partition", ~in_partition, "date " + raw["date"].astype("string"))
    for name, maximum in plausibility.maximum.items():
        values = numeric(raw[name])
        with np.errstate(invalid="ignore"):
            beyond = np.isinf(values) | (values > maximum) | ((values < 1) if name == "keyword_id" else False)
        flag("out_of_range", beyond, f"{name} = " + raw[name].astype("string") + f" (plausible: up to {maximum:g})")
    for name in NUMERIC_COLUMNS:
        flag("negative_value", numeric(raw[name]) < 0, f"{name} < 0")
    for rule in PAIR_RULES:
        flag(rule.code, numeric(raw[rule.smaller]) > numeric(raw[rule.larger]), f"{rule.smaller} > {rule.larger}")
    bad_match = raw["match_type"].notna().to_numpy() & ~raw["match_type"].isin(MATCH_TYPES).to_numpy()
    flag("invalid_match_type", bad_match, "match type " + raw["match_type"].astype("string"))
    if trailing_totals is not None and plausibility.outlier_factor > 0:
        history = trailing_totals.drop_duplicates("keyword_id").set_index("keyword_id")
        for name in METRIC_COLUMNS:
            total = history[name].reindex(numeric(raw["keyword_id"])).to_numpy(dtype="float64")
            limit = np.maximum(plausibility.outlier_factor * np.nan_to_num(total), COLUMNS_BY_NAME[name].outlier_floor)
            flag(
                "outlier_vs_history",
                numeric(raw[name]) > limit,
                f"{name} = "
                + raw[name].astype("string")
                + " against a 28-day total of "
                + pd.Series(np.nan_to_num(total), index=raw.index).round(2).astype("string"),
            )

    candidates = raw[reason.isna().to_numpy()]
    superseded = candidates.duplicated(list(KEY_COLUMNS), keep="last")
    superseded_index = candidates.index[superseded.to_numpy()]
    flag(SUPERSEDED, raw.index.isin(superseded_index), "a later row of the same date and keyword_id")

    kept = raw[reason.isna().to_numpy()].copy()
    for name in DIMENSION_COLUMNS:
        kept[name] = kept[name].fillna(NOT_REPORTED)
    valid = conform_report(kept).sort_values(list(KEY_COLUMNS)).reset_index(drop=True)
    quarantine = raw[reason.notna().to_numpy()].assign(reason=reason[reason.notna()], detail=detail[reason.notna()])
    return ValidatedReport(
        valid=valid,
        quarantine=quarantine.loc[:, list(QUARANTINE_COLUMNS)].reset_index(drop=True),
        unreported_metrics=sorted(name for name in unreported.columns if unreported[name].all()),
    )


def _unreported_metrics(raw: pd.DataFrame) -> pd.DataFrame:
    """Per row: True for each optional metric that is null on every row of that row's day (not reported)."""
    optional = [name for name in NUMERIC_COLUMNS if not COLUMNS_BY_NAME[name].required]
    empty_all_day = raw[optional].isna().groupby(as_day(raw["date"]).to_numpy()).transform("all")
    return empty_all_day.fillna(False).astype(bool)
