"""The value per click as an estimate with its uncertainty (daily_bids.models.value_per_click), judged against the
truth: the simulator's true values in both markets, and synthetic accounts whose structure is known."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.models.value_per_click import POOLING_LEVELS, TOTAL_COLUMNS, add_reports, estimate_value_per_click
from daily_bids.simulator.market import AdMarketSimulator

FIRST = dt.date(2025, 3, 1)


def _totals(simulator: AdMarketSimulator, days: int) -> pd.DataFrame:
    """Each keyword's totals over `days` reports at the advertiser's manual bids, every keyword of the account in its
    order (those never shown with zeros)."""
    reports = [simulator.report(FIRST + dt.timedelta(days=n)) for n in range(days)]
    dimensions = simulator.keyword_dimensions.set_index("keyword_id")[list(POOLING_LEVELS)].astype(str)
    totals = add_reports(None, reports).set_index("keyword_id")[list(TOTAL_COLUMNS)]
    return dimensions.join(totals).fillna(0.0).reset_index()


@pytest.fixture(scope="module", params=["share_of_bid", "second_price"])
def four_weeks(request):
    simulator = AdMarketSimulator(seed=5, keywords=2000, market=request.param)
    totals = _totals(simulator, 28)
    estimates, poolings = estimate_value_per_click(totals, quantile=0.2)
    return simulator, totals, estimates, poolings


def test_pooling_is_closer_to_the_true_value_than_a_keywords_own_ratio_or_a_fixed_prior(four_weeks):
    simulator, totals, estimates, _ = four_weeks
    truth, clicks = simulator.true_value_per_click, totals["clicks"].to_numpy()
    seen = clicks > 0
    own = totals["conversion_value"].to_numpy()[seen] / clicks[seen]
    group = totals.groupby("ad_group", observed=True)[["clicks", "conversion_value"]].transform("sum")
    one_click_prior = (  # the ratio shrunk towards the ad group by the weight of one click
        (totals["conversion_value"] + group["conversion_value"] / group["clicks"].clip(lower=1)) / (clicks + 1.0)
    ).to_numpy()[seen]
    pooled = estimates["value_per_click"].to_numpy()[seen]

    def error(estimate):  # per click: what a wrong value costs grows with the clicks bought at it
        return np.average(np.abs(estimate - truth[seen]), weights=clicks[seen])

    assert error(pooled) < 0.85 * error(own) and error(pooled) < 0.85 * error(one_click_prior)


def test_the_conservative_quantile_is_below_the_true_value_about_as_often_as_it_says(four_weeks):
    simulator, _, estimates, _ = four_weeks
    below = (estimates["value_per_click_low"].to_numpy() <= simulator.true_value_per_click).mean()
    assert 0.76 <= below <= 0.86  # nominally 0.8: the 20% quantile


def test_more_clicks_give_a_tighter_estimate_and_a_truer_one(four_weeks):
    simulator, totals, estimates, _ = four_weeks
    clicks, ratio = (
        totals["clicks"].to_numpy(),
        estimates["value_per_click"].to_numpy() / simulator.true_value_per_click,
    )
    few, many = clicks < 10, clicks >= 200
    assert np.median(estimates["value_per_click_cv"][many]) < 0.5 * np.median(estimates["value_per_click_cv"][few])
    spread = {
        name: np.subtract(*np.quantile(np.log(ratio[rows]), [0.9, 0.1]))
        for name, rows in [("few", few), ("many", many)]
    }
    assert spread["many"] < 0.5 * spread["few"]


def _synthetic(keyword_spread: float, seed: int = 0) -> pd.DataFrame:
    """400 ad groups of 5 keywords: an ad group's conversion rate, and its keywords' around it (lognormal with
    `keyword_spread`); 200 clicks each, and a value of 50 a conversion, each on a day of its own."""
    rng = np.random.default_rng(seed)
    group_rate = rng.uniform(0.01, 0.08, 400).repeat(5)
    rate = np.clip(group_rate * rng.lognormal(0.0, keyword_spread, 2000) if keyword_spread else group_rate, 0, 1)
    clicks = np.full(2000, 200.0)
    conversions = rng.binomial(200, rate).astype("float64")
    return pd.DataFrame(
        {
            "keyword_id": np.arange(2000),
            "match_type": "exact",
            "campaign": "one",
            "ad_group": np.arange(2000) // 5,
            "clicks": clicks,
            "conversions": conversions,
            "conversion_value": conversions * 50.0,
            "conversion_days": conversions,
            "value_square_per_conversion": conversions * 50.0**2,
        }
    )


def test_how_strongly_keywords_pool_is_learnt_from_how_much_they_differ():
    _, alike = estimate_value_per_click(_synthetic(keyword_spread=0.0))
    _, different = estimate_value_per_click(_synthetic(keyword_spread=0.8))
    alike_clicks, different_clicks = alike[-1].rate_prior_clicks, different[-1].rate_prior_clicks
    assert alike[-1].level == "keyword"
    assert alike_clicks > 2_000  # keywords that never differ: their ad group says it all
    assert different_clicks < 100  # keywords that differ a lot: their own clicks say most


def test_a_level_that_explains_nothing_is_learnt_as_such_when_its_keywords_differ():
    """Ad groups drawn with no effect of their own, whose keywords differ and one of which holds most of the group's
    clicks: the group's rate then differs from the campaign's by its keywords' differences alone, and the ad group
    level must not be taken for an informative one (which would pull each keyword towards its few neighbours)."""
    rng = np.random.default_rng(4)
    rate = np.clip(0.03 * rng.lognormal(0.0, 0.7, 2000), 0, 1)
    clicks = np.where(np.arange(2000) % 5 == 0, 2_000.0, 50.0)  # the first keyword of each group dominates it
    conversions = rng.binomial(clicks.astype(int), rate).astype("float64")
    totals = _synthetic(0.0).assign(
        clicks=clicks,
        conversions=conversions,
        conversion_value=conversions * 50.0,
        conversion_days=conversions,
        value_square_per_conversion=conversions * 50.0**2,
    )
    estimates, poolings = estimate_value_per_click(totals)
    by_level = {pooling.level: pooling.rate_prior_clicks for pooling in poolings}
    assert by_level["ad_group"] > 5 * by_level["keyword"]  # groups pool far more than keywords do
    small = clicks == 50.0
    pooled_error = np.abs(np.log(estimates["conversion_rate"].to_numpy()[small] / rate[small]))
    # The small keywords are pulled towards the account's rate, not towards the big keyword beside them: that
    # neighbour says nothing of them here.
    neighbour = np.repeat(conversions[::5] / clicks[::5], 5)[small]
    account = conversions.sum() / clicks.sum()
    assert np.median(pooled_error) < np.median(np.abs(np.log(np.clip(neighbour, 1e-4, 1) / rate[small])))
    assert np.corrcoef(estimates["conversion_rate"].to_numpy()[small], neighbour)[0, 1] < 0.3
    assert 0.5 * account < np.median(estimates["conversion_rate"].to_numpy()[small]) < 2 * account


def test_bad_totals_are_refused():
    totals = _synthetic(0.5)
    with pytest.raises(ValueError, match="conversions ≤ clicks"):
        estimate_value_per_click(totals.assign(conversions=totals["clicks"] + 1))
    with pytest.raises(ValueError, match="no conversions"):
        estimate_value_per_click(totals.assign(conversions=0.0, conversion_value=0.0))
    with pytest.raises(ValueError, match="between 0 and 0.5"):
        estimate_value_per_click(totals, quantile=0.7)


def test_totals_added_a_day_at_a_time_equal_the_totals_of_all_days_at_once():
    from daily_bids.models.value_per_click import add_reports

    simulator = AdMarketSimulator(seed=3, keywords=300)
    reports = [simulator.report(FIRST + dt.timedelta(days=n)) for n in range(6)]
    daily = None
    for report in reports:
        daily = add_reports(daily, [report])
    at_once = add_reports(None, reports)
    pd.testing.assert_frame_equal(daily, at_once)
    expected = pd.concat(reports).groupby("keyword_id")[["clicks", "conversions", "conversion_value"]].sum()
    assert np.allclose(at_once.set_index("keyword_id")[expected.columns], expected.astype("float64"))
    # A keyword moved to another ad group keeps its history and takes the ad group it was last reported in.
    moved = reports[0].head(1).assign(ad_group="Elsewhere")
    assert add_reports(at_once, [moved]).set_index("keyword_id").loc[moved["keyword_id"].iloc[0], "ad_group"] == (
        "Elsewhere"
    )
    # A report without conversions adds its clicks, and the conversions stay what they were, not zero.
    clicks_only = reports[0].drop(columns=["conversions", "conversion_value"])
    added = add_reports(at_once, [clicks_only]).set_index("keyword_id")
    assert np.allclose(added["conversions"], at_once.set_index("keyword_id")["conversions"])
    assert added["conversions"].notna().all()
    assert add_reports(None, [clicks_only])["conversions"].isna().all()


def test_the_keyword_value_table_is_the_same_built_incrementally_or_rebuilt(tmp_path):
    """Partitions written a day at a time after a first run equal those of one run over every day, and a day whose
    totals are missing is rebuilt from every report before it."""
    from daily_bids.models.value_per_click import value_days
    from daily_bids.storage.warehouse import Warehouse

    simulator = AdMarketSimulator(seed=3, keywords=300)
    days = [FIRST + dt.timedelta(days=n) for n in range(8)]
    stores = {name: Warehouse(str(tmp_path / name)) for name in ("incremental", "at_once")}
    for store in stores.values():
        for day in days:
            store.write_partition("reports", day, simulator.report(day))
    incremental = stores["incremental"]
    for part in (days[:3], days[3:5], days[5:]):
        for value_day in value_days(incremental, "reports", "keyword_value", part, log=lambda message: None):
            incremental.write_partition("keyword_value", value_day.day, value_day.table)
    logged = []
    for value_day in value_days(stores["at_once"], "reports", "keyword_value", days[4:], log=logged.append):
        stores["at_once"].write_partition("keyword_value", value_day.day, value_day.table)
    assert "adding up 4 report days" in logged[0]
    for day in days[4:]:
        pd.testing.assert_frame_equal(
            incremental.read_partitions("keyword_value", [day]),
            stores["at_once"].read_partitions("keyword_value", [day]),
        )
    last = incremental.read_partitions("keyword_value", [days[-1]])
    assert last["value_per_click"].notna().all() and (last["value_per_click_cv"] > 0).all()


def test_reports_without_conversions_give_no_posterior_and_say_why(tmp_path):
    from daily_bids.models.value_per_click import value_days
    from daily_bids.storage.warehouse import Warehouse

    simulator, store = AdMarketSimulator(seed=3, keywords=300), Warehouse(str(tmp_path))
    store.write_partition("reports", FIRST, simulator.report(FIRST).drop(columns=["conversions", "conversion_value"]))
    (only,) = value_days(store, "reports", "keyword_value", [FIRST], log=lambda message: None)
    assert "carry no conversions" in only.note and only.table["value_per_click"].isna().all()
    assert (only.table["clicks"] >= 0).all() and len(only.table) == len(simulator.report(FIRST))


def test_how_much_one_conversions_value_varies_is_read_off_the_days_keywords_converted_on():
    """The simulator draws a day's conversion value as Gamma(4 × conversions): each conversion's value varies with a
    squared coefficient of variation of 1/4 around its keyword's order value."""
    from daily_bids.models.value_per_click import _within_value_cv2

    totals = _totals(AdMarketSimulator(seed=5, keywords=2000), 60)
    within = _within_value_cv2(*(totals[column].to_numpy(dtype="float64") for column in TOTAL_COLUMNS[1:]))
    assert within == pytest.approx(0.25, rel=0.15)


def test_the_value_chart_shows_each_keyword_and_its_conservative_value(tmp_path):
    from daily_bids.models.value_per_click import posterior, value_per_click_png

    table, _ = posterior(_totals(AdMarketSimulator(seed=5, keywords=300), 14))
    png = value_per_click_png(table, 0.1)
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    (tmp_path / "value.png").write_bytes(png)
