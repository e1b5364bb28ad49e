"""Next-day predictions per keyword: the table bids are made from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from daily_bids.keyword_index import KeywordIndex
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


class ClusterPriors:
    """Each keyword's cluster value per click (the cold-start prior), looked up by keyword_id.

    Built once for a day from the cluster table and the clusters' values, so that a batch's lookup costs its own
    rows, not the whole table's (a 10M-keyword day is scored in some 40 batches)."""

    def __init__(self, clusters: pd.DataFrame | None, values_by_cluster: pd.Series):
        if clusters is None or clusters.empty:
            self.keywords, self.values = KeywordIndex([]), np.zeros(0)
            return
        self.keywords = KeywordIndex(clusters["keyword_id"].to_numpy())
        self.values = pd.Series(values_by_cluster).reindex(clusters["cluster"].to_numpy()).to_numpy(dtype="float64")

    def __call__(self, keyword_ids: np.ndarray) -> np.ndarray:
        """The cluster value per click of each keyword; NaN without a cluster, or for a cluster without value."""
        return self.keywords.take(self.values, keyword_ids)


def predict_next_day(
    features: pd.DataFrame,
    model,
    clusters: pd.DataFrame | ClusterPriors | None = None,
    values_by_cluster: pd.Series | None = None,
    value_posterior: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Predictions for the day after each feature row's date, from any model with `predict` and `version`
    (the XGBoost or the deep model). With `clusters` (keyword_id, cluster), each keyword also gets its cluster's
    click-weighted value per click: the prior that cold-start bids use. Those values come from `values_by_cluster`
    when given (`cluster_values` of the whole day, for a batch of it), else from `features`; a day scored in
    batches passes its `ClusterPriors` instead, built once.

    `value_posterior` (indexed by keyword_id: `value_per_click` and `value_per_click_cv`, the `keyword_value`
    table's) gives each keyword its pooled value per click and its spread. Where a keyword has one, it is the
    expected value per click, and the expected value is the expected clicks at it. Elsewhere (no posterior: reports
    without conversions) the value per click is the model's ratio of expected value to expected clicks, shrunk
    towards the ad group's, and the spread is unknown (null)."""
    predicted = model.predict(features)
    keyword_ids = features["keyword_id"].to_numpy()
    prior = features["ad_group_value_per_click_28d"].to_numpy(dtype="float64")
    clicks = predicted["expected_clicks"].to_numpy(dtype="float64")
    value = predicted["expected_value"].to_numpy(dtype="float64")
    weight = VALUE_PER_CLICK_PRIOR_CLICKS
    value_per_click = (value + weight * prior) / (clicks + weight)
    spread = np.full(len(features), np.nan)
    if value_posterior is not None:
        pooled = value_posterior.reindex(keyword_ids)
        pooled_value = pooled["value_per_click"].to_numpy(dtype="float64")
        known = ~np.isnan(pooled_value)
        value_per_click = np.where(known, pooled_value, value_per_click)
        # The model's clicks at the pooled value: on held-out days, a truer next-day value than either alone
        # (benchmarks/value_per_click_holdout.py).
        value = np.where(known, clicks * value_per_click, value)
        spread = pooled["value_per_click_cv"].to_numpy(dtype="float64")
    if not isinstance(clusters, ClusterPriors):
        if values_by_cluster is None:
            values_by_cluster = cluster_values(features, clusters)
        clusters = ClusterPriors(clusters, values_by_cluster)
    day = as_day(features["date"]).to_numpy()
    columns = {
        "date": day,
        "effective_date": day + np.timedelta64(1, "D"),
        "keyword_id": keyword_ids,
        **{name: features[name].array for name in DIMENSION_COLUMNS},  # as stored: no Python strings made
        "expected_clicks": clicks,
        "expected_conversions": predicted["expected_conversions"].to_numpy(dtype="float64"),
        "expected_value": value,
        "expected_value_per_click": value_per_click,
        "value_per_click_cv": spread,
        "prior_value_per_click": prior,
        "cluster_value_per_click": clusters(keyword_ids),
        "history_days": features["history_days"].to_numpy(dtype="int64"),
    }
    out = pd.DataFrame(columns, copy=False)
    out["model_version"] = model.version
    return out.loc[:, list(PREDICTION_TABLE_COLUMNS)]


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
