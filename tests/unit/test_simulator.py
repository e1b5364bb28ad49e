import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.schema import REPORT_COLUMN_NAMES
from daily_bids.simulator.market import AdMarketSimulator

DAY = dt.date(2025, 6, 3)


@pytest.fixture(scope="module")
def simulator():
    return AdMarketSimulator(seed=3, keywords=1000)


def test_a_day_is_the_same_for_the_same_seed_and_bids(simulator):
    pd.testing.assert_frame_equal(simulator.report(DAY), AdMarketSimulator(seed=3, keywords=1000).report(DAY))
    assert not simulator.report(DAY).equals(AdMarketSimulator(seed=4, keywords=1000).report(DAY))


def test_report_has_the_contract_columns_and_consistent_counts(simulator):
    report = simulator.report(DAY)
    assert tuple(report.columns) == REPORT_COLUMN_NAMES
    assert (report["impressions"] > 0).all()  # keywords without impressions have no row, as in real reports
    assert (report["clicks"] <= report["impressions"]).all()
    assert (report["conversions"] <= report["clicks"]).all()
    assert ((report["conversion_value"] > 0) == (report["conversions"] > 0)).all()
    assert report["keyword_id"].is_unique
    assert not report.duplicated(["ad_group", "keyword", "match_type"]).any()


def test_cost_per_click_never_exceeds_the_bid_in_force(simulator):
    bids = pd.Series(np.round(np.linspace(0.05, 6.0, 1000), 2), index=simulator.manual_bids().index)
    report = simulator.report(DAY, bids).set_index("keyword_id")
    clicked = report[report["clicks"] > 0]
    assert (clicked["cost"] <= clicked["clicks"] * bids.loc[clicked.index] + 1e-9).all()


def test_higher_bids_win_more_impressions_clicks_and_pay_more_per_click(simulator):
    manual = simulator.manual_bids()
    low = simulator.report(DAY, manual * 0.5)
    high = simulator.report(DAY, manual * 2.0)
    assert high["impressions"].sum() > 1.3 * low["impressions"].sum()
    assert high["clicks"].sum() > 1.3 * low["clicks"].sum()
    assert high["cost"].sum() / high["clicks"].sum() > low["cost"].sum() / low["clicks"].sum()


def test_volume_follows_the_seasons():
    summer, winter = dt.date(2025, 7, 15), dt.date(2025, 1, 15)
    volume = {}
    for day in (summer, winter):
        weekdays = [day + dt.timedelta(days=i) for i in range(7)]
        reports = pd.concat([AdMarketSimulator(seed=3, keywords=2000).report(d) for d in weekdays])
        volume[day] = reports.groupby(reports["campaign"].str.split().str[0])["impressions"].sum()
    assert volume[summer]["Kayaking"] > 1.5 * volume[winter]["Kayaking"]
    assert volume[winter]["Skiing"] > 1.5 * volume[summer]["Skiing"]


def test_a_larger_account_starts_with_the_same_keywords():
    small = AdMarketSimulator(seed=3, keywords=500).keyword_dimensions
    large = AdMarketSimulator(seed=3, keywords=1500).keyword_dimensions.iloc[:500]
    pd.testing.assert_frame_equal(small.astype(str), large.astype(str))


@pytest.mark.parametrize("size", [299, 10_000_001])
def test_account_size_is_bounded(size):
    with pytest.raises(ValueError, match="300 to 10000000"):
        AdMarketSimulator(seed=1, keywords=size)


def test_bids_for_unknown_keywords_are_refused(simulator):
    with pytest.raises(ValueError, match="keywords the account does not have"):
        simulator.report(DAY, pd.Series([1.0], index=[42]))


@pytest.mark.parametrize("rows", [1, 97, 10**6])
def test_a_report_in_pieces_is_the_report(simulator, rows):
    bids = pd.Series([0.05, 3.0], index=simulator.keyword_dimensions["keyword_id"].iloc[[3, 700]])
    pieces = list(simulator.report_pieces(DAY, bids, rows=rows))
    whole = simulator.report(DAY, bids)
    assert len(pieces) == -(-len(whole) // rows) and all(len(piece) <= rows for piece in pieces)
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), whole)
