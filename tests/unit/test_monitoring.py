"""Monitoring of a day's predictions and bids against its report (plain functions, no Dagster)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.monitoring.outcomes import (
    MONITORING_COLUMNS,
    metadata_summary,
    monitor_day,
    real_vs_predicted_png,
    rolling_decline,
)

DAY = dt.date(2025, 3, 2)


def _report(rows: list[tuple], value_reported: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["keyword_id", "clicks", "cost", "conversions", "conversion_value"])
    if not value_reported:
        frame["conversions"] = np.nan
        frame["conversion_value"] = np.nan
    return frame.assign(date=pd.Timestamp(DAY))


def _predictions(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["keyword_id", "expected_clicks", "expected_conversions", "expected_value"])
    return frame.assign(model_version="xgb-1")


# Keyword 3 was predicted but has no report row: no impressions, so zero actuals. Keyword 4 is new: not predicted.
REPORT = _report([(1, 4, 2.0, 1, 30.0), (2, 0, 0.0, 0, 0.0), (4, 5, 1.0, 0, 0.0)])
PREDICTIONS = _predictions([(1, 2.0, 0.5, 20.0), (2, 1.0, 0.1, 2.0), (3, 1.0, 0.0, 1.0)])
BIDS = pd.DataFrame({"keyword_id": [1, 3], "bid": [0.60, 0.40], "expected_value_per_click": [0.40, 1.00]})
CLUSTERS = pd.DataFrame({"keyword_id": [1, 2], "cluster": [0, 1]})


def test_errors_are_computed_over_every_predicted_keyword_with_zero_for_a_missing_row():
    rows = monitor_day(DAY, REPORT, PREDICTIONS, BIDS, CLUSTERS)
    assert list(rows.columns) == list(MONITORING_COLUMNS)
    overall = rows.set_index("slice").loc["all"]
    actual, predicted = np.array([4.0, 0.0, 0.0]), np.array([2.0, 1.0, 1.0])
    assert overall["keywords"] == 3 and overall["unpredicted_keywords"] == 1
    assert overall["clicks_actual"] == 4 and overall["clicks_predicted"] == 4
    assert overall["clicks_mae"] == pytest.approx(np.abs(actual - predicted).mean())
    assert overall["clicks_rmse"] == pytest.approx(np.sqrt(((actual - predicted) ** 2).mean()))
    deviance = 2 * (4 * np.log(4 / 2) - (4 - 2)) + 2 * 1 + 2 * 1  # zero actuals contribute 2 × predicted
    assert overall["clicks_poisson_deviance"] == pytest.approx(deviance / 3)
    assert overall["clicks_calibration"] == pytest.approx(1.0)
    assert overall["value_actual"] == 30 and overall["value_calibration"] == pytest.approx(23 / 30)


def test_economics_of_the_bids_placed_for_the_day():
    overall = monitor_day(DAY, REPORT, PREDICTIONS, BIDS, CLUSTERS).set_index("slice").loc["all"]
    # Keyword 1 (bid 0.60) spent 2.00 for 4 clicks and earned 30.00; keyword 3 (bid) had no impressions.
    assert overall["bid_keywords"] == 2
    assert (overall["spend"], overall["conversion_value"], overall["profit"]) == (2.0, 30.0, 28.0)
    assert overall["roas"] == pytest.approx(15.0)
    # Realized cpc 0.50 is above keyword 1's expected value per click of 0.40: one of the one clicked keyword.
    assert overall["share_cpc_above_expected_value"] == 1.0


def test_cluster_slices_add_up_to_the_whole():
    rows = monitor_day(DAY, REPORT, PREDICTIONS, BIDS, CLUSTERS).set_index("slice")
    assert sorted(rows.index) == ["all", "cluster 0", "cluster 1", "unclustered"]
    parts = rows.drop(index="all")
    for column in ("keywords", "clicks_actual", "clicks_predicted", "spend", "bid_keywords"):
        assert parts[column].sum() == pytest.approx(rows.loc["all", column])


def test_metrics_a_source_does_not_report_stay_unknown():
    report = _report([(1, 4, 2.0, 0, 0.0)], value_reported=False)
    predictions = PREDICTIONS.assign(expected_conversions=np.nan, expected_value=np.nan)
    overall = monitor_day(DAY, report, predictions, None, None).set_index("slice").loc["all"]
    assert overall["clicks_actual"] == 4
    assert np.isnan(overall["value_mae"]) and np.isnan(overall["conversions_calibration"])
    assert overall["bid_keywords"] == 0 and np.isnan(overall["roas"])
    summary = metadata_summary(monitor_day(DAY, report, predictions, None, None))
    assert "clicks_mae" in summary and "value_mae" not in summary  # unknown numbers are left out, not zeroed


def _history(deviances: list[float], version: str = "xgb-1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.date_range("2025-03-01", periods=len(deviances)),
            "slice": "all",
            "model_version": version,
            "clicks_poisson_deviance": deviances,
        }
    )


def test_decline_needs_the_rolling_mean_above_the_holdout_by_the_margin():
    assert not rolling_decline(_history([1.0, 1.05, 1.08]), reference_deviance=1.0, margin=0.10).declined
    verdict = rolling_decline(_history([1.0, 1.2, 1.3]), reference_deviance=1.0, margin=0.10)
    assert verdict.declined and verdict.rolling_deviance == pytest.approx(3.5 / 3) and verdict.days == 3
    assert "above 1.1000" in verdict.explanation


def test_too_few_days_are_never_a_decline():
    verdict = rolling_decline(_history([5.0, 6.0]), reference_deviance=1.0, margin=0.10)
    assert not verdict.declined and "needs 3" in verdict.explanation


def test_the_chart_is_a_png():
    rows = pd.concat([monitor_day(DAY + dt.timedelta(days=n), REPORT, PREDICTIONS, BIDS, CLUSTERS) for n in range(3)])
    assert real_vs_predicted_png(rows)[:8] == b"\x89PNG\r\n\x1a\n"
