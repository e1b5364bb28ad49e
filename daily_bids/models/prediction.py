"""Next-day predictions per keyword: the table bids are made from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from daily_bids.schema import DIMENSION_COLUMNS, as_day

# How many expected clicks' worth of weight the ad group's value per click gets against the model's ratio: keeps
# the ratio of two small predictions from swinging when a keyword is expected to get few clicks.
VALUE_PER_CLICK_PRIOR_CLICKS = 1.0

PREDICTION_TABLE_COLUMNS: tuple[str, ...] = (
    "date",
    "effective_date",
    "keyword_id",
    *DIMENSION_COLUMNS,
    "expected_clicks",
    "expected_conversions",
    "expected_value",
    "expected_value_per_click",
    "value_per_click_cv",
    "prior_value_per_click",
    "cluster_value_per_click",
    "history_days",
    "model_version",
)


# The feature columns a cluster's value per click is computed from.
CLUSTER_VALUE_INPUTS = ("keyword_id", "clicks_sum_28d", "value_per_click_28d")


def predict_next_day(
    features: pd.DataFrame,
    model,
    clusters: pd.DataFrame | None = None,
    values_by_cluster: pd.Series | None = None,
    value_posterior: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Predictions for the day after each feature row's date, from any model with `predict` and `version`
    (the XGBoost or the deep model). With `clusters` (keyword_id, cluster), each keyword also gets its cluster's
    click-weighted value per click: the prior that cold-start bids use. Those values come from `values_by_cluster`
    when given (`cluster_values` of the whole day, for a batch of it), else from `features`.

    `value_posterior` (indexed by keyword_id: `value_per_click` and `value_per_click_cv`, the `keyword_value`
    table's) gives each keyword its pooled value per click and its spread. Where a keyword has one, it is the
    expected value per click, and the expected value is the expected clicks at it. Elsewhere (no posterior: reports
    without conversions) the value per click is the model's ratio of expected value to expected clicks, shrunk
    towards the ad group's, and the spread is unknown (null)."""
    predicted = model.predict(features)
    prior = features["ad_group_value_per_click_28d"].to_numpy(dtype="float64")
    weight = VALUE_PER_CLICK_PRIOR_CLICKS
    out = features[["date", "keyword_id", *DIMENSION_COLUMNS]].copy()
    out["date"] = as_day(out["date"]).to_numpy()
    out.insert(1, "effective_date", out["date"] + pd.Timedelta(days=1))
    out = pd.concat([out, predicted], axis=1)
    out["expected_value_per_click"] = (out["expected_value"] + weight * prior) / (out["expected_clicks"] + weight)
    out["value_per_click_cv"] = np.nan
    if value_posterior is not None:
        pooled = value_posterior.reindex(out["keyword_id"].to_numpy())
        known = pooled["value_per_click"].notna().to_numpy()
        out.loc[known, "expected_value_per_click"] = pooled["value_per_click"].to_numpy(dtype="float64")[known]
        # The model's clicks at the pooled value: on held-out days, a truer next-day value than either alone
        # (benchmarks/value_per_click_holdout.py).
        out.loc[known, "expected_value"] = (out["expected_clicks"] * out["expected_value_per_click"])[known]
        out["value_per_click_cv"] = pooled["value_per_click_cv"].to_numpy(dtype="float64")
    out["prior_value_per_click"] = prior
    if values_by_cluster is None:
        values_by_cluster = cluster_values(features, clusters)
    out["cluster_value_per_click"] = _cluster_of(features, clusters).map(values_by_cluster).to_numpy(dtype="float64")
    out["history_days"] = features["history_days"].to_numpy(dtype="int64")
    out["model_version"] = model.version
    return out.loc[:, list(PREDICTION_TABLE_COLUMNS)].reset_index(drop=True)


def _cluster_of(features: pd.DataFrame, clusters: pd.DataFrame | None) -> pd.Series:
    """Each feature row's cluster; null for keywords without one (or when there are no clusters)."""
    if clusters is None or clusters.empty:
        return pd.Series(np.full(len(features), np.nan))
    lookup = pd.Series(clusters["cluster"].to_numpy(), index=clusters["keyword_id"].to_numpy())
    return pd.Series(lookup.reindex(features["keyword_id"].to_numpy()).to_numpy())


def cluster_values(features: pd.DataFrame, clusters: pd.DataFrame | None) -> pd.Series:
    """Each cluster's value per click, weighted by its keywords' clicks over 28 days (cluster → value); only the
    `CLUSTER_VALUE_INPUTS` columns of `features` are read. Empty without clusters or value."""
    cluster = _cluster_of(features, clusters).to_numpy()
    clicks = np.expm1(features["clicks_sum_28d"].to_numpy(dtype="float64"))
    value = features["value_per_click_28d"].to_numpy(dtype="float64") * clicks
    frame = pd.DataFrame({"cluster": cluster, "clicks": clicks, "value": value}).dropna(subset=["cluster"])
    sums = frame.groupby("cluster")[["clicks", "value"]].sum(min_count=1)
    return (sums["value"] / sums["clicks"].where(sums["clicks"] > 0)).dropna()
