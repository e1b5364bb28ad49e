"""What a click on each keyword is worth, as an estimate with its uncertainty: empirical Bayes over the hierarchy.

Most keywords convert a few times a month, so a keyword's own ratio of value to clicks is mostly noise. Each keyword's
value per click is estimated from its whole history of clicks, conversions and conversion value, pooled towards its
ad group, which is pooled towards its campaign, which is pooled towards the account. How strongly each level pools is
learnt from the data (method of moments), never a fixed prior weight:

- The conversion rate is beta-binomial: a unit's rate is drawn around its parent's with an intra-class correlation
  `rho` estimated from how much more the units' observed rates spread than their clicks alone explain. The prior
  strength is 1/rho - 1 clicks; the posterior is Beta(prior + conversions, prior + clicks - conversions).
- The value of a conversion is gamma: each conversion's value varies around its keyword's mean with a squared
  coefficient of variation `within`, and keywords' means vary around their parent's with `between`. Both are read
  off a regression of the squared relative deviations of the keywords' mean values on 1 / conversions. A keyword's
  mean is shrunk towards its parent's with the weight of `within / between` conversions.

The value per click is the product of the two posterior means; its spread combines theirs (a lognormal
approximation), which gives a conservative quantile that a bid can be held below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

# The rates' intra-class correlation is kept inside these bounds: 0 would pool nothing, 1 everything.
RHO_BOUNDS = (1e-5, 0.5)
# The between-keyword squared CV of a conversion's value is kept above this: at 0 every keyword would get its
# parent's value whatever its own history says.
MIN_BETWEEN = 1e-3


@dataclass(frozen=True)
class Pooling:
    """How strongly one level pools: a unit's conversion rate weighs `rate_prior_clicks` clicks of its parent's rate,
    and its value per conversion `value_prior_conversions` conversions of its parent's."""

    level: str
    rate_prior_clicks: float
    value_prior_conversions: float


def estimate_value_per_click(
    totals: pd.DataFrame, levels: Sequence[str] = ("campaign", "ad_group"), quantile: float = 0.2
) -> tuple[pd.DataFrame, list[Pooling]]:
    """Each keyword's posterior value per click from its totals.

    `totals` has a row per keyword: `keyword_id`, the `levels` columns (outermost first) and its whole history's
    `clicks`, `conversions` and `conversion_value`. Returns (estimates, the pooling learnt at each level, outermost
    first, the keyword level last). The estimates are a row per keyword: `conversion_rate`, `value_per_conversion`,
    `value_per_click` (posterior means), `value_per_click_cv` (its coefficient of variation) and
    `value_per_click_low`, the posterior `quantile` of the value per click."""
    if not 0.0 < quantile < 0.5:
        raise ValueError(f"the conservative quantile must be between 0 and 0.5, got {quantile}")
    clicks = totals["clicks"].to_numpy(dtype="float64")
    conversions = totals["conversions"].to_numpy(dtype="float64")
    value = totals["conversion_value"].to_numpy(dtype="float64")
    if (conversions > clicks).any() or (clicks < 0).any() or (value < 0).any():
        raise ValueError("keyword totals need 0 ≤ conversions ≤ clicks and a conversion value of 0 or more")
    if conversions.sum() == 0:
        raise ValueError("no conversions in the keyword totals: a value per click cannot be estimated from them")
    # Each parent's pooled sums, per row: its mean is numerator / denominator (the account's to begin with). A unit
    # is compared with its parent without itself (leave one out), so that a unit with much data does not pull its
    # parent's mean onto its own and hide how far units truly spread.
    rate_sums = (np.full(len(totals), conversions.sum()), np.full(len(totals), clicks.sum()))
    value_sums = (np.full(len(totals), value.sum()), np.full(len(totals), conversions.sum()))
    poolings = []
    keys = [totals[column].astype(str).to_numpy() for column in levels] + [totals["keyword_id"].to_numpy()]
    for depth, name in enumerate([*levels, "keyword"]):
        unit = _unit_codes(keys[: depth + 1])
        unit_clicks, unit_conversions, unit_value = (np.bincount(unit, weights=w) for w in (clicks, conversions, value))
        rate_num, rate_den = (_first_of_each(unit, s) for s in rate_sums)
        value_num, value_den = (_first_of_each(unit, s) for s in value_sums)
        prior_clicks = _rate_prior_clicks(
            unit_clicks, unit_conversions, *_without(rate_num, rate_den, unit_conversions, unit_clicks)
        )
        prior_conversions = _value_prior_conversions(
            unit_conversions, unit_value, *_without(value_num, value_den, unit_value, unit_conversions)
        )
        poolings.append(Pooling(name, prior_clicks, prior_conversions))
        parent_rate, parent_value = rate_num / rate_den, value_num / value_den
        rate_sums = (
            (prior_clicks * parent_rate + unit_conversions)[unit],
            (prior_clicks + unit_clicks)[unit],
        )
        value_sums = (
            (prior_conversions * parent_value + unit_value)[unit],
            (prior_conversions + unit_conversions)[unit],
        )
    rate, rate_strength = rate_sums[0] / rate_sums[1], rate_sums[1]
    mean_value, value_weight = value_sums[0] / value_sums[1], value_sums[1]
    within = _within_value_cv2(conversions, value, mean_value)
    # Posterior squared coefficients of variation: Beta(a, b) for the rate; the value's mean from its conversions.
    rate_cv2 = (1.0 - rate) / (rate * (rate_strength + 1.0))
    value_cv2 = within / value_weight
    cv2 = (1.0 + rate_cv2) * (1.0 + value_cv2) - 1.0
    sigma = np.sqrt(np.log1p(cv2))
    value_per_click = rate * mean_value
    low = value_per_click * np.exp(ndtri(quantile) * sigma - sigma**2 / 2.0)
    estimates = pd.DataFrame(
        {
            "keyword_id": totals["keyword_id"].to_numpy(),
            "conversion_rate": rate,
            "value_per_conversion": mean_value,
            "value_per_click": value_per_click,
            "value_per_click_cv": np.sqrt(cv2),
            "value_per_click_low": low,
        }
    )
    return estimates, poolings


def _unit_codes(keys: list[np.ndarray]) -> np.ndarray:
    """A code per row for the unit its keys name (a campaign, an ad group within it, a keyword within that)."""
    frame = pd.DataFrame({str(number): key for number, key in enumerate(keys)})
    return frame.groupby(list(frame.columns), sort=False, observed=True).ngroup().to_numpy()


def _without(
    numerator: np.ndarray, denominator: np.ndarray, own: np.ndarray, own_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A parent's pooled mean without one unit's own sums, and the weight (clicks or conversions) it rests on; the
    whole parent's where nothing else is left."""
    rest = denominator - own_weight
    left = rest > 1e-9
    mean = np.where(left, (numerator - own) / np.where(left, rest, 1.0), numerator / denominator)
    return mean, np.where(left, rest, denominator)


def _first_of_each(unit: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per unit, the value its rows carry (every row of a unit has its parent's, the same)."""
    out = np.empty(unit.max() + 1 if len(unit) else 0)
    out[unit] = values
    return out


def _rate_prior_clicks(
    clicks: np.ndarray, conversions: np.ndarray, parent_rate: np.ndarray, parent_clicks: np.ndarray
) -> float:
    """The units' prior strength in clicks, 1/rho - 1, from the beta-binomial's method of moments: the observed
    rates' squared deviations from their parents' rates, less what their clicks alone explain, relative to the most
    they could spread."""
    seen = clicks >= 2
    if not seen.any():
        return 1.0 / RHO_BOUNDS[0] - 1.0
    n, x, m, w = clicks[seen], conversions[seen], parent_rate[seen], parent_clicks[seen]
    bernoulli = m * (1.0 - m)
    # What the unit's clicks explain, and what the noise of its parent's own estimate does.
    excess = ((x / n - m) ** 2 - bernoulli / n - bernoulli / w) * n
    possible = bernoulli * (n - 1.0)
    rho = float(np.clip(excess.sum() / max(possible.sum(), 1e-12), *RHO_BOUNDS))
    return 1.0 / rho - 1.0


def _value_prior_conversions(
    conversions: np.ndarray, value: np.ndarray, parent_value: np.ndarray, parent_conversions: np.ndarray
) -> float:
    """The units' prior strength in conversions, within / between: a weighted regression of the squared relative
    deviations of the units' mean values from their parents' on 1 / conversions (intercept: between; slope:
    within)."""
    seen = (conversions >= 1) & (parent_value > 0)
    if seen.sum() < 3:
        return 1.0 / MIN_BETWEEN
    c = conversions[seen]
    deviation = (value[seen] / c / parent_value[seen] - 1.0) ** 2
    # The unit's conversions and its parent's both add noise of `within` per conversion.
    design = np.column_stack([np.ones_like(c), 1.0 / c + 1.0 / parent_conversions[seen]])
    weights = np.sqrt(c)  # a unit with more conversions has the less noisy deviation
    (between, within), *_ = np.linalg.lstsq(design * weights[:, None], deviation * weights, rcond=None)
    between = max(float(between), MIN_BETWEEN)
    # A sliver of prior even when conversions' values never vary: a unit without conversions takes its parent's.
    return max(float(within) / between, 1e-6)


def _within_value_cv2(conversions: np.ndarray, value: np.ndarray, mean_value: np.ndarray) -> float:
    """The squared coefficient of variation of one conversion's value around its keyword's mean: the mean over
    keywords with conversions of c · (v̄/μ - 1)², which is within in expectation when μ is known."""
    seen = (conversions >= 1) & (mean_value > 0)
    if not seen.any():
        return 1.0
    c = conversions[seen]
    return float(np.mean(c * (value[seen] / c / mean_value[seen] - 1.0) ** 2))
