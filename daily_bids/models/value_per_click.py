"""What a click on each keyword is worth, as an estimate with its uncertainty: empirical Bayes over the hierarchy.

Most keywords convert a few times a month, so a keyword's own ratio of value to clicks is mostly noise. Each keyword's
value per click is estimated from its whole history of clicks, conversions and conversion value, pooled towards its
ad group, which is pooled towards its campaign, then its match type, then the account (`POOLING_LEVELS`). How
strongly each level pools is learnt from the data (method of moments, `_level_spreads`), never a fixed prior weight.

- The conversion rate is beta-binomial: a unit's rate is drawn around its parent's with an intra-class correlation
  `rho`. The prior strength is 1/rho - 1 clicks; the posterior is Beta(prior + conversions, prior + clicks -
  conversions).
- The value of a conversion is gamma: each conversion's value varies around its keyword's mean with a squared
  coefficient of variation `within`, read off the days each keyword converted on (their spread around the keyword's
  mean, `value_square_per_conversion`), and units' means vary around their parent's with `between`. A unit's mean is
  shrunk towards its parent's with the weight of `within / between` conversions.
- The spreads are learnt from the keywords up. An ad group's rate differs from its campaign's partly because its
  keywords differ from each other, the more so when one keyword holds most of its clicks; only what is left is the
  ad group's own spread. For the same reason a group's clicks count for less than their number when its posterior is
  formed (`_effective`). Without this, a level that explains nothing (ad groups whose keywords were grouped by name)
  would look informative, and keywords would be pulled towards a few noisy neighbours.

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

# The report's columns a keyword is pooled by, outermost first (the keyword itself is the last level). The match
# type comes first: how well a click converts depends on it across the whole account (an exact match's searcher
# wants what the keyword says more often than a broad match's), where campaigns and ad groups only group keywords.
POOLING_LEVELS = ("match_type", "campaign", "ad_group")
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
    keys = [totals[column].astype(str).to_numpy() for column in levels] + [totals["keyword_id"].to_numpy()]
    # Per depth (outermost first, the keyword last), a code per row for its unit at that depth.
    units = [_unit_codes(keys[: depth + 1]) for depth in range(len(keys))]
    # How far units spread around their parents, learnt from the keywords up: a unit's own mean is noisy by its
    # clicks and by how its keywords (and groups) differ, and only the rest is the level's own spread.
    click_shares, conversion_shares = _herfindahls(units, clicks), _herfindahls(units, conversions)
    rate_spreads = _level_spreads(
        units, clicks, conversions, click_shares, lambda mean: mean * (1.0 - mean), 1.0, RHO_BOUNDS
    )
    value_spreads = _level_spreads(
        units, conversions, value, conversion_shares, np.square, within, (MIN_BETWEEN, np.inf)
    )
    # Per row, its parent's pooled sums (its mean is numerator / denominator) and the variance of that mean: the
    # rate's, and the value's relative to within (the account's to begin with).
    account_rate = conversions.sum() / clicks.sum()
    rate_sums = (np.full(len(totals), conversions.sum()), np.full(len(totals), clicks.sum()))
    value_sums = (np.full(len(totals), value.sum()), np.full(len(totals), conversions.sum()))
    rate_variance = np.full(len(totals), account_rate * (1.0 - account_rate) / clicks.sum())
    value_variance = np.full(len(totals), 1.0 / conversions.sum())  # × within: the squared CV of the mean
    poolings = []
    for depth, name in enumerate([*levels, "keyword"]):
        unit = units[depth]
        rho, between = rate_spreads[depth], value_spreads[depth]
        prior_clicks, prior_conversions = 1.0 / rho - 1.0, within / between
        poolings.append(Pooling(name, prior_clicks, prior_conversions))
        # What the unit's own sums are worth: fewer clicks than it has when they come from keywords that differ.
        unit_clicks, unit_conversions = _effective(units, depth, clicks, conversions, click_shares, rate_spreads, 1.0)
        unit_value_conversions, unit_value = _effective(
            units, depth, conversions, value, conversion_shares, value_spreads, within
        )
        rate_num, rate_den = (_first_of_each(unit, s) for s in rate_sums)
        value_num, value_den = (_first_of_each(unit, s) for s in value_sums)
        parent_rate_variance, parent_value_variance = (_first_of_each(unit, v) for v in (rate_variance, value_variance))
        parent_rate, parent_value = rate_num / rate_den, value_num / value_den
        rate_weight = prior_clicks + unit_clicks
        value_weight = prior_conversions + unit_value_conversions
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


def _first_of_each(unit: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per unit, the value its rows carry (every row of a unit has its parent's, the same)."""
    out = np.empty(unit.max() + 1 if len(unit) else 0)
    out[unit] = values
    return out


def _herfindahls(units: list[np.ndarray], weight: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """For each depth and each deeper one, per unit at the depth, Σ w_s² / w² over its sub-units s at the deeper
    depth (w: clicks or conversions): how far the unit's mean rests on a few of them, and so carries their own
    differences."""
    herfindahls = {}
    for depth in range(len(units)):
        total = np.bincount(units[depth], weights=weight)
        for deeper in range(depth + 1, len(units)):
            sub_weight = np.bincount(units[deeper], weights=weight)
            parent_of_sub = _first_of_each(units[deeper], units[depth]).astype(np.int64)
            squares = np.bincount(parent_of_sub, weights=sub_weight**2, minlength=len(total))
            herfindahls[depth, deeper] = np.divide(squares, total**2, out=np.zeros_like(total), where=total > 0)
    return herfindahls


def _level_spreads(
    units: list[np.ndarray],
    weight: np.ndarray,
    amount: np.ndarray,
    herfindahls: dict[tuple[int, int], np.ndarray],
    scale: Callable[[np.ndarray], np.ndarray],
    noise_per_weight: float,
    bounds: tuple[float, float],
) -> list[float]:
    """Per depth, how much units' true means spread around their parent's, relative to `scale(mean)`: the rate's
    intra-class correlation (weight: clicks, amount: conversions, scale m(1 - m), noise 1 per click) or the squared
    CV of the value per conversion (weight: conversions, amount: value, scale m², noise `within` per conversion), m
    being the mean of the unit's outermost level (the account's, for that level itself).

    Method of moments, from the keywords up. A unit is compared with its parent's mean without it (so that a unit
    with much data does not pull that mean onto its own). The squared deviation holds the level's spread, the noise
    of the unit's own mean, and the noise of the parent's: its weight's, and its sub-units' spreads already learnt
    below (a group of keywords differs from its campaign partly because its keywords differ). Units weigh by the
    inverse square of what they are expected to deviate, so that neither tiny nor huge units decide alone."""
    spreads = [0.0] * len(units)
    for depth in reversed(range(len(units))):
        unit = units[depth]
        own, own_amount = np.bincount(unit, weights=weight), np.bincount(unit, weights=amount)
        seen = own > 0
        noise = np.where(seen, noise_per_weight / np.where(seen, own, 1.0), 0.0)
        for deeper in range(depth + 1, len(units)):
            noise = noise + spreads[deeper] * herfindahls[depth, deeper]
        parent = _first_of_each(unit, units[depth - 1]).astype(np.int64) if depth else np.zeros(len(own), np.int64)
        parent_weight, parent_amount = (np.bincount(parent, weights=w) for w in (own, own_amount))
        parent_squares, parent_noise = (np.bincount(parent, weights=own**2 * w) for w in (np.ones_like(own), noise))
        rest = parent_weight[parent] - own
        usable = seen & (rest > 1e-9)
        rest = np.where(usable, rest, 1.0)
        mean = (parent_amount[parent] - own_amount) / rest
        # Scaled by the outermost unit's mean, not the parent's: a small parent's mean is too noisy to divide by.
        outermost = _first_of_each(unit, units[0]).astype(np.int64) if depth else np.zeros(len(own), np.int64)
        variance_scale = scale(
            (np.bincount(outermost, weights=own_amount) / np.bincount(outermost, weights=own))[outermost]
        )
        usable &= variance_scale > 0
        if not usable.any():
            spreads[depth] = bounds[0]
            continue
        deviation = (own_amount / np.where(seen, own, 1.0) - mean) ** 2 / np.where(usable, variance_scale, 1.0)
        coefficient = 1.0 + (parent_squares[parent] - own**2) / rest**2
        expected_noise = noise + (parent_noise[parent] - own**2 * noise) / rest**2
        deviation, coefficient, expected_noise = (a[usable] for a in (deviation, coefficient, expected_noise))
        spread = float(np.clip(np.mean(deviation - expected_noise) / np.mean(coefficient), *bounds))
        for _ in range(4):  # the weights depend on the spread: a few rounds settle it
            weights = 1.0 / (spread * coefficient + expected_noise) ** 2
            spread = float(
                np.clip(np.sum(weights * (deviation - expected_noise)) / np.sum(weights * coefficient), *bounds)
            )
        spreads[depth] = spread
    return spreads


def _effective(
    units: list[np.ndarray],
    depth: int,
    weight: np.ndarray,
    amount: np.ndarray,
    herfindahls: dict[tuple[int, int], np.ndarray],
    spreads: list[float],
    noise_per_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per unit at `depth`, the weight (clicks or conversions) its own mean is worth, and the amount that goes with
    it: as many as would give its mean the noise it has, which is more than its weight alone says when its
    sub-units differ. A keyword's are its own."""
    own, own_amount = (np.bincount(units[depth], weights=w) for w in (weight, amount))
    extra = np.zeros_like(own)
    for deeper in range(depth + 1, len(units)):
        extra = extra + spreads[deeper] * herfindahls[depth, deeper]
    effective = own / (1.0 + own * extra / noise_per_weight)
    return effective, np.divide(own_amount * effective, own, out=np.zeros_like(own), where=own > 0)


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
    # A partition written before a pooling level was added lacks its column: rebuilt, not read.
    if store.partition_exists(value_table, previous) and set(columns) <= set(
        store.partition_columns(value_table, previous)
    ):
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
