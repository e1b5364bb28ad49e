"""The value per click as an estimate with its uncertainty (daily_bids.models.value_per_click), judged against the
truth: the simulator's true values in both markets, and synthetic accounts whose structure is known."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.models.value_per_click import estimate_value_per_click
from daily_bids.simulator.market import AdMarketSimulator

FIRST = dt.date(2025, 3, 1)


def _totals(simulator: AdMarketSimulator, days: int) -> pd.DataFrame:
    """Each keyword's totals over `days` reports at the advertiser's manual bids, with its campaign and ad group."""
    reports = pd.concat([simulator.report(FIRST + dt.timedelta(days=n)) for n in range(days)], ignore_index=True)
    sums = reports.groupby("keyword_id")[["clicks", "conversions", "conversion_value"]].sum().astype("float64")
    dimensions = simulator.keyword_dimensions.set_index("keyword_id")[["campaign", "ad_group"]]
    return dimensions.join(sums).fillna(0.0).reset_index()


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
    assert 0.7 <= below <= 0.9  # nominally 0.8: the 20% quantile


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
    `keyword_spread`); 200 clicks each, and a value of 50 a conversion."""
    rng = np.random.default_rng(seed)
    group_rate = rng.uniform(0.01, 0.08, 400).repeat(5)
    rate = np.clip(group_rate * rng.lognormal(0.0, keyword_spread, 2000) if keyword_spread else group_rate, 0, 1)
    clicks = np.full(2000, 200.0)
    conversions = rng.binomial(200, rate).astype("float64")
    return pd.DataFrame(
        {
            "keyword_id": np.arange(2000),
            "campaign": "one",
            "ad_group": np.arange(2000) // 5,
            "clicks": clicks,
            "conversions": conversions,
            "conversion_value": conversions * 50.0,
        }
    )


def test_how_strongly_keywords_pool_is_learnt_from_how_much_they_differ():
    _, alike = estimate_value_per_click(_synthetic(keyword_spread=0.0))
    _, different = estimate_value_per_click(_synthetic(keyword_spread=0.8))
    alike_clicks, different_clicks = alike[-1].rate_prior_clicks, different[-1].rate_prior_clicks
    assert alike[-1].level == "keyword"
    assert alike_clicks > 2_000  # keywords that never differ: their ad group says it all
    assert different_clicks < 100  # keywords that differ a lot: their own clicks say most


def test_bad_totals_are_refused():
    totals = _synthetic(0.5)
    with pytest.raises(ValueError, match="conversions ≤ clicks"):
        estimate_value_per_click(totals.assign(conversions=totals["clicks"] + 1))
    with pytest.raises(ValueError, match="no conversions"):
        estimate_value_per_click(totals.assign(conversions=0.0, conversion_value=0.0))
    with pytest.raises(ValueError, match="between 0 and 0.5"):
        estimate_value_per_click(totals, quantile=0.7)
