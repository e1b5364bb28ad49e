"""Next-day predictions per keyword: the table bids are made from."""

from __future__ import annotations

import pandas as pd

from daily_bids.schema import DIMENSION_COLUMNS, as_day

# How many expected clicks' worth of weight the ad group's value per click gets against the model's ratio: keeps
# the ratio of two small predictions from swinging when a keyword is expected to get few clicks.
VALUE_PER_CLICK_PRIOR_CLICKS = 1.0

PREDICTION_TABLE_COLUMNS: tuple[str, ...] = (
    "date", "effective_date", "keyword_id", *DIMENSION_COLUMNS,
    "expected_clicks", "expected_conversions", "expected_value", "expected_value_per_click",
    "prior_value_per_click", "history_days", "model_version",
)


def predict_next_day(features: pd.DataFrame, model) -> pd.DataFrame:
    """Predictions for the day after each feature row's date, from any model with `predict` and `version`
    (the XGBoost or the deep model)."""
    predicted = model.predict(features)
    prior = features["ad_group_value_per_click_28d"].to_numpy(dtype="float64")
    weight = VALUE_PER_CLICK_PRIOR_CLICKS
    out = features[["date", "keyword_id", *DIMENSION_COLUMNS]].copy()
    out["date"] = as_day(out["date"]).to_numpy()
    out.insert(1, "effective_date", out["date"] + pd.Timedelta(days=1))
    out = pd.concat([out, predicted], axis=1)
    out["expected_value_per_click"] = (out["expected_value"] + weight * prior) / (out["expected_clicks"] + weight)
    out["prior_value_per_click"] = prior
    out["history_days"] = features["history_days"].to_numpy(dtype="int64")
    out["model_version"] = model.version
    return out.loc[:, list(PREDICTION_TABLE_COLUMNS)].reset_index(drop=True)


def summarize_predictions(predictions: pd.DataFrame) -> dict[str, float]:
    """Totals for the materialization's metadata; a quantity the reports do not carry is left out, not zeroed."""
    summary = {"keywords": float(len(predictions))}
    for column in ("expected_clicks", "expected_conversions", "expected_value"):
        if predictions[column].notna().any():
            summary[column] = float(predictions[column].sum())
    if predictions["expected_value_per_click"].notna().any():
        summary["median_value_per_click"] = float(predictions["expected_value_per_click"].median())
    return summary
