"""The value per click a Bayesian who knew the simulated market's priors would estimate: a bound, not a product.

The simulator draws each keyword's conversion rate as Beta(2, 60) times its match type's intent, and its order
value as lognormal around 80 (`AdMarketSimulator._latent_block`); a day's conversion value is gamma around the
order value with shape 4 per conversion (`AdMarketSimulator.report`). Knowing those priors exactly, the posterior
of a keyword's rate and order value given its whole history follows on a grid. No estimator that sees only the
keywords' own clicks, conversions and values can do better on average, so the backtest replayed with it
(`Knowledge(ideal_posterior=True)`) shows how much of the value estimate's cost is the data's, and how much the
estimator's.

The posterior is returned as the product's is (mean and coefficient of variation of the value per click), so the
bids treat it exactly as they treat the product's own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln

# The simulator's priors (daily_bids.simulator.market): Beta(2, 60) × intent, lognormal(log 80, 0.6), and a day's
# conversion value Gamma(4 × conversions, order value / 4).
RATE_PRIOR = (2.0, 60.0)
INTENT_BY_MATCH_TYPE = (1.3, 1.0, 0.7)
ORDER_VALUE_PRIOR = (np.log(80.0), 0.6)
VALUE_SHAPE_PER_CONVERSION = 4.0
GRID = 600


def ideal_value_posterior(totals: pd.DataFrame, match_type_index: np.ndarray) -> pd.DataFrame:
    """Per keyword of `totals` (`keyword_id`, clicks, conversions, conversion_value, from `add_reports`), the exact
    posterior mean and coefficient of variation of its value per click under the simulator's priors.
    `match_type_index` gives each row's match type as the simulator numbers them."""
    clicks = np.nan_to_num(totals["clicks"].to_numpy(dtype="float64"))[:, None]
    conversions = np.nan_to_num(totals["conversions"].to_numpy(dtype="float64"))[:, None]
    value = np.nan_to_num(totals["conversion_value"].to_numpy(dtype="float64"))[:, None]
    intent = np.asarray(INTENT_BY_MATCH_TYPE)[np.asarray(match_type_index)][:, None]

    # The rate p = intent × x with x ~ Beta(2, 60), on a grid of x; binomial likelihood of the conversions.
    x = (np.arange(GRID) + 0.5) / GRID * 0.4
    a, b = RATE_PRIOR
    log_prior_x = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - betaln(a, b)
    rate = np.clip(intent * x[None, :], 1e-9, 1 - 1e-9)
    log_post = log_prior_x[None, :] + conversions * np.log(rate) + (clicks - conversions) * np.log1p(-rate)
    rate_mean, rate_cv2 = _moments(log_post, rate)

    # The order value m ~ lognormal; the summed value of N conversions is Gamma(4N, m / 4).
    mu, sigma = ORDER_VALUE_PRIOR
    log_m = mu + sigma * np.linspace(-5.0, 5.0, GRID)
    shape = VALUE_SHAPE_PER_CONVERSION * conversions
    log_post = (
        -0.5 * ((log_m[None, :] - mu) / sigma) ** 2
        - shape * log_m[None, :]
        - VALUE_SHAPE_PER_CONVERSION * value / np.exp(log_m)[None, :]
    )
    value_mean, value_cv2 = _moments(log_post, np.broadcast_to(np.exp(log_m), log_post.shape))

    # Rate and order value are independent a posteriori (their likelihoods factor), so the moments multiply.
    cv = np.sqrt((1.0 + rate_cv2) * (1.0 + value_cv2) - 1.0)
    return pd.DataFrame(
        {"value_per_click": (rate_mean * value_mean)[:, 0], "value_per_click_cv": cv[:, 0]},
        index=totals["keyword_id"].to_numpy(),
    )


def _moments(log_density: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and squared coefficient of variation of `values` under each row's unnormalized log density (a
    uniform grid in the variable or its log, whose spacing cancels)."""
    weights = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    mean = (weights * values).sum(axis=1, keepdims=True)
    second = (weights * values**2).sum(axis=1, keepdims=True)
    return mean, second / mean**2 - 1.0
