"""Keyword features: defined once in `FEATURES`, computed by `compute_features`.

Features in partition D describe each keyword as of the end of day D and are used to predict day D+1, so they may
read report days up to D and never later. A day without a report row for a keyword means the keyword had no
impressions that day: it counts as zero activity, not as missing data. Days before the account's history starts
(its first report) are not known to have had no activity, so a rolling mean averages over the days of history it
has when they are fewer than its window.

Counts and money amounts are scaled with log1p, a fixed transform that needs no fitting and so cannot leak. Ratios
(CTR, conversion rate, cost per click, value per conversion, value per click) are shrunk towards the ad group's ratio,
which is itself shrunk towards the campaign's and the account's, so that a keyword with little traffic borrows
strength from its neighbours.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.keyword_index import unique_keyword_ids
from daily_bids.schema import DIMENSION_COLUMNS, METRIC_COLUMNS, NOT_REPORTED, as_day, numeric

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
    owner: str = "bidding-data-science"
    tags: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """A hash of the definition: any change to how the feature is computed gives a new version."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]

    @property
    def transformation(self) -> str:
        """How the value is computed, in one line (shown in the catalog)."""
        first, last = self.source_columns[0], self.source_columns[-1]
        if self.kind == "lag":
            text = f"{first} on day D-{self.lag_days}"
        elif self.kind == "rolling_sum":
            text = f"sum of {first} over days D-{self.window_days - 1}..D (absent day = 0)"
        elif self.kind == "rolling_mean":
            text = (
                f"sum of {first} over days D-{self.window_days - 1}..D, / {self.window_days} (or / the days of the "
                "account's history, when fewer)"
            )
        elif self.kind == "smoothed_ratio":
            text = (
                f"(Σ{first} + {self.prior_strength:g}·prior) / (Σ{last} + {self.prior_strength:g}) over 28 days; "
                f"prior = the ad group's ratio"
            )
        elif self.kind == "group_ratio":
            text = (
                f"ad group's Σ{first} / Σ{last} over 28 days, shrunk to the campaign's and the account's; each "
                f"keyword's {first} capped at the account's {PRIOR_CAP_QUANTILE:.0%} quantile of {first}/{last}"
            )
        elif self.kind == "calendar":
            text = "from the predicted day D+1"
        else:
            text = "from the 28-day mask of days with a report row"
        return f"log1p({text})" if self.scaling == "log1p" else text


def _metric_features() -> list[FeatureDefinition]:
    out = []
    for column in METRIC_COLUMNS:
        unit = "currency" if column in ("cost", "conversion_value") else "count"
        out += [
            FeatureDefinition(
                f"{column}_lag_1d",
                f"{column} on the partition day (t-1 for the predicted day)",
                "lag",
                (column,),
                1,
                unit,
                "log1p",
                lag_days=0,
                tags=("lag", column),
            ),
            FeatureDefinition(
                f"{column}_lag_7d",
                f"{column} six days before the partition day (t-7)",
                "lag",
                (column,),
                7,
                unit,
                "log1p",
                lag_days=6,
                tags=("lag", column),
            ),
        ]
        for window in (7, LOOKBACK_DAYS):
            out += [
                FeatureDefinition(
                    f"{column}_sum_{window}d",
                    f"total {column} over the last {window} days",
                    "rolling_sum",
                    (column,),
                    window,
                    unit,
                    "log1p",
                    tags=("rolling", column),
                ),
                FeatureDefinition(
                    f"{column}_mean_{window}d",
                    f"mean daily {column} over the last {window} days",
                    "rolling_mean",
                    (column,),
                    window,
                    unit,
                    "log1p",
                    tags=("rolling", column),
                ),
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
        FeatureDefinition(
            f"{name}_28d",
            f"{text} over the last 28 days, shrunk towards the ad group's",
            "smoothed_ratio",
            (numerator, denominator),
            LOOKBACK_DAYS,
            unit,
            prior_strength=strength,
            tags=("ratio", "smoothed", name),
        )
        for name, numerator, denominator, strength, unit, text in _RATIOS
    ] + [
        FeatureDefinition(
            f"ad_group_{name}_28d",
            f"the ad group's {text} over the last 28 days (the prior; one "
            "keyword cannot move it beyond its account's usual ratios)",
            "group_ratio",
            (numerator, denominator),
            LOOKBACK_DAYS,
            unit,
            prior_strength=strength,
            tags=("ratio", "prior", "ad group", name),
        )
        for name, numerator, denominator, strength, unit, text in _RATIOS
    ]


FEATURES: tuple[FeatureDefinition, ...] = (
    *_metric_features(),
    *_ratio_features(),
    FeatureDefinition(
        "target_day_of_week",
        "day of week of the predicted day (0 = Monday)",
        "calendar",
        ("date",),
        1,
        "day",
        tags=("calendar", "weekly season"),
    ),
    FeatureDefinition(
        "target_day_of_year_sin",
        "sine of the predicted day's position in the year",
        "calendar",
        ("date",),
        1,
        "ratio",
        tags=("calendar", "yearly season"),
    ),
    FeatureDefinition(
        "target_day_of_year_cos",
        "cosine of the predicted day's position in the year",
        "calendar",
        ("date",),
        1,
        "ratio",
        tags=("calendar", "yearly season"),
    ),
    FeatureDefinition(
        "active_days_28d",
        "days with a report row (impressions > 0) in the last 28 days",
        "history",
        ("impressions",),
        LOOKBACK_DAYS,
        "days",
        tags=("history", "activity"),
    ),
    FeatureDefinition(
        "history_days",
        "days since the keyword's first report row within the last 28 days (cold start below 7)",
        "history",
        ("impressions",),
        LOOKBACK_DAYS,
        "days",
        tags=("history", "cold start"),
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME = {f.name: f for f in FEATURES}


def feature_versions() -> dict[str, str]:
    return {f.name: f.version for f in FEATURES}


def feature_set_version() -> str:
    """One hash over every feature's version."""
    return hashlib.sha256("".join(f.version for f in FEATURES).encode()).hexdigest()[:12]


# ---- computation: a compact rolling state per keyword ----------------------------------------------------------------
# The state as of day D holds, per keyword seen in the last 28 days: 28-bit masks of the days with a report row and of
# the days each metric was not reported (bit i = day D-i), the 7- and 28-day sums of every metric, and the latest
# dimensions. The next day's state needs only that state and the reports of D+1 (entering both windows), D-6 and
# D-27 (leaving them), so a day costs in proportion to the number of keywords, never to the length of the history.
WINDOW_BITS = (1 << LOOKBACK_DAYS) - 1
WEEK_BITS = (1 << 7) - 1
# Priors cap each keyword's ratio at this quantile of the account's keyword ratios (robust to one wild keyword).
PRIOR_CAP_QUANTILE = 0.99
ReportForDay = Callable[[dt.date], "pd.DataFrame | None"]  # None: a day before the data starts (no rows, no error)
# Keywords are computed in shards of consecutive keyword_id: [low, high), None for an open end.
KeywordRange = tuple["int | None", "int | None"]
# One shard's report of a day: (day, columns or None for all) → its keywords' rows, or None before the data starts.
DayReader = Callable[[dt.date, "list[str] | None"], "pd.DataFrame | None"]
LEAVING_COLUMNS = ["keyword_id", *METRIC_COLUMNS]  # what a report day is read for again once it has entered
# Keywords per shard: a shard's reports, features and their Parquet encoding stay around 1.5 GB.
KEYWORDS_PER_SHARD = 1_000_000


def keyword_shards(keyword_ids: np.ndarray, keywords_per_shard: int = KEYWORDS_PER_SHARD) -> list[KeywordRange]:
    """Consecutive keyword_id ranges holding about `keywords_per_shard` of these keywords each. The first and last
    are open-ended, so every keyword, including tomorrow's new ones, falls in exactly one."""
    ids = unique_keyword_ids(keyword_ids)
    count = max(1, -(-len(ids) // keywords_per_shard))
    bounds = [None, *(int(ids[len(ids) * i // count]) for i in range(1, count)), None]
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass
class RollingState:
    day: dt.date
    keywords: pd.DataFrame  # keyword_id (sorted) and dimension columns
    active: np.ndarray  # uint32 masks
    unknown: dict[str, np.ndarray]  # metric -> uint32 masks of days the metric was not reported
    sum_7d: dict[str, np.ndarray]
    sum_28d: dict[str, np.ndarray]

    @classmethod
    def empty(cls, day: dt.date) -> RollingState:
        none = np.zeros(0, dtype="uint32")
        keywords = pd.DataFrame(
            {"keyword_id": pd.Series(dtype="int64"), **{d: pd.Series(dtype="string") for d in DIMENSION_COLUMNS}}
        )
        zeros = {m: np.zeros(0) for m in METRIC_COLUMNS}
        return cls(day, keywords, none, {m: none for m in METRIC_COLUMNS}, dict(zeros), dict(zeros))

    def to_frame(self) -> pd.DataFrame:
        frame = self.keywords.copy()
        frame["active_mask"] = self.active.astype("int64")
        for m in METRIC_COLUMNS:
            frame[f"{m}_unknown_mask"] = self.unknown[m].astype("int64")
            frame[f"{m}_sum_7d"] = self.sum_7d[m]
            frame[f"{m}_sum_28d"] = self.sum_28d[m]
        return frame

    @classmethod
    def from_frame(cls, day: dt.date, frame: pd.DataFrame) -> RollingState:
        """The state stored by `to_frame`. A state stored before a text column joined the contract lacks it: it was
        not reported, except `criterion_id`, which was the keyword_id itself then. So a warehouse upgrades in place,
        without a backfill of its features."""
        keywords = frame[["keyword_id", *(name for name in DIMENSION_COLUMNS if name in frame)]].reset_index(drop=True)
        for name in DIMENSION_COLUMNS:
            if name not in keywords:
                keywords[name] = (
                    keywords["keyword_id"].astype("int64").astype("string")
                    if name == "criterion_id"
                    else pd.Series(NOT_REPORTED, index=keywords.index, dtype="string")
                )
        return cls(
            day=day,
            keywords=keywords.loc[:, ["keyword_id", *DIMENSION_COLUMNS]],
            active=frame["active_mask"].to_numpy(dtype="uint32"),
            unknown={m: frame[f"{m}_unknown_mask"].to_numpy(dtype="uint32") for m in METRIC_COLUMNS},
            sum_7d={m: frame[f"{m}_sum_7d"].to_numpy(dtype="float64") for m in METRIC_COLUMNS},
            sum_28d={m: frame[f"{m}_sum_28d"].to_numpy(dtype="float64") for m in METRIC_COLUMNS},
        )


def _aligned(report: pd.DataFrame | None, keyword_ids: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(present, values by metric) of `report` rows aligned to sorted `keyword_ids`; absent rows are zero."""
    present = np.zeros(len(keyword_ids), dtype=bool)
    values = {m: np.zeros(len(keyword_ids)) for m in METRIC_COLUMNS}
    if report is None or report.empty:
        return present, values
    position = np.searchsorted(keyword_ids, report["keyword_id"].to_numpy())
    inside = position < len(keyword_ids)
    inside[inside] = keyword_ids[position[inside]] == report["keyword_id"].to_numpy()[inside]
    present[position[inside]] = True
    for m in METRIC_COLUMNS:
        values[m][position[inside]] = numeric(report[m])[inside]
    return present, values


def advance(
    state: RollingState,
    entering: pd.DataFrame | None,
    leaving_week: pd.DataFrame | None,
    leaving_window: pd.DataFrame | None,
) -> RollingState:
    """The state one day later: `entering` is that day's report, `leaving_week` the report 7 days before it and
    `leaving_window` the report 28 days before it (None where there was none)."""
    day = state.day + dt.timedelta(days=1)
    old_ids = state.keywords["keyword_id"].to_numpy()
    new_ids = entering["keyword_id"].to_numpy() if entering is not None else np.zeros(0, dtype="int64")
    # Both id arrays are sorted and unique, so pandas merges them in linear time (np.union1d would re-sort).
    keyword_ids = pd.Index(old_ids).union(pd.Index(new_ids)).to_numpy(dtype="int64")
    carried = np.searchsorted(keyword_ids, old_ids)

    def carry(values: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros(len(keyword_ids), dtype=dtype)
        out[carried] = values
        return out

    present, today = _aligned(entering, keyword_ids)
    _, week_ago = _aligned(leaving_week, keyword_ids)
    _, window_ago = _aligned(leaving_window, keyword_ids)
    active = ((carry(state.active, "uint32") << 1) | present) & WINDOW_BITS
    unknown, sum_7d, sum_28d = {}, {}, {}
    for m in METRIC_COLUMNS:
        missing = present & np.isnan(today[m])
        unknown[m] = ((carry(state.unknown[m], "uint32") << 1) | missing) & WINDOW_BITS
        entered = np.nan_to_num(today[m])
        # Sums of cents and counts: rounding to 1e-6 keeps the running sums exact instead of drifting.
        sum_7d[m] = np.round(carry(state.sum_7d[m], "float64") + entered - np.nan_to_num(week_ago[m]), 6)
        sum_28d[m] = np.round(carry(state.sum_28d[m], "float64") + entered - np.nan_to_num(window_ago[m]), 6)

    keep = active > 0  # a keyword with no row in 28 days leaves the state (its sums are all zero by then)
    # Dimensions: today's row where the keyword has one, else yesterday's; one vectorized take per column.
    old_dims = state.keywords[list(DIMENSION_COLUMNS)].reset_index(drop=True)
    new_dims = (
        entering[list(DIMENSION_COLUMNS)].astype("string").reset_index(drop=True)
        if entering is not None
        else old_dims.iloc[0:0]
    )
    source = np.empty(len(keyword_ids), dtype="int64")
    source[carried] = np.arange(len(old_ids))
    source[np.searchsorted(keyword_ids, new_ids)] = len(old_ids) + np.arange(len(new_ids))
    dims = pd.concat([old_dims, new_dims], ignore_index=True).take(source[keep]).reset_index(drop=True)
    dims.insert(0, "keyword_id", keyword_ids[keep])
    return RollingState(
        day=day,
        keywords=dims,
        active=active[keep],
        unknown={m: v[keep] for m, v in unknown.items()},
        sum_7d={m: v[keep] for m, v in sum_7d.items()},
        sum_28d={m: v[keep] for m, v in sum_28d.items()},
    )


def consecutive(days: list[dt.date]) -> list[dt.date]:
    """`days` sorted; raises unless they follow one another (the rolling state moves a day at a time)."""
    days = sorted(days)
    if days != [days[0] + dt.timedelta(days=i) for i in range(len(days))]:
        raise ValueError("features are computed over consecutive days")
    return days


def rebuilding(read: DayReader, first: dt.date) -> DayReader:
    """`read` for a state rebuilt before `first`: days before its 28-day window give no rows. They were never added,
    so nothing leaves the windows for them either."""
    window_start = first - dt.timedelta(days=LOOKBACK_DAYS - 1)
    return lambda day, columns: None if day < window_start else read(day, columns)


def rebuilt_state(first: dt.date, read: DayReader) -> RollingState:
    """The state as of the day before `first`, rolled from nothing over the report days of its window; `read` is
    `rebuilding(..., first)`'s, which goes on giving no rows for the days before the window on later days too."""
    state = RollingState.empty(first - dt.timedelta(days=LOOKBACK_DAYS))
    while state.day < first - dt.timedelta(days=1):
        state, _ = advance_day(state, read)
    return state


def advance_day(state: RollingState, read: DayReader) -> tuple[RollingState, pd.DataFrame | None]:
    """The state a day later and that day's report rows. A day is read whole when it enters the windows, and its
    metrics again when it leaves the week and the 28 days: re-reading a few columns costs less memory than keeping
    days."""
    day = state.day + dt.timedelta(days=1)
    today = read(day, None)
    leaving_week = read(day - dt.timedelta(days=7), LEAVING_COLUMNS)
    leaving_window = read(day - dt.timedelta(days=LOOKBACK_DAYS), LEAVING_COLUMNS)
    return advance(state, today, leaving_week, leaving_window), today


def lags(
    state: RollingState, read: DayReader, today: pd.DataFrame | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The state's keywords' metrics of its day (`today`, that day's report rows) and of 6 days before: the t-1 and
    t-7 lags of the next day's prediction."""
    ids = state.keywords["keyword_id"].to_numpy()
    six_days_before = read(state.day - dt.timedelta(days=6), LEAVING_COLUMNS)
    return _aligned(today, ids)[1], _aligned(six_days_before, ids)[1]


def days_of_history(day: dt.date, history_start: dt.date | None) -> int:
    """Days of the account's reports through `day`: rolling means average over no more days than there are."""
    return (day - history_start).days + 1 if history_start is not None else LOOKBACK_DAYS


def roll_shard(
    days: list[dt.date], read: DayReader, state: RollingState | None = None
) -> Iterator[tuple[dt.date, RollingState, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]]:
    """Yield (day, rolling state, lags) for consecutive `days` of one shard of keywords, whose report rows `read`
    gives. `state` is the shard's state as of the day before the first; without it, it is rebuilt from the 28 report
    days before (the bootstrap)."""
    days = consecutive(days)
    if state is None:
        read = rebuilding(read, days[0])
        state = rebuilt_state(days[0], read)
    elif state.day != days[0] - dt.timedelta(days=1):
        raise ValueError(f"rolling state is as of {state.day}, not the day before {days[0]}")
    for day in days:
        state, today = advance_day(state, read)
        yield day, state, lags(state, read, today)


def roll(
    days: list[dt.date],
    report_for: ReportForDay,
    state: RollingState | None = None,
    history_start: dt.date | None = None,
):
    """Yield (day, features, state) for consecutive `days` from reports that fit in memory (tests, backtests,
    training sets): every keyword in one shard, whose priors pool its own keywords."""

    def read(day: dt.date, columns: list[str] | None) -> pd.DataFrame | None:
        frame = report_for(day)
        return frame if frame is None or columns is None else frame[columns]

    for day, state_of_day, (lag_1, lag_7) in roll_shard(days, read, state):
        priors = ratio_priors([prior_inputs(state_of_day)])
        features = shard_features(state_of_day, lag_1, lag_7, priors, days_of_history(day, history_start))
        yield day, features, state_of_day


def prior_inputs(state: RollingState, sums: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """What the ratio priors need of a shard's keywords, in keyword order: each keyword's campaign and ad group and
    its 28-day sums (null where unreported). `sums`: the state's `_window_sums`, when already computed."""
    sums = _window_sums(state) if sums is None else sums
    return pd.DataFrame(
        {
            # The columns' own arrays: `to_numpy` would make a Python string of every keyword's names.
            "campaign": state.keywords["campaign"].array,
            "ad_group": state.keywords["ad_group"].array,
            **{m: sums[m] for m in METRIC_COLUMNS},
        }
    )


def ratio_priors(inputs: list[pd.DataFrame]) -> dict[tuple[str, str], np.ndarray]:
    """Every keyword's ratio priors, by (numerator, denominator), from the `prior_inputs` of every shard in keyword
    order (the priors' rows follow them). They pool ad groups, campaigns and the account across shards, and are not a
    sum of per-shard parts: each keyword's numerator is capped at a quantile of every keyword's ratio first."""
    frame = pd.concat(inputs, ignore_index=True)
    return _group_ratio_priors(
        frame[["campaign", "ad_group"]], {m: frame[m].to_numpy(dtype="float64") for m in METRIC_COLUMNS}
    )


def shard_features(
    state: RollingState,
    lag_1: dict[str, np.ndarray],
    lag_7: dict[str, np.ndarray],
    priors: dict[tuple[str, str], np.ndarray],
    account_history_days: int,
) -> pd.DataFrame:
    """A shard's features of its state's day, given its keywords' lags (t-1, t-7) and ratio priors (its rows of
    `ratio_priors`)."""
    return _features_from_state(state, lag_1, lag_7, _window_sums(state), priors, account_history_days)


def compute_features(history: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """Features for each of `days` from validated report rows `history` (a frame holding every day needed).

    Rows dated after a day never reach that day's features: that is what keeps features point-in-time correct. A
    metric the source did not report (null) makes every window that contains it null: unknown, not zero.
    """
    dates = as_day(history["date"])
    by_day = {key.date(): group for key, group in history.groupby(dates.to_numpy(), sort=True)}
    results = [features for _, features, _ in roll(sorted(days), by_day.get)]
    return pd.concat(results, ignore_index=True) if results else _empty_feature_table()


def _window_sums(state: RollingState) -> dict[str, np.ndarray]:
    """28-day sums by metric; null where the metric went unreported on a day of the window."""
    return {m: np.where(state.unknown[m] > 0, np.nan, state.sum_28d[m]) for m in METRIC_COLUMNS}


def _features_from_state(
    state: RollingState,
    lag_1: dict[str, np.ndarray],
    lag_7: dict[str, np.ndarray],
    sums_28: dict[str, np.ndarray],
    ratio_priors: dict[tuple[str, str], np.ndarray],
    account_history_days: int = LOOKBACK_DAYS,
):
    ids = state.keywords["keyword_id"].to_numpy()
    frame = state.keywords.copy()
    frame.insert(0, "date", pd.Timestamp(state.day))
    week_unknown = {m: (state.unknown[m] & WEEK_BITS) > 0 for m in METRIC_COLUMNS}
    values: dict[str, np.ndarray] = {}
    for feature in FEATURES:
        if feature.kind == "lag":
            (column,) = feature.source_columns
            values[feature.name] = (lag_1 if feature.lag_days == 0 else lag_7)[column]
        elif feature.kind in ("rolling_sum", "rolling_mean"):
            (column,) = feature.source_columns
            total = (
                np.where(week_unknown[column], np.nan, state.sum_7d[column])
                if feature.window_days == 7
                else sums_28[column]
            )
            days = max(1, min(feature.window_days, account_history_days))
            values[feature.name] = total / days if feature.kind == "rolling_mean" else total
    values["active_days_28d"] = _popcount(state.active)
    values["history_days"] = _bit_length(state.active)  # days since the first row within the window
    for feature in FEATURES:
        if feature.kind == "group_ratio":
            values[feature.name] = ratio_priors[feature.source_columns]
        elif feature.kind == "smoothed_ratio":
            numerator, denominator = feature.source_columns
            values[feature.name] = _shrink(
                sums_28[numerator], sums_28[denominator], ratio_priors[feature.source_columns], feature.prior_strength
            )
    target = pd.Timestamp(state.day) + pd.Timedelta(days=1)
    angle = 2 * np.pi * target.day_of_year / 365.25
    values["target_day_of_week"] = np.full(len(ids), target.day_of_week)
    values["target_day_of_year_sin"] = np.full(len(ids), np.sin(angle))
    values["target_day_of_year_cos"] = np.full(len(ids), np.cos(angle))
    for feature in FEATURES:
        column = np.asarray(values[feature.name], dtype="float64")
        frame[feature.name] = np.log1p(column) if feature.scaling == "log1p" else column
    return frame


def _popcount(masks: np.ndarray) -> np.ndarray:
    return np.unpackbits(masks.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1).sum(axis=1)


def _bit_length(masks: np.ndarray) -> np.ndarray:
    """Position of the highest set bit plus one: bit i set means a row i days ago."""
    out = np.zeros(len(masks), dtype="int64")
    nonzero = masks > 0
    out[nonzero] = np.floor(np.log2(masks[nonzero].astype("float64"))).astype("int64") + 1
    return out


def _shrink(numerator, denominator, prior, strength):
    return (numerator + strength * prior) / (denominator + strength)


def _group_ratio_priors(frame: pd.DataFrame, sums: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Each keyword's ad-group ratio, shrunk to its campaign's, shrunk to the account's; null for unreported metrics.

    The priors feed every keyword of a group, so one keyword must not drag them: each keyword's numerator enters
    capped at its denominator × the account's PRIOR_CAP_QUANTILE quantile of keyword ratios.

    Groups are numbered once (`_group_numbers`) and summed by number: grouping and joining every keyword by its
    campaign and ad group names took more memory than the keywords' whole rolling state."""
    campaigns = _group_numbers(frame["campaign"])
    ad_groups = _group_numbers(frame["campaign"], frame["ad_group"])
    priors = {}
    for _, numerator, denominator, strength, _, _ in _RATIOS:
        denominators = np.asarray(sums[denominator], dtype="float64")
        numerators = _capped_numerator(np.asarray(sums[numerator], dtype="float64"), denominators)
        account_num = pd.Series(numerators).sum(min_count=1)
        account_den = pd.Series(denominators).sum(min_count=1)
        account = account_num / account_den if account_den > 0 else (0.0 if pd.notna(account_den) else np.nan)
        campaign = _shrink(*_group_sums(campaigns, numerators, denominators), account, strength)
        priors[(numerator, denominator)] = _shrink(
            *_group_sums(ad_groups, numerators, denominators), campaign, strength
        )
    return priors


def _group_numbers(*keys: pd.Series) -> np.ndarray:
    """Each row's group of the key columns together, numbered from 0 in order of first appearance; -1 where a key is
    null (such a row belongs to no group)."""
    numbers = np.zeros(len(keys[0]), dtype="int64")
    for key in keys:
        codes, uniques = pd.factorize(key)
        numbers = np.where((numbers < 0) | (codes < 0), -1, numbers * max(len(uniques), 1) + codes)
    member = numbers >= 0
    numbers[member] = pd.factorize(numbers[member])[0]  # 0 to the groups' count: a group's row in `_group_sums`
    return numbers


def _capped_numerator(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denominator > 0, numerator / denominator, np.nan)
    if np.isnan(ratio).all():
        return numerator
    cap = np.nanquantile(ratio, PRIOR_CAP_QUANTILE)
    return np.where(denominator > 0, np.minimum(numerator, cap * denominator), numerator)


def _group_sums(groups: np.ndarray, numerator: np.ndarray, denominator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group totals of numerator and denominator (`groups` from `_group_numbers`); null where any member's
    value is null, and for a row in no group. Summed by pandas' grouped sum, row by row in order."""
    member = groups >= 0
    everyone = bool(member.all())
    keys = groups if everyone else groups[member]
    count = int(keys.max()) + 1 if len(keys) else 0
    # The group numbers are already 0 to count - 1: as a categorical's codes, pandas sums by them without hashing
    # ten million keys again for every ratio and level (half of this function's time at 10M keywords).
    by = pd.Categorical.from_codes(keys, categories=pd.RangeIndex(count))
    per_row = []
    for column in (numerator, denominator):
        values = column if everyone else column[member]
        totals = pd.Series(values).groupby(by, observed=False, sort=True).sum().to_numpy().copy()  # row g: group g
        totals[np.bincount(keys, weights=np.isnan(values), minlength=count) > 0] = np.nan
        spread = np.full(len(groups), np.nan)
        spread[member] = totals[keys]
        per_row.append(spread)
    return per_row[0], per_row[1]


def _empty_feature_table() -> pd.DataFrame:
    columns = {name: pd.Series(dtype="float64") for name in FEATURE_NAMES}
    keys = {"date": pd.Series(dtype="datetime64[ns]"), "keyword_id": pd.Series(dtype="int64")}
    keys |= {name: pd.Series(dtype="string") for name in DIMENSION_COLUMNS}
    return pd.DataFrame(keys | columns)
