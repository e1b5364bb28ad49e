"""Keyword features: defined once in `FEATURES`, computed by `compute_features`.

Features in partition D describe each keyword as of the end of day D and are used to predict day D+1, so they may
read report days up to D and never later. A day without a report row for a keyword means the keyword had no
impressions that day: it counts as zero activity, not as missing data.

Counts and money amounts are scaled with log1p, a fixed transform that needs no fitting and so cannot leak. Ratios
(CTR, conversion rate, cost per click, value per conversion, value per click) are shrunk towards the ad group's ratio,
which is itself shrunk towards the campaign's and the account's, so that a keyword with little traffic borrows
strength from its neighbours.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.schema import DIMENSION_COLUMNS, METRIC_COLUMNS, as_day, numeric

LOOKBACK_DAYS = 28  # The longest window any feature reads, ending at the partition day.


@dataclass(frozen=True)
class FeatureDefinition:
    name: str
    description: str
    kind: str  # lag | rolling_sum | rolling_mean | smoothed_ratio | calendar | history
    source_columns: tuple[str, ...]
    window_days: int
    unit: str
    scaling: str = "none"  # none | log1p
    lag_days: int = 0  # for lags: 0 is the partition day itself (t-1 relative to the predicted day)
    prior_strength: float = 0.0  # for smoothed ratios: pseudo-denominator of the prior

    @property
    def version(self) -> str:
        """A hash of the definition: any change to how the feature is computed gives a new version."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]


def _metric_features() -> list[FeatureDefinition]:
    out = []
    for column in METRIC_COLUMNS:
        unit = "currency" if column in ("cost", "conversion_value") else "count"
        out += [
            FeatureDefinition(f"{column}_lag_1d", f"{column} on the partition day (t-1 for the predicted day)",
                              "lag", (column,), 1, unit, "log1p", lag_days=0),
            FeatureDefinition(f"{column}_lag_7d", f"{column} six days before the partition day (t-7)",
                              "lag", (column,), 7, unit, "log1p", lag_days=6),
        ]
        for window in (7, LOOKBACK_DAYS):
            out += [
                FeatureDefinition(f"{column}_sum_{window}d", f"total {column} over the last {window} days",
                                  "rolling_sum", (column,), window, unit, "log1p"),
                FeatureDefinition(f"{column}_mean_{window}d", f"mean daily {column} over the last {window} days",
                                  "rolling_mean", (column,), window, unit, "log1p"),
            ]
    return out


_RATIOS = (
    # name, numerator, denominator, prior strength (in denominator units), unit, description
    ("ctr", "clicks", "impressions", 200.0, "ratio", "click-through rate"),
    ("conversion_rate", "conversions", "clicks", 60.0, "ratio", "conversions per click"),
    ("cost_per_click", "cost", "clicks", 10.0, "currency", "average cost per click"),
    ("value_per_conversion", "conversion_value", "conversions", 3.0, "currency", "conversion value per conversion"),
    ("value_per_click", "conversion_value", "clicks", 60.0, "currency", "conversion value per click"),
)


def _ratio_features() -> list[FeatureDefinition]:
    return [
        FeatureDefinition(f"{name}_28d", f"{text} over the last 28 days, shrunk towards the ad group's", "smoothed_ratio",
                          (numerator, denominator), LOOKBACK_DAYS, unit, prior_strength=strength)
        for name, numerator, denominator, strength, unit, text in _RATIOS
    ] + [
        FeatureDefinition(f"ad_group_{name}_28d", f"the ad group's {text} over the last 28 days (the prior)",
                          "group_ratio", (numerator, denominator), LOOKBACK_DAYS, unit, prior_strength=strength)
        for name, numerator, denominator, strength, unit, text in _RATIOS
    ]


FEATURES: tuple[FeatureDefinition, ...] = (
    *_metric_features(),
    *_ratio_features(),
    FeatureDefinition("target_day_of_week", "day of week of the predicted day (0 = Monday)", "calendar", ("date",), 1, "day"),
    FeatureDefinition("target_day_of_year_sin", "sine of the predicted day's position in the year", "calendar", ("date",), 1, "ratio"),
    FeatureDefinition("target_day_of_year_cos", "cosine of the predicted day's position in the year", "calendar", ("date",), 1, "ratio"),
    FeatureDefinition("active_days_28d", "days with a report row (impressions > 0) in the last 28 days", "history",
                      ("impressions",), LOOKBACK_DAYS, "days"),
    FeatureDefinition("history_days", "days since the keyword's first report row, at most 28", "history",
                      ("impressions",), LOOKBACK_DAYS, "days"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME = {f.name: f for f in FEATURES}


def feature_versions() -> dict[str, str]:
    return {f.name: f.version for f in FEATURES}


def feature_set_version() -> str:
    """One hash over every feature's version."""
    return hashlib.sha256("".join(f.version for f in FEATURES).encode()).hexdigest()[:12]


def compute_features(history: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """Features for each of `days` from validated report rows `history`.

    `history` must hold the 28 report days ending on each of `days` (or those of them that exist); rows dated after
    max(days) are ignored, which is what keeps features point-in-time correct. A metric the source did not report
    (null) makes every window that contains it null: unknown, not zero.
    """
    days = sorted(days)
    start = pd.Timestamp(days[0] - dt.timedelta(days=LOOKBACK_DAYS - 1))
    end = pd.Timestamp(days[-1])
    dates = as_day(history["date"])
    history = history.loc[((dates >= start) & (dates <= end)).to_numpy()].copy()
    history["date"] = as_day(history["date"]).to_numpy()
    if history.empty:
        return _empty_feature_table()

    keyword_ids = np.unique(history["keyword_id"].to_numpy())
    rows = np.searchsorted(keyword_ids, history["keyword_id"].to_numpy())
    cols = ((history["date"] - start).dt.days).to_numpy()
    span = (end - start).days + 1
    # Dense keyword × day matrices, zero where a keyword had no row: absent means no activity. Cumulative sums make
    # every window sum two lookups; unreported (null) cells are counted separately so a window over them is null.
    cumulative = {"active": _cumulative(len(keyword_ids), span, rows, cols, np.ones(len(history)))}
    for column in METRIC_COLUMNS:
        values = numeric(history[column])
        cumulative[column] = _cumulative(len(keyword_ids), span, rows, cols, np.nan_to_num(values, nan=0.0))
        cumulative[column + ":unknown"] = _cumulative(len(keyword_ids), span, rows, cols, np.isnan(values))

    history = history.sort_values(["date", "keyword_id"])
    out = []
    for day in days:
        j = (pd.Timestamp(day) - start).days  # column of the partition day
        frame = _features_for_day(day, j, keyword_ids, cumulative, history)
        out.append(frame)
    return pd.concat(out, ignore_index=True) if out else _empty_feature_table()


def _cumulative(n_keywords: int, span: int, rows, cols, values) -> np.ndarray:
    matrix = np.zeros((n_keywords, span), dtype="float64")
    matrix[rows, cols] = values
    return np.concatenate([np.zeros((n_keywords, 1)), np.cumsum(matrix, axis=1)], axis=1)


def _window_sum(cumulative: np.ndarray, j: int, window: int, lag: int = 0) -> np.ndarray:
    """Sum over the `window` days ending `lag` days before column j (clipped at the start of the data)."""
    stop = j - lag + 1
    return cumulative[:, max(stop, 0)] - cumulative[:, max(stop - window, 0)]


def _metric_window(cumulative: dict, column: str, j: int, window: int, lag: int = 0) -> np.ndarray:
    """Like `_window_sum`, but null where the window holds a day on which the source did not report `column`."""
    total = _window_sum(cumulative[column], j, window, lag)
    return np.where(_window_sum(cumulative[column + ":unknown"], j, window, lag) > 0, np.nan, total)


def _features_for_day(day, j, keyword_ids, cumulative, history) -> pd.DataFrame:
    active_28 = _window_sum(cumulative["active"], j, LOOKBACK_DAYS)
    present = active_28 > 0  # keywords with at least one report row in the window
    window_start = pd.Timestamp(day) - pd.Timedelta(days=LOOKBACK_DAYS - 1)
    in_window = history[(history["date"] >= window_start) & (history["date"] <= pd.Timestamp(day))]
    dimensions = in_window.drop_duplicates("keyword_id", keep="last").set_index("keyword_id")
    ids = keyword_ids[present]
    frame = dimensions.loc[ids, list(DIMENSION_COLUMNS)].reset_index()
    frame.insert(0, "date", pd.Timestamp(day))

    sums_28 = {c: _metric_window(cumulative, c, j, LOOKBACK_DAYS)[present] for c in METRIC_COLUMNS}
    values: dict[str, np.ndarray] = {}
    for feature in FEATURES:
        if feature.kind in ("lag", "rolling_sum", "rolling_mean"):
            (column,) = feature.source_columns
            window = 1 if feature.kind == "lag" else feature.window_days
            raw = _metric_window(cumulative, column, j, window, feature.lag_days)[present]
            values[feature.name] = raw / window if feature.kind == "rolling_mean" else raw
        elif feature.name == "active_days_28d":
            values[feature.name] = active_28[present]
        elif feature.name == "history_days":
            values[feature.name] = _days_since_first_row(cumulative["active"], j)[present]
    ratio_priors = _group_ratio_priors(frame, sums_28)
    for feature in FEATURES:
        if feature.kind == "group_ratio":
            values[feature.name] = ratio_priors[feature.source_columns]
        elif feature.kind == "smoothed_ratio":
            numerator, denominator = feature.source_columns
            values[feature.name] = _shrink(sums_28[numerator], sums_28[denominator],
                                           ratio_priors[feature.source_columns], feature.prior_strength)
    target = pd.Timestamp(day) + pd.Timedelta(days=1)
    angle = 2 * np.pi * target.day_of_year / 365.25
    values["target_day_of_week"] = np.full(len(ids), target.day_of_week)
    values["target_day_of_year_sin"] = np.full(len(ids), np.sin(angle))
    values["target_day_of_year_cos"] = np.full(len(ids), np.cos(angle))

    for feature in FEATURES:
        column = values[feature.name].astype("float64")
        frame[feature.name] = np.log1p(column) if feature.scaling == "log1p" else column
    return frame


def _days_since_first_row(cumulative_active: np.ndarray, j: int) -> np.ndarray:
    """Days from a keyword's first report row within the 28-day window to column j, counting both ends."""
    window_start = max(j - LOOKBACK_DAYS + 1, 0)
    seen_by = cumulative_active[:, window_start + 1 : j + 2] - cumulative_active[:, [window_start]]
    first_offset = np.argmax(seen_by > 0, axis=1)  # 0 where never seen; such keywords are not in the output
    return (j - window_start + 1) - first_offset


def _shrink(numerator, denominator, prior, strength):
    return (numerator + strength * prior) / (denominator + strength)


def _group_ratio_priors(frame: pd.DataFrame, sums: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Each keyword's ad-group ratio, shrunk to its campaign's, shrunk to the account's; null for unreported metrics."""
    totals = pd.DataFrame({"campaign": frame["campaign"].to_numpy(), "ad_group": frame["ad_group"].to_numpy(), **sums})
    priors = {}
    for _, numerator, denominator, strength, _, _ in _RATIOS:
        pair = totals[["campaign", "ad_group", numerator, denominator]]
        account_num, account_den = pair[numerator].sum(min_count=1), pair[denominator].sum(min_count=1)
        account = account_num / account_den if account_den > 0 else (0.0 if pd.notna(account_den) else np.nan)
        campaign_sums = _group_sums(pair, ["campaign"], numerator, denominator)
        campaign = _shrink(campaign_sums[numerator], campaign_sums[denominator], account, strength)
        ad_group_sums = _group_sums(pair, ["campaign", "ad_group"], numerator, denominator)
        priors[(numerator, denominator)] = _shrink(
            ad_group_sums[numerator], ad_group_sums[denominator], campaign, strength
        ).to_numpy()
    return priors


def _group_sums(pair: pd.DataFrame, keys: list[str], numerator: str, denominator: str) -> pd.DataFrame:
    """Per-row group totals of numerator and denominator; null where any member's value is null."""
    values = pair[[numerator, denominator]]
    groups = [pair[key] for key in keys]
    has_null = values.isna().groupby(groups, observed=True, sort=False).any()
    sums = values.groupby(groups, observed=True, sort=False).sum().where(~has_null)
    return pair[keys].merge(sums, left_on=keys, right_index=True, how="left")


def _empty_feature_table() -> pd.DataFrame:
    columns = {name: pd.Series(dtype="float64") for name in FEATURE_NAMES}
    keys = {"date": pd.Series(dtype="datetime64[ns]"), "keyword_id": pd.Series(dtype="int64")}
    keys |= {name: pd.Series(dtype="string") for name in DIMENSION_COLUMNS}
    return pd.DataFrame(keys | columns)
