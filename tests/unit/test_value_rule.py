"""The money rule in truth: realized against predicted value per click by decile, and the spend on keywords whose
clicks earned less than they cost (plain functions, no Dagster)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.monitoring.value_rule import (
    DECILE_COLUMNS,
    KEYWORD_DAY_COLUMNS,
    MIN_DAYS,
    deciles_markdown,
    judge_losing_spend,
    keyword_days,
    losing_spend,
    read_keyword_days,
    trailing,
    value_per_click_deciles,
    value_per_click_png,
)
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

DAY = dt.date(2025, 3, 2)


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _reports(rows):
    return _frame(rows, ["date", "keyword_id", "clicks", "conversion_value", "cost"])


def _predictions(rows):
    return _frame(rows, ["date", "keyword_id", "expected_value_per_click"])


def _bids(rows):
    return _frame(rows, ["date", "keyword_id", "bid"])


def _day(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


def test_a_predicted_keyword_without_a_report_row_had_zero_clicks_and_an_unreported_value_stays_unknown():
    reports = _reports(
        [(_day(0), 1, 4, 10.0, 2.0), (_day(1), 1, 3, np.nan, 1.5), (_day(1), 9, 5, np.nan, 1.0)]
    )  # day 1 reports no value
    predictions = _predictions([(_day(0), 1, 2.0), (_day(0), 2, 1.0), (_day(1), 1, 2.0), (_day(1), 2, 1.0)])
    bids = _bids([(_day(0), 1, 1.2)])
    days = keyword_days(reports, predictions, bids).set_index(["date", "keyword_id"])
    assert list(days.reset_index().columns) == list(KEYWORD_DAY_COLUMNS)
    assert len(days) == 4  # keyword 9 was not predicted: not judged
    absent = days.loc[(pd.Timestamp(_day(0)), 2)]
    assert (absent["clicks"], absent["conversion_value"], absent["cost"]) == (0, 0, 0)
    assert np.isnan(absent["bid"]) and days.loc[(pd.Timestamp(_day(0)), 1), "bid"] == 1.2
    # Day 1 fills no conversion value: unknown for every keyword, with a row or without; its clicks and cost are known.
    assert days.loc[pd.Timestamp(_day(1)), "conversion_value"].isna().all()
    assert days.loc[(pd.Timestamp(_day(1)), 2), "clicks"] == 0
    assert days.loc[(pd.Timestamp(_day(1)), 1), "cost"] == 1.5


def test_losing_spend_is_the_spend_on_bid_keywords_whose_value_per_click_was_below_their_cost_per_click():
    reports = _reports(
        [
            # Keyword 1: 10 clicks over two days, 3.00 of value for 5.00 of cost: value per click 0.30 < cpc 0.50.
            (_day(0), 1, 4, 1.0, 2.0),
            (_day(1), 1, 6, 2.0, 3.0),
            # Keyword 2 lost on day 0 but earned 20.00 for 5.00 over the window: not losing.
            (_day(0), 2, 5, 0.0, 2.5),
            (_day(1), 2, 5, 20.0, 2.5),
            # Keyword 3 lost money but had no bid from the platform: not its spend.
            (_day(0), 3, 8, 0.0, 4.0),
        ]
    )
    predictions = _predictions([(d, k, 1.0) for d in (_day(0), _day(1)) for k in (1, 2, 3)])
    bids = _bids([(d, k, 0.6) for d in (_day(0), _day(1)) for k in (1, 2)])
    result = losing_spend(keyword_days(reports, predictions, bids))
    assert (result.spend, result.losing_spend) == (10.0, 5.0)
    assert result.share == pytest.approx(0.5)
    assert (result.keywords, result.losing_keywords, result.days) == (2, 1, 2)
    # Without keyword 1's bids, no bid keyword lost money.
    assert losing_spend(keyword_days(reports, predictions, bids[bids["keyword_id"] != 1])).share == 0.0


def _window(days: int, share_lost: float, value_reported: bool = True) -> pd.DataFrame:
    """`days` days of two bid keywords with equal spend: keyword 1 earns 0 for its cost when `share_lost` is 0.5."""
    rows, predictions, bids = [], [], []
    for n in range(days):
        rows += [(_day(n), 1, 10, 0.0 if share_lost else 50.0, 5.0), (_day(n), 2, 10, 50.0, 5.0)]
        predictions += [(_day(n), 1, 5.0), (_day(n), 2, 5.0)]
        bids += [(_day(n), 1, 3.0), (_day(n), 2, 3.0)]
    reports = _reports(rows)
    if not value_reported:
        reports["conversion_value"] = np.nan
    return keyword_days(reports, _predictions(predictions), _bids(bids))


def test_the_check_fails_above_the_share_and_passes_with_a_note_when_it_cannot_judge():
    failed = judge_losing_spend(_window(MIN_DAYS, 0.5), warn_share=0.25)
    assert not failed.passed and failed.metadata["losing_spend_share"] == pytest.approx(0.5)
    assert "50.0%" in failed.explanation
    assert judge_losing_spend(_window(MIN_DAYS, 0.5), warn_share=0.6).passed
    assert judge_losing_spend(_window(MIN_DAYS, 0.0), warn_share=0.25).passed
    short = judge_losing_spend(_window(MIN_DAYS - 1, 0.5), warn_share=0.25)
    assert short.passed and "not enough history" in short.metadata["note"]
    empty = judge_losing_spend(keyword_days(_reports([]), _predictions([]), None), warn_share=0.25)
    assert empty.passed and "not enough history" in empty.metadata["note"]
    unreported = judge_losing_spend(_window(MIN_DAYS, 0.5, value_reported=False), warn_share=0.25)
    assert unreported.passed and "conversion value" in unreported.metadata["note"]


def test_trailing_keeps_the_window_ending_at_the_day():
    frame = _window(40, 0.0)
    window = trailing(frame, _day(39), days=28)
    assert window["date"].nunique() == 28 and window["date"].min() == pd.Timestamp(_day(12))


def test_deciles_of_a_calibrated_prediction_realize_what_was_predicted_and_count_every_keyword_day():
    rng = np.random.default_rng(5)
    n = 1_000
    predicted = rng.lognormal(0.0, 1.0, n)
    clicks = rng.poisson(2.0, n)  # some keyword-days without clicks: counted, not in the per-click figures
    frame = pd.DataFrame(
        {
            "date": pd.Timestamp(DAY),
            "keyword_id": np.arange(n),
            "predicted_value_per_click": predicted,
            "bid": np.nan,
            "clicks": clicks.astype(float),
            "conversion_value": clicks * predicted,
            "cost": 0.0,
        }
    )
    table = value_per_click_deciles(frame)
    assert list(table.columns) == list(DECILE_COLUMNS) and len(table) == 10
    assert table["keyword_days"].sum() == n and table["clicks"].sum() == clicks.sum()
    assert table["keyword_days_with_clicks"].sum() == (clicks > 0).sum()
    assert (table["predicted_max"].to_numpy()[:-1] <= table["predicted_min"].to_numpy()[1:]).all()
    assert np.allclose(table["realized_over_predicted"], 1.0)
    # Clicks that earn half the prediction show up in every decile.
    half = value_per_click_deciles(frame.assign(conversion_value=frame["conversion_value"] / 2))
    assert np.allclose(half["realized_over_predicted"], 0.5)
    assert "realized / predicted" in deciles_markdown(table)
    assert value_per_click_png(table).startswith(b"\x89PNG")


def _simulated_window(sim: AdMarketSimulator, predicted: np.ndarray, bid_factor: float, days: int = 28):
    ids = sim.keyword_dimensions["keyword_id"].to_numpy()
    bids = pd.Series(np.maximum(np.floor(sim.true_value_per_click * bid_factor * 100) / 100, 0.01), index=ids)
    reports, predictions, placed = [], [], []
    for n in range(days):
        day = pd.Timestamp(_day(n))
        reports.append(sim.report(_day(n), bids))
        predictions.append(pd.DataFrame({"date": day, "keyword_id": ids, "expected_value_per_click": predicted}))
        placed.append(pd.DataFrame({"date": day, "keyword_id": ids, "bid": bids.to_numpy()}))
    return keyword_days(pd.concat(reports), pd.concat(predictions), pd.concat(placed))


def test_predicting_the_true_value_per_click_realizes_it_in_every_decile_of_the_simulator():
    sim = AdMarketSimulator(seed=11, keywords=300)
    frame = _simulated_window(sim, sim.true_value_per_click, bid_factor=0.6)
    table = value_per_click_deciles(frame)
    # The noise of a decile's value given its clicks, from the simulator's truth: per click, a conversion with the
    # keyword's rate, then a value of mean `order` and variance order² / 4 (its gamma): order² × rate × (1.25 - rate).
    lat = pd.DataFrame(sim.latent)[["keyword_id", "conversion_rate", "order_value"]]
    truth = frame.merge(lat, on="keyword_id", how="left")  # in the order the deciles were cut
    rank = truth["predicted_value_per_click"].rank(method="first")
    truth["decile"] = np.ceil(rank * 10 / len(truth)).astype(int)
    variance = (
        truth["clicks"] * truth["order_value"] ** 2 * truth["conversion_rate"] * (1.25 - truth["conversion_rate"])
    )
    standard_error = np.sqrt(variance.groupby(truth["decile"]).sum()).to_numpy() / table["clicks"].to_numpy()
    busy = table["clicks"] >= 300
    assert busy.sum() >= 8
    gap = (table["realized_value_per_click"] - table["predicted_value_per_click"]).abs().to_numpy()
    assert (gap[busy] <= 4 * standard_error[busy]).all(), table
    # Pooled over the deciles, the clicks earned what was predicted to within a few percent.
    pooled = (table["realized_value_per_click"] * table["clicks"]).sum() / (
        table["predicted_value_per_click"] * table["clicks"]
    ).sum()
    assert pooled == pytest.approx(1.0, abs=0.1)
    # Predictions 60% too high realize far less than predicted.
    inflated = value_per_click_deciles(frame.assign(predicted_value_per_click=frame["predicted_value_per_click"] * 1.6))
    assert np.allclose(inflated["realized_over_predicted"], table["realized_over_predicted"] / 1.6)


def test_the_trailing_window_is_read_with_predictions_and_bids_of_the_day_before(tmp_path):
    store = Warehouse(str(tmp_path / "warehouse"))
    for n in range(3):
        day = _day(n)
        store.write_partition(
            tables.VALIDATED_REPORT,
            day,
            pd.DataFrame({"keyword_id": [1], "clicks": [n + 1], "conversion_value": [2.0 * (n + 1)], "cost": [1.0]}),
        )
        store.write_partition(
            tables.PREDICTIONS, day, pd.DataFrame({"keyword_id": [1, 2], "expected_value_per_click": [n, 9.0]})
        )
    store.write_partition(tables.BIDS, _day(0), pd.DataFrame({"keyword_id": [1], "bid": [0.5]}))
    frame = read_keyword_days(store, _day(-5), _day(2)).set_index(["date", "keyword_id"])
    # Days 1 and 2 have the predictions made the day before; day 0 has none; only day 1 has bids (made on day 0).
    assert sorted(frame.index.get_level_values("date").unique()) == [pd.Timestamp(_day(1)), pd.Timestamp(_day(2))]
    assert frame.loc[(pd.Timestamp(_day(2)), 1), "predicted_value_per_click"] == 1.0
    assert frame.loc[(pd.Timestamp(_day(2)), 1), "clicks"] == 3 and frame.loc[(pd.Timestamp(_day(2)), 2), "clicks"] == 0
    assert frame.loc[(pd.Timestamp(_day(1)), 1), "bid"] == 0.5 and np.isnan(
        frame.loc[(pd.Timestamp(_day(2)), 1), "bid"]
    )
