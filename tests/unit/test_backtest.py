"""The closed-loop backtest and the bid landscape on the simulator, without Dagster."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.bidding.backtest import run_backtest
from daily_bids.bidding.landscape import LandscapeUnavailable, bid_context, landscape_for_day
from daily_bids.bidding.policy import BidPolicy
from daily_bids.simulator.auctions import share_of_bid
from support.scenarios import START


def test_the_landscape_learns_that_a_higher_bid_buys_more_and_dearer_clicks(account):
    simulator, reports, _, _ = account
    history = pd.concat(reports.values(), ignore_index=True)
    last = max(reports)
    landscape = landscape_for_day(history, last)
    assert 0.2 < landscape.click_elasticity < 1.5 and 0.5 < landscape.cost_elasticity < 2.0
    assert 0.8 < landscape.holdout_metrics["holdout_clicks_calibration"] < 1.25
    assert 0.8 < landscape.holdout_metrics["holdout_cost_calibration"] < 1.25
    context = bid_context(history, last)
    bids = context["bid_in_force"].to_numpy()[:, None] * np.array([0.7, 1.0, 1.3])
    clicks, cost_per_click = landscape.response(context, bids)
    assert np.allclose(clicks[:, 1], 1.0)  # relative to the clicks at the bid in force
    assert (np.diff(clicks, axis=1) >= 0).all() and (np.diff(cost_per_click, axis=1) >= 0).all()
    assert (cost_per_click <= bids + 1e-12).all()  # second price: never above the bid
    # Against the simulator's own curve: the learnt click response at +30% is close to the true one.
    latent = simulator.latent
    scale = latent["price_scale"][context["keyword_id"].to_numpy() - 100_001][:, None]
    true = share_of_bid(bids, scale).click_factor
    assert abs(np.median(clicks[:, 2]) - np.median(true[:, 2] / true[:, 1])) < 0.08


def test_days_that_do_not_say_their_bid_leave_the_landscape_as_it_was(account):
    """A report that leaves out the max CPC on some rows (one in 13 here): those days' clicks once counted as bought at
    a bid of zero, so a keyword whose clicks all fell on such days paid an infinite cost per click to bid, and the
    fit's mean of it overflowed into elasticities of NaN."""
    _, reports, _, _ = account
    history = pd.concat(reports.values(), ignore_index=True)
    whole = landscape_for_day(history, max(reports))
    holes = history.assign(max_cpc=history["max_cpc"].where(np.arange(len(history)) % 13 != 0))
    with_holes = landscape_for_day(holes, max(reports))
    for name in ("click_elasticity", "cost_elasticity", "mean_cpc_to_bid", "cost_level"):
        assert getattr(with_holes, name) == pytest.approx(getattr(whole, name), abs=0.1), name
    assert np.isfinite(list(with_holes.holdout_metrics.values())).all()


def test_no_landscape_from_bids_that_never_varied(account):
    simulator, _, _, _ = account
    unchanged = pd.concat([simulator.report(START + dt.timedelta(days=n)) for n in range(30)], ignore_index=True)
    with pytest.raises(LandscapeUnavailable, match="bids have not varied enough"):
        landscape_for_day(unchanged, START + dt.timedelta(days=29))
    with pytest.raises(LandscapeUnavailable, match="no max_cpc"):
        landscape_for_day(unchanged.drop(columns=["max_cpc"]), START + dt.timedelta(days=29))
    with pytest.raises(LandscapeUnavailable, match="no max_cpc"):  # a validated report of an export without it
        landscape_for_day(unchanged.assign(max_cpc=pd.NA), START + dt.timedelta(days=29))


def test_a_short_closed_loop_profit_optimal_is_not_worse_than_the_fixed_margin(account):
    simulator, reports, model, _ = account
    history = pd.concat(reports.values(), ignore_index=True)
    result = run_backtest(simulator, history, model, None, BidPolicy(), days=7, log=lambda message: None)
    totals = result.totals.set_index("policy")
    assert list(totals.index) == ["manual", "fixed_margin", "profit_optimal"]
    assert len(result.daily) == 3 * 7
    first = max(reports) + dt.timedelta(days=1)
    assert result.daily["date"].min() == pd.Timestamp(first)
    assert totals.loc["profit_optimal", "profit"] >= totals.loc["fixed_margin", "profit"]
    assert totals.loc["profit_optimal", "profit"] > totals.loc["manual", "profit"]
    assert (totals["bids_at_or_above_value"] == 0).all()
    optimal = result.daily[result.daily["policy"] == "profit_optimal"]
    assert optimal["landscape"].str.startswith("bid landscape").all()  # the advertiser's changes taught one
    assert (optimal["explored"] > 0).all()
    assert (result.daily.loc[result.daily["policy"] == "fixed_margin", "explored"] == 0).all()
    # The same market for every policy: manual bids replayed give the simulator's own reports.
    manual = result.daily[result.daily["policy"] == "manual"].iloc[0]
    assert manual["clicks"] == int(simulator.report(first)["clicks"].sum())


def test_the_context_averages_over_the_days_a_keyword_was_reported():
    """A keyword seen on two days of the week: its impression share and bid are theirs, not diluted by absent days,
    and its cost per click is measured against the bids that bought the clicks."""
    reports = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-01-01", "2025-01-03"]),
            "keyword_id": [1, 1],
            "clicks": [1, 3],
            "cost": [0.5, 3.0],
            "max_cpc": [1.0, 2.0],
            "search_impression_share": [0.6, 0.8],
        }
    )
    (row,) = bid_context(reports, dt.date(2025, 1, 7)).to_dict("records")
    assert row["base_impression_share"] == pytest.approx(0.7)
    assert (row["reference_bid"], row["bid_in_force"]) == (1.5, 2.0)
    assert row["paid_bid"] == pytest.approx((1 * 1.0 + 3 * 2.0) / 4)
    assert row["base_cpc_to_bid"] == pytest.approx(3.5 / 4 / row["paid_bid"])
    assert row["log1p_base_clicks"] == pytest.approx(np.log1p(4 / 7))


@pytest.mark.parametrize("seed", range(5))
def test_the_context_is_each_keywords_week_as_a_grouped_sum_says(seed):
    """A week of reports with keywords that start and stop, days without a report, and nulls: each keyword's context
    is what a plain grouped sum over its rows says (the mean bid and share of the days that have one, the latest
    bid, the clicks' sum and the click-weighted bid), whether the week comes as a frame or a day at a time."""
    rng = np.random.default_rng(seed)
    last = dt.date(2025, 3, 9)
    days = [last - dt.timedelta(days=n) for n in range(8)]  # a day before the window, which must not count
    frames = []
    for day in days:
        if rng.random() < 0.15:
            continue
        ids = rng.choice(np.arange(0, 3000, 3), size=int(rng.integers(1, 800)), replace=False)
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.Timestamp(day),
                    "keyword_id": ids,
                    "clicks": rng.poisson(2, len(ids)).astype(float),
                    "cost": rng.gamma(1.0, 1.5, len(ids)),
                    "max_cpc": np.round(rng.uniform(0.05, 3.0, len(ids)), 2),
                    "search_impression_share": rng.uniform(0.05, 1.0, len(ids)),
                }
            )
        )
    reports = pd.concat(frames, ignore_index=True)
    for column in ("clicks", "cost", "max_cpc", "search_impression_share"):
        reports.loc[rng.random(len(reports)) < 0.2, column] = np.nan
    _assert_context_is_the_grouped_sum(reports, last)


def _assert_context_is_the_grouped_sum(reports: pd.DataFrame, last: dt.date) -> None:
    """`bid_context` of the week through `last` (a Monday), given as a frame and a day at a time, against a plain
    grouped sum of its rows."""
    week = reports[reports["date"] > pd.Timestamp(last - dt.timedelta(days=7))].sort_values("date", kind="stable")
    # The cost per click and the bid that paid for it come from the rows that say their clicks, cost and bid.
    priced = week[["clicks", "cost", "max_cpc"]].notna().all(axis=1)
    grouped = week.assign(
        clicks_times_bid=(week["clicks"] * week["max_cpc"]).where(priced),
        priced_clicks=week["clicks"].where(priced),
        priced_cost=week["cost"].where(priced),
    ).groupby("keyword_id")
    clicks, priced_clicks = grouped["clicks"].sum(), grouped["priced_clicks"].sum()
    expected = pd.DataFrame(
        {
            "bid_in_force": grouped["max_cpc"].last(),  # the last non-null
            "reference_bid": grouped["max_cpc"].mean(),
            "log1p_base_clicks": np.log1p(clicks / 7),
            "paid_bid": grouped["clicks_times_bid"].sum() / priced_clicks.where(priced_clicks > 0),
            "base_impression_share": grouped["search_impression_share"].mean(),
        }
    )
    expected["base_cpc_to_bid"] = (
        grouped["priced_cost"].sum() / priced_clicks.where(priced_clicks > 0) / expected["paid_bid"]
    )
    # Every ratio is a number or unknown: clicks on days without a bid never make a bid of zero.
    assert not np.isinf(expected["base_cpc_to_bid"]).any()
    expected = expected[expected["reference_bid"] > 0]
    by_day = {day.date(): rows for day, rows in reports.groupby("date")}
    for given in (reports, by_day.get):
        context = bid_context(given, last).set_index("keyword_id")
        assert list(context.index) == sorted(expected.index) and (context["day_of_week"] == 0.0).all()  # a Monday
        pd.testing.assert_frame_equal(context[expected.columns], expected, check_names=False, rtol=1e-12)


def test_the_context_takes_in_keywords_that_later_days_bring():
    """A week whose first day has five keywords and whose later days bring thousands more, in no order, between and
    around the first ones: more than the totals have room for, so they grow while the week is added."""
    rng = np.random.default_rng(0)
    last = dt.date(2025, 3, 9)
    days = {6: [40, 10, 50, 20, 30], 4: rng.permutation(9_000), 0: rng.permutation(np.arange(0, 12_000, 2))}
    frames = [
        pd.DataFrame(
            {
                "date": pd.Timestamp(last - dt.timedelta(days=back)),
                "keyword_id": ids,
                "clicks": rng.poisson(2, len(ids)).astype(float),
                "cost": rng.gamma(1.0, 1.5, len(ids)),
                "max_cpc": np.round(rng.uniform(0.05, 3.0, len(ids)), 2),
                "search_impression_share": rng.uniform(0.05, 1.0, len(ids)),
            }
        )
        for back, ids in days.items()
    ]
    _assert_context_is_the_grouped_sum(pd.concat(frames, ignore_index=True), last)
