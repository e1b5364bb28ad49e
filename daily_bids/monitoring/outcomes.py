"""How the predictions and bids made for a day turned out, once that day's report is in.

For day D the predictions and bids were made in partition D-1 (from the features of D-1). A keyword that was
predicted but has no report row on D had no impressions: its actual clicks, conversions and value are zero. A
metric the source does not report (every row null) is not judged. Keywords in the report that were not predicted
(new keywords) are counted, not judged.

One row per (date, slice): slice `all`, and `cluster N` for each keyword cluster (`unclustered` for keywords the
clusters do not know).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.charts import figure_png, pyplot
from daily_bids.models.xgboost_model import regression_metrics

# Monitored quantity → (the report's column, the prediction's column).
TARGETS: dict[str, tuple[str, str]] = {
    "clicks": ("clicks", "expected_clicks"),
    "conversions": ("conversions", "expected_conversions"),
    "value": ("conversion_value", "expected_value"),
}
ERROR_MEASURES = ("actual", "predicted", "mae", "rmse", "poisson_deviance", "calibration")
ECONOMICS = ("bid_keywords", "spend", "conversion_value", "profit", "roas", "share_cpc_above_expected_value")
MONITORING_COLUMNS: tuple[str, ...] = (
    "date",
    "slice",
    "model_version",
    "keywords",
    "unpredicted_keywords",
    *(f"{target}_{measure}" for target in TARGETS for measure in ERROR_MEASURES),
    *ECONOMICS,
)
# The rolling window of the decline check, and the fewest monitored days it judges on: one noisy day is not a trend.
DECLINE_WINDOW_DAYS, DECLINE_MIN_DAYS = 7, 3


def monitor_day(
    day: dt.date,
    report: pd.DataFrame,
    predictions: pd.DataFrame,
    bids: pd.DataFrame | None,
    clusters: pd.DataFrame | None,
) -> pd.DataFrame:
    """The monitoring rows of `day`: `report` is the validated report of the day, `predictions` and `bids` the
    partitions made the day before (for this day), `clusters` the keyword clusters (keyword_id, cluster)."""
    actual = report.set_index("keyword_id")
    joined = predictions.set_index("keyword_id")
    for target, (report_column, _) in TARGETS.items():
        reported = report_column in actual.columns and actual[report_column].notna().any()
        values = pd.to_numeric(actual[report_column], errors="coerce") if reported else None
        # No report row on the day means no impressions: zero, unless the source does not report the metric at all.
        joined[f"actual_{target}"] = values.reindex(joined.index).fillna(0.0).astype("float64") if reported else np.nan
    cost = (
        pd.to_numeric(actual["cost"], errors="coerce")
        if "cost" in actual.columns and actual["cost"].notna().any()
        else pd.Series(np.nan, index=actual.index)
    )
    joined["actual_cost"] = cost.reindex(joined.index).fillna(0.0) if cost.notna().any() else np.nan
    bid_columns = ["bid", "expected_value_per_click"]
    if bids is not None and len(bids):
        joined = joined.join(bids.set_index("keyword_id")[bid_columns].add_prefix("placed_"), how="left")
    else:
        joined[[f"placed_{column}" for column in bid_columns]] = np.nan
    cluster_of = (
        pd.Series(clusters["cluster"].to_numpy(), index=clusters["keyword_id"].to_numpy())
        if clusters is not None and len(clusters)
        else pd.Series(dtype="float64")
    )
    cluster = cluster_of.reindex(joined.index)
    joined["slice"] = np.where(cluster.isna(), "unclustered", "cluster " + cluster.astype("Int64").astype(str))
    unpredicted = int((~actual.index.isin(joined.index)).sum())

    versions = predictions["model_version"].dropna().unique()
    rows = [_slice_row("all", joined, unpredicted)]
    rows += [_slice_row(name, part, 0) for name, part in sorted(joined.groupby("slice"), key=lambda item: item[0])]
    frame = pd.DataFrame(rows)
    frame.insert(0, "date", pd.Timestamp(day))
    frame.insert(2, "model_version", ", ".join(sorted(versions)) or "unknown")
    return frame.loc[:, list(MONITORING_COLUMNS)]


def _slice_row(name: str, part: pd.DataFrame, unpredicted: int) -> dict:
    row: dict[str, object] = {"slice": name, "keywords": len(part), "unpredicted_keywords": unpredicted}
    for target, (_, prediction_column) in TARGETS.items():
        actual = part[f"actual_{target}"].to_numpy(dtype="float64")
        predicted = (
            part[prediction_column].to_numpy(dtype="float64")
            if prediction_column in part.columns
            else np.full(len(part), np.nan)
        )
        known = ~np.isnan(actual) & ~np.isnan(predicted)
        if not known.any():
            row |= {f"{target}_{measure}": np.nan for measure in ERROR_MEASURES}
            continue
        metrics = regression_metrics(actual[known], predicted[known])
        row |= {
            f"{target}_actual": float(actual[known].sum()),
            f"{target}_predicted": float(predicted[known].sum()),
            **{
                f"{target}_{measure}": metrics[measure]
                for measure in ("mae", "rmse", "poisson_deviance", "calibration")
            },
        }
    return row | _economics(part)


def _economics(part: pd.DataFrame) -> dict[str, float]:
    """What the bids placed for the day earned and cost, on the keywords that had a bid."""
    placed = part[part["placed_bid"].notna()]
    spend = float(placed["actual_cost"].sum(min_count=1))
    value = float(placed["actual_value"].sum(min_count=1))
    clicked = placed[(placed["actual_clicks"] > 0) & placed["actual_cost"].notna()]
    realized_cpc = clicked["actual_cost"] / clicked["actual_clicks"]
    above = realized_cpc > clicked["placed_expected_value_per_click"]
    return {
        "bid_keywords": len(placed),
        "spend": spend,
        "conversion_value": value,
        "profit": value - spend,
        "roas": value / spend if spend > 0 else np.nan,
        "share_cpc_above_expected_value": float(above.mean()) if len(clicked) else np.nan,
    }


def metadata_summary(rows: pd.DataFrame) -> dict[str, float]:
    """The latest day's overall figures, rounded for reading; unknown ones are left out (the UI plots each number
    over time)."""
    latest = rows[rows["slice"] == "all"].sort_values("date").iloc[-1]
    names = [f"{target}_{measure}" for target in TARGETS for measure in ERROR_MEASURES[2:]] + list(ECONOMICS)
    return {
        "monitored_day": latest["date"].date().isoformat(),
        **{name: round(float(latest[name]), 4) for name in names if pd.notna(latest[name])},
    }


@dataclass(frozen=True)
class DeclineVerdict:
    declined: bool
    rolling_deviance: float
    reference_deviance: float
    threshold: float
    days: int
    explanation: str

    def metadata(self) -> dict[str, float | int]:
        return {
            "rolling_clicks_poisson_deviance": round(self.rolling_deviance, 4),
            "champion_holdout_deviance": round(self.reference_deviance, 4),
            "threshold": round(self.threshold, 4),
            "monitored_days": self.days,
        }


def rolling_decline(history: pd.DataFrame, reference_deviance: float, margin: float) -> DeclineVerdict:
    """Whether the mean daily Poisson deviance of clicks over the monitored days in `history` (slice `all`) is worse
    than `reference_deviance` (the champion's on the gate's holdout) by more than `margin`. Every day weighs the
    same, so one busy day does not decide it; fewer than DECLINE_MIN_DAYS days are never a decline."""
    overall = history[history["slice"] == "all"].dropna(subset=["clicks_poisson_deviance"])
    days = int(overall["date"].nunique())
    rolling = float(overall["clicks_poisson_deviance"].mean()) if days else float("nan")
    threshold = reference_deviance * (1 + margin)
    if days < DECLINE_MIN_DAYS:
        return DeclineVerdict(
            False,
            rolling,
            reference_deviance,
            threshold,
            days,
            f"{days} monitored day(s) of this champion; the check needs {DECLINE_MIN_DAYS}",
        )
    declined = rolling > threshold
    return DeclineVerdict(
        declined,
        rolling,
        reference_deviance,
        threshold,
        days,
        f"mean deviance {rolling:.4f} over {days} days is {'above' if declined else 'within'} "
        f"{threshold:.4f} (holdout {reference_deviance:.4f} + {margin:.0%})",
    )


def real_vs_predicted_png(history: pd.DataFrame, days: int = 28) -> bytes:
    """The last `days` monitored days: actual against predicted clicks (and value, where known), and the daily
    Poisson deviance of clicks."""
    overall = history[history["slice"] == "all"].sort_values("date").tail(days)
    has_value = overall["value_actual"].notna().any()
    figure, axes = pyplot().subplots(1, 3 if has_value else 2, figsize=(14 if has_value else 10, 3.8))
    dates = pd.to_datetime(overall["date"])
    panels = [("clicks", "clicks per day: real vs predicted")] + (
        [("value", "conversion value per day")] if has_value else []
    )
    for axis, (target, title) in zip(axes, panels):
        axis.plot(dates, overall[f"{target}_actual"], color="black", linewidth=2, label="real")
        axis.plot(dates, overall[f"{target}_predicted"], label="predicted")
        axis.set_title(title)
        axis.legend(fontsize=8)
    axes[-1].plot(dates, overall["clicks_poisson_deviance"], color="tab:red")
    axes[-1].set_title("mean Poisson deviance of clicks")
    for axis in axes:
        axis.tick_params(axis="x", labelrotation=45)
    return figure_png(figure)
