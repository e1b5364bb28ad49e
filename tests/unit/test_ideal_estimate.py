"""The posterior under the simulated market's own priors (daily_bids.simulator.ideal_estimate): the bound the backtest
compares the product's value estimate with must be right at both ends, with no history and with a long one."""

import numpy as np
import pandas as pd

from daily_bids.simulator.ideal_estimate import INTENT_BY_MATCH_TYPE, ideal_value_posterior


def _totals(clicks, conversions, value) -> pd.DataFrame:
    return pd.DataFrame(
        {"keyword_id": np.arange(len(clicks)), "clicks": clicks, "conversions": conversions, "conversion_value": value}
    )


def test_a_keyword_without_history_gets_the_priors_mean_and_spread():
    posterior = ideal_value_posterior(_totals([0.0, 0.0], [0.0, 0.0], [0.0, 0.0]), np.array([0, 2]))
    order_value_mean, order_value_cv2 = 80.0 * np.exp(0.6**2 / 2), np.expm1(0.6**2)
    rate_mean = 2.0 / 62.0
    rate_cv2 = (2.0 * 60.0 / (62.0**2 * 63.0)) / rate_mean**2
    expected_mean = np.array(INTENT_BY_MATCH_TYPE)[[0, 2]] * rate_mean * order_value_mean
    np.testing.assert_allclose(posterior["value_per_click"], expected_mean, rtol=0.01)
    expected_cv = np.sqrt((1 + rate_cv2) * (1 + order_value_cv2) - 1)
    np.testing.assert_allclose(posterior["value_per_click_cv"], expected_cv, rtol=0.02)


def test_a_long_history_finds_the_true_value_and_is_sure_of_it():
    rng = np.random.default_rng(3)
    true_rate, true_order_value, clicks = 0.05, 120.0, 200_000
    conversions = rng.binomial(clicks, true_rate)
    value = rng.gamma(4.0 * conversions, true_order_value / 4.0)
    posterior = ideal_value_posterior(_totals([clicks], [conversions], [value]), np.array([1]))
    assert abs(posterior["value_per_click"].iloc[0] / (true_rate * true_order_value) - 1) < 0.03
    assert posterior["value_per_click_cv"].iloc[0] < 0.03


def test_more_conversions_at_the_same_rate_tighten_the_posterior():
    clicks = np.array([100.0, 1_000.0, 10_000.0])
    posterior = ideal_value_posterior(_totals(clicks, clicks * 0.04, clicks * 0.04 * 90.0), np.array([1, 1, 1]))
    assert np.all(np.diff(posterior["value_per_click_cv"].to_numpy()) < 0)
