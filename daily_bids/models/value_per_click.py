"""What a click on each keyword is worth, as an estimate with its uncertainty: empirical Bayes over the hierarchy.

Most keywords convert a few times a month, so a keyword's own ratio of value to clicks is mostly noise. Each keyword's
value per click is estimated from its whole history of clicks, conversions and conversion value, pooled towards its
ad group, which is pooled towards its campaign, which is pooled towards the account (`POOLING_LEVELS`). How strongly
each level pools is learnt from the data (method of moments), never a fixed prior weight.

- The conversion rate is beta-binomial: a unit's rate is drawn around its parent's with an intra-class correlation
  `rho` estimated from how much more the units' observed rates spread than their clicks alone explain. The prior
  strength is 1/rho - 1 clicks; the posterior is Beta(prior + conversions, prior + clicks - conversions).
- The value of a conversion is gamma: each conversion's value varies around its keyword's mean with a squared
  coefficient of variation `within`, read off the days each keyword converted on (their spread around the keyword's
  mean, `value_square_per_conversion`), and units' means vary around their parent's with `between`, what is left of
  the units' spread once `within` is accounted for. A unit's mean is shrunk towards its parent's with the weight of
  `within / between` conversions.

The value per click is the product of the two posterior means. Its spread combines theirs, each with the uncertainty
of the parent it was shrunk towards (a keyword with no history of its own is as uncertain as its ad group's mean, not
as certain), under a lognormal approximation, which gives a conservative quantile (`conservative_value`) that a bid's
cost per click is held below.

The totals are kept incrementally (`add_reports`): each day adds its report to the day before's, so a keyword's whole
history costs one row, however long it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from daily_bids.storage.warehouse import Warehouse

# The rates' intra-class correlation is kept inside these bounds: 0 would pool nothing, 1 everything.
RHO_BOUNDS = (1e-5, 0.5)
# The between-unit squared CV of a conversion's value is kept above this: at 0 every keyword would get its
# parent's value whatever its own history says.
MIN_BETWEEN = 1e-3
# The squared CV of one conversion's value when no keyword has converted on two days yet to measure it: an order
# value that varies about as much as its mean.
DEFAULT_WITHIN = 1.0

# The report's columns a keyword is pooled by, outermost first (the keyword itself is the last level).
POOLING_LEVELS = ("campaign", "ad_group")
# Each keyword's whole-history totals the estimate reads: its clicks, conversions and conversion value, the days it
# converted on, and the sum over those days of value² / conversions (how a day's value spreads around the mean).
TOTAL_COLUMNS = ("clicks", "conversions", "conversion_value", "conversion_days", "value_square_per_conversion")
POSTERIOR_COLUMNS = ("conversion_rate", "value_per_conversion", "value_per_click", "value_per_click_cv")


class NoConversionsError(ValueError):
    """The totals have no conversion (or the reports carry none): no value per click can be estimated."""


@dataclass(frozen=True)
class Pooling:
    """How strongly one level pools: a unit's conversion rate weighs `rate_prior_clicks` clicks of its parent's rate,
    and its value per conversion `value_prior_conversions` conversions of its parent's."""

    level: str
    rate_prior_clicks: float
    value_prior_conversions: float


def estimate_value_per_click(
    totals: pd.DataFrame, levels: Sequence[str] = POOLING_LEVELS, quantile: float = 0.2
) -> tuple[pd.DataFrame, list[Pooling]]:
    """Each keyword's posterior value per click from its totals.

    `totals` has a row per keyword: `keyword_id`, the `levels` columns (outermost first) and its whole history's
    `TOTAL_COLUMNS`. Returns (estimates, the pooling learnt at each level, outermost first, the keyword level last).
    The estimates are a row per keyword: `conversion_rate`, `value_per_conversion`, `value_per_click` (posterior
    means), `value_per_click_cv` (its coefficient of variation) and `value_per_click_low`, the posterior `quantile`
    of the value per click."""
    _check_quantile(quantile)
    clicks, conversions, value, conversion_days, value_square = (
        totals[column].to_numpy(dtype="float64") for column in TOTAL_COLUMNS
    )
    if (conversions > clicks).any() or (clicks < 0).any() or (value < 0).any():
        raise ValueError("keyword totals need 0 ≤ conversions ≤ clicks and a conversion value of 0 or more")
    if not conversions.sum() > 0:
        raise NoConversionsError(
            "no conversions in the keyword totals: a value per click cannot be estimated from them"
        )
    within = _within_value_cv2(conversions, value, conversion_days, value_square)
    # Per row, its parent's pooled sums (its mean is numerator / denominator) and the variance of that mean: the
    # rate's, and the value's relative to within (the account's to begin with). A unit is compared with its parent
    # without itself (leave one out), so that a unit with much data does not pull its parent's mean onto its own and
    # hide how far units truly spread.
    account_rate = conversions.sum() / clicks.sum()
    rate_sums = (np.full(len(totals), conversions.sum()), np.full(len(totals), clicks.sum()))
    value_sums = (np.full(len(totals), value.sum()), np.full(len(totals), conversions.sum()))
    rate_variance = np.full(len(totals), account_rate * (1.0 - account_rate) / clicks.sum())
    value_variance = np.full(len(totals), 1.0 / conversions.sum())  # × within: the squared CV of the mean
    poolings = []
    keys = [totals[column].astype(str).to_numpy() for column in levels] + [totals["keyword_id"].to_numpy()]
    for depth, name in enumerate([*levels, "keyword"]):
        unit = _unit_codes(keys[: depth + 1])
        unit_clicks, unit_conversions, unit_value = (np.bincount(unit, weights=w) for w in (clicks, conversions, value))
        rate_num, rate_den = (_first_of_each(unit, s) for s in rate_sums)
        value_num, value_den = (_first_of_each(unit, s) for s in value_sums)
        parent_rate_variance, parent_value_variance = (_first_of_each(unit, v) for v in (rate_variance, value_variance))
        prior_clicks = _rate_prior_clicks(
            unit_clicks, unit_conversions, *_without(rate_num, rate_den, unit_conversions, unit_clicks)
        )
        prior_conversions = _value_prior_conversions(
            unit_conversions, unit_value, *_without(value_num, value_den, unit_value, unit_conversions), within
        )
        poolings.append(Pooling(name, prior_clicks, prior_conversions))
        parent_rate, parent_value = rate_num / rate_den, value_num / value_den
        rate_weight, value_weight = prior_clicks + unit_clicks, prior_conversions + unit_conversions
        unit_rate = (prior_clicks * parent_rate + unit_conversions) / rate_weight
        rate_sums = ((prior_clicks * parent_rate + unit_conversions)[unit], rate_weight[unit])
        value_sums = ((prior_conversions * parent_value + unit_value)[unit], value_weight[unit])
        # The posterior's own spread, and its parent's, carried by the share of the prior in the unit's mean.
        rate_variance = (
            unit_rate * (1.0 - unit_rate) / (rate_weight + 1.0)
            + (prior_clicks / rate_weight) ** 2 * parent_rate_variance
        )[unit]
        value_variance = (1.0 / value_weight + (prior_conversions / value_weight) ** 2 * parent_value_variance)[unit]
    rate, mean_value = rate_sums[0] / rate_sums[1], value_sums[0] / value_sums[1]
    cv2 = (1.0 + rate_variance / rate**2) * (1.0 + within * value_variance) - 1.0
    value_per_click = rate * mean_value
    low = conservative_value(value_per_click, np.sqrt(cv2), quantile)
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


def conservative_value(mean, cv, quantile: float) -> np.ndarray:
    """The posterior `quantile` of a value per click with this `mean` and coefficient of variation `cv`, under the
    lognormal approximation: a value the keyword's clicks are worth with probability 1 - quantile."""
    _check_quantile(quantile)
    sigma = np.sqrt(np.log1p(np.square(np.asarray(cv, dtype="float64"))))
    return np.asarray(mean, dtype="float64") * np.exp(ndtri(quantile) * sigma - sigma**2 / 2.0)


def _check_quantile(quantile: float) -> None:
    if not 0.0 < quantile < 0.5:
        raise ValueError(f"the conservative quantile must be between 0 and 0.5, got {quantile}")


def add_reports(totals: pd.DataFrame | None, reports: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Each keyword's whole-history totals (`keyword_id`, the `POOLING_LEVELS` and `TOTAL_COLUMNS`) with `reports`
    added: a keyword new to the totals joins them, and every keyword keeps the campaign and ad group it was last
    reported in. A report that does not carry conversions adds nothing to them (they stay unknown, not
    zero)."""
    dimensions = ["keyword_id", *POOLING_LEVELS]
    parts = [] if totals is None else [totals[[*dimensions, *TOTAL_COLUMNS]]]
    for report in reports:
        part = pd.DataFrame({name: report[name] if name in report else "" for name in dimensions})
        clicks, conversions, value = (
            pd.to_numeric(report[column], errors="coerce").astype("float64")
            if column in report
            else pd.Series(np.nan, index=report.index)
            for column in ("clicks", "conversions", "conversion_value")
        )
        converted = conversions > 0
        part["clicks"], part["conversions"], part["conversion_value"] = clicks, conversions, value
        part["conversion_days"] = converted.astype("float64").where(pd.notna(conversions))
        part["value_square_per_conversion"] = (value**2 / conversions).where(converted, 0.0).where(pd.notna(value))
        parts.append(part)
    if not parts:
        raise ValueError("no totals and no reports to add up")
    stacked = pd.concat(parts, ignore_index=True)
    stacked[list(POOLING_LEVELS)] = stacked[list(POOLING_LEVELS)].astype(str)
    grouped = stacked.groupby("keyword_id", sort=True)
    summed = grouped[list(TOTAL_COLUMNS)].sum(min_count=1)
    return grouped[list(POOLING_LEVELS)].last().join(summed).reset_index()


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
    conversions: np.ndarray,
    value: np.ndarray,
    parent_value: np.ndarray,
    parent_conversions: np.ndarray,
    within: float,
) -> float:
    """The units' prior strength in conversions, within / between. A unit's mean value per conversion deviates from
    its parent's by between, plus within per conversion of its own and of its parent's; between is what the squared
    relative deviations hold beyond that noise (weighted by conversions: a unit with more is the surer measure)."""
    seen = (conversions >= 1) & (parent_value > 0)
    if not seen.any():
        return within / MIN_BETWEEN
    c = conversions[seen]
    deviation = (value[seen] / c / parent_value[seen] - 1.0) ** 2
    noise = within * (1.0 / c + 1.0 / parent_conversions[seen])
    between = max(float(np.sum(c * (deviation - noise)) / np.sum(c)), MIN_BETWEEN)
    return within / between


def _within_value_cv2(
    conversions: np.ndarray, value: np.ndarray, conversion_days: np.ndarray, value_square: np.ndarray
) -> float:
    """The squared coefficient of variation of one conversion's value around its keyword's mean. On a day with c
    conversions, value / c spreads around the mean with within / c of it, so the conversion-weighted sum of squares
    of a keyword's days, Σ value²/c − (Σ value)² / Σ c, is (days − 1) · within · mean² in expectation; pooled over
    the keywords that converted on two days or more."""
    seen = (conversion_days >= 2) & (value > 0)
    if not seen.any():
        return DEFAULT_WITHIN
    mean = value[seen] / conversions[seen]
    squares = value_square[seen] - value[seen] ** 2 / conversions[seen]
    # A sliver above 0 even when values never vary, so that a unit without conversions still takes its parent's.
    return max(float(np.sum(squares) / np.sum((conversion_days[seen] - 1.0) * mean**2)), 1e-6)


def posterior(totals: pd.DataFrame) -> tuple[pd.DataFrame, list[Pooling]]:
    """`totals` (as `add_reports` keeps them) with each keyword's posterior (`POSTERIOR_COLUMNS`) beside them, and the
    pooling learnt at each level. Keywords whose totals have no known conversions (reported only by a source that
    does not carry them) get no posterior; raises NoConversionsError when none has any."""
    known = totals[list(TOTAL_COLUMNS)].notna().all(axis=1).to_numpy()
    if not known.any():
        raise NoConversionsError("the reports carry no conversions: a value per click cannot be estimated from them")
    estimates, poolings = estimate_value_per_click(totals[known])
    out = totals.copy()
    for column in POSTERIOR_COLUMNS:
        out[column] = np.nan
        out.loc[known, column] = estimates[column].to_numpy()
    return out, poolings


# ---- the keyword_value table: whole-history totals and their posterior, a day at a time --------------------------
@dataclass(frozen=True)
class ValueDay:
    day: dt.date
    table: pd.DataFrame  # keyword_id, the POOLING_LEVELS, TOTAL_COLUMNS and POSTERIOR_COLUMNS
    poolings: list[Pooling]  # empty when no posterior could be estimated
    note: str  # why there is no posterior, when there is none


def value_days(
    store: Warehouse, reports_table: str, value_table: str, days: list[dt.date], log: Callable[[str], None] = print
) -> Iterator[ValueDay]:
    """The `value_table` partitions of `days`, one at a time: each day's totals are the day before's plus its report,
    and the posterior is estimated from them. Without the day before's partition (a first run, or after a gap), the
    totals are rebuilt from every report day before the first."""
    columns = ["keyword_id", *POOLING_LEVELS, *TOTAL_COLUMNS]
    previous = days[0] - dt.timedelta(days=1)
    if store.partition_exists(value_table, previous):
        totals = store.read_partitions(value_table, [previous], columns).drop(columns=["date"])
    else:
        earlier = [day for day in store.list_partitions(reports_table) if day < days[0]]
        log(f"no totals for {previous}; adding up {len(earlier)} report days before {days[0]}")
        totals = None
        for number, day in enumerate(earlier, start=1):  # a day at a time: memory holds the totals and one report
            totals = add_reports(totals, [_report_totals(store, reports_table, day)])
            if number % 30 == 0:
                log(f"{number} of {len(earlier)} report days added up")
    for day in days:
        totals = add_reports(totals, [_report_totals(store, reports_table, day)])
        try:
            table, poolings = posterior(totals)
            note = ""
        except NoConversionsError as reason:
            table, poolings, note = totals.assign(**{c: np.nan for c in POSTERIOR_COLUMNS}), [], str(reason)
        yield ValueDay(day, table, poolings, note)


def _report_totals(store: Warehouse, reports_table: str, day: dt.date) -> pd.DataFrame:
    """The columns of one day's report the totals add up (those it carries)."""
    carried = set(store.partition_columns(reports_table, day))
    wanted = ["keyword_id", *POOLING_LEVELS, "clicks", "conversions", "conversion_value"]
    return store.read_partitions(reports_table, [day], [name for name in wanted if name in carried])


def pooling_table(poolings: list[Pooling]) -> pd.DataFrame:
    """How strongly each level pooled, for people: outermost first."""
    return pd.DataFrame(
        {
            "level": [p.level for p in poolings],
            "conversion rate: prior weight in clicks": [round(p.rate_prior_clicks, 1) for p in poolings],
            "value per conversion: prior weight in conversions": [
                round(p.value_prior_conversions, 2) for p in poolings
            ],
        }
    )


def value_per_click_png(table: pd.DataFrame, quantile: float, most: int = 3_000) -> bytes:
    """How sure the platform is of each keyword's value per click: its conservative value (the `quantile`) as a share
    of its mean, against the clicks it has had. The more history, the nearer 1, and the closer a bid may come to what
    a click earns. `most` keywords at most, drawn evenly."""
    from daily_bids.charts import figure_png, pyplot

    known = table[table["value_per_click"].notna() & (table["clicks"] > 0)]
    shown = known.iloc[:: max(1, len(known) // most)]
    share = conservative_value(1.0, shown["value_per_click_cv"], quantile)
    figure, axis = pyplot().subplots(figsize=(7.5, 4.2))
    points = axis.scatter(shown["clicks"], share, s=7, c=np.log10(shown["value_per_click"]), cmap="viridis")
    figure.colorbar(points, ax=axis, label="value per click (log10)")
    axis.set_xscale("log")
    axis.set_ylim(0, 1)
    axis.set_xlabel("clicks to date (log)")
    axis.set_ylabel(f"conservative value ({quantile:.0%} quantile) / mean")
    axis.set_title("How sure the value per click is: the more clicks, the closer a bid may come to it", fontsize=10)
    axis.grid(alpha=0.3)
    return figure_png(figure)
