"""Profit-optimal bids: exact candidates in whole increments (or a grid), per-campaign budgets, and safe exploration.

For each keyword the optimizer scores candidate bids inside the range the rules allow (the min and max bid, strictly
below the expected value per click, and within the maximum change from the bid in force) and keeps the one with the
highest expected profit = expected clicks(bid) × (value per click − cost per click(bid)). When the response can say
where each keyword's profit turns (`ExactResponse`, as the bid landscape can: its curves are powers of the bid), the
candidates are the ends of the range and the whole increments either side of each turning point: about 8, and the
best bid among whole increments is among them. Any other response gets `CANDIDATES` bids spread evenly over the range. Either way it
is one vectorized pass of keywords × candidates, so its cost grows with the number of keywords only.

Every bid is a whole multiple of the bid increment, the account currency's billable unit (`daily_bids.currency`:
a cent for USD, a yen for JPY), since Google Ads refuses any other; the increment is each function's `increment`, the
cent where none is given.

Budgets are met by a price on spend per campaign (a Lagrange multiplier): each keyword keeps the candidate that
maximizes profit − price × spend, and each over-budget campaign's price is raised, by bisection, until its expected
spend fits. That moves spend to where the profit per unit of spend is highest, instead of cutting every bid alike.
With a price the best bid moves down from the turning points, so a budgeted run scores the grid as well as the exact
candidates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from daily_bids.currency import CENT, MICROS_PER_UNIT

CANDIDATES = 25
# Response: bids (keywords × candidates) → (expected clicks, expected cost per click), both keywords × candidates.
Response = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@runtime_checkable
class ExactResponse(Protocol):
    """A Response that also gives, per keyword, the bids where its profit turns (keywords × k, NaN where there is
    none), such that between consecutive ones profit rises then falls, or only rises, or only falls. The best bid of
    a range in whole increments is then an end of it or an increment either side of one of them."""

    def __call__(self, bids: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def stationary_bids(self, value_per_click: np.ndarray) -> np.ndarray: ...


CENT_INCREMENT = CENT / MICROS_PER_UNIT  # 0.01: the bid increment of USD, EUR and most currencies


def _micros(increment: float) -> int:
    return round(increment * MICROS_PER_UNIT)


def in_increments(values, increment: float) -> np.ndarray:
    """`values` in increments; rounding to 6 places stops float noise (0.8 × 0.7 = 0.55999…) from costing one."""
    return np.round(np.asarray(values, dtype="float64") * MICROS_PER_UNIT / _micros(increment), 6)


def from_increments(steps: np.ndarray, increment: float) -> np.ndarray:
    """Whole increments back in the currency: steps × micros is exact, so the one division rounds correctly (57 cents
    is 0.57, never 0.5700000000000001)."""
    return steps * _micros(increment) / MICROS_PER_UNIT


def increments_down(values, increment: float = CENT_INCREMENT) -> np.ndarray:
    """Down to a whole multiple of the bid increment."""
    return from_increments(np.floor(in_increments(values, increment)), increment)


def increments_up(values, increment: float = CENT_INCREMENT) -> np.ndarray:
    """Up to a whole multiple of the bid increment."""
    return from_increments(np.ceil(in_increments(values, increment)), increment)


def highest_bid_below(value_per_click: np.ndarray, increment: float = CENT_INCREMENT) -> np.ndarray:
    """The highest whole-increment bid strictly below the value per click: the value rounded up, less one increment."""
    return from_increments(np.ceil(in_increments(value_per_click, increment)) - 1.0, increment)


def change_window(
    bid_in_force: np.ndarray, max_change: float, increment: float = CENT_INCREMENT
) -> tuple[np.ndarray, np.ndarray]:
    """The whole-increment bids within `max_change` of each bid in force, (low, high); unbounded where none is known.
    A window narrower than an increment may hold none (a bid in force between two increments, a small cap): it is
    then the increment just below the bid in force, the nearest bid that does not raise it."""
    known = np.isfinite(bid_in_force) & (bid_in_force > 0)
    with np.errstate(invalid="ignore"):
        low = np.where(known, increments_up(bid_in_force * (1 - max_change), increment), -np.inf)
        high = np.where(known, increments_down(bid_in_force * (1 + max_change), increment), np.inf)
        below_in_force = increments_down(bid_in_force, increment)
    holds_none = low > high
    return np.where(holds_none, below_in_force, low), np.where(holds_none, below_in_force, high)


@dataclass(frozen=True)
class BidRange:
    """The bids the rules allow each keyword today: [low, high]; empty (low > high) where none is allowed."""

    low: np.ndarray
    high: np.ndarray
    increment: float = CENT_INCREMENT  # every bid is a whole multiple of it (the currency's billable unit)

    @classmethod
    def of(
        cls,
        value_per_click: np.ndarray,
        bid_in_force: np.ndarray,
        min_bid: float,
        max_bid: float,
        max_change: float | None,
        ceiling: np.ndarray | None = None,
        increment: float = CENT_INCREMENT,
    ) -> BidRange:
        """Caps and the invariant (below the value per click, and at or below `ceiling`, the money rule's highest
        bid) always; the change cap where a bid is in force. When the bid in force is so far above today's value
        that the change cap would keep it there, the invariant wins: the range is the highest bid below the value."""
        # Whole increments: the lowest at or above the minimum bid, the highest at or below the max and below the value.
        rules_low = np.full(len(value_per_click), increments_up(min_bid, increment))
        rules_high = np.minimum(increments_down(max_bid, increment), highest_bid_below(value_per_click, increment))
        if ceiling is not None:
            rules_high = np.minimum(rules_high, increments_down(ceiling, increment))
        if max_change is None:
            return cls(rules_low, rules_high, increment)
        cap_low, cap_high = change_window(bid_in_force, max_change, increment)
        low, high = np.maximum(rules_low, cap_low), np.minimum(rules_high, cap_high)
        # Where the change cap's window misses the rules' window, the rules win: the allowed bid nearest the cap.
        nearest = np.where(cap_low > rules_high, rules_high, rules_low)
        misses = (low > high) & (rules_low <= rules_high)
        return cls(np.where(misses, nearest, low), np.where(misses, nearest, high), increment)

    @property
    def allowed(self) -> np.ndarray:
        return self.low <= self.high

    def candidates(self, count: int = CANDIDATES) -> np.ndarray:
        """Whole-increment bids spread evenly over each range (keywords × count); rounding keeps them inside."""
        steps = np.linspace(0.0, 1.0, count)
        grid = increments_down(self.low[:, None] + (self.high - self.low)[:, None] * steps, self.increment)
        inside = np.clip(grid, self.low[:, None], self.high[:, None])
        return np.where(self.allowed[:, None], inside, self.low[:, None])  # an empty range scores a harmless bid

    def around(self, bids: np.ndarray) -> np.ndarray:
        """Each range's ends and the whole increments either side of each of `bids` (keywords × k) once put inside
        it, keywords × (2 + 2k); a NaN bid adds the low end twice."""
        low, high = self.low[:, None], self.high[:, None]
        inside = np.clip(np.where(np.isnan(bids), low, bids), low, high)
        whole = [increments_down(inside, self.increment), increments_up(inside, self.increment)]
        candidates = np.concatenate([low, high, *whole], axis=1)
        # Rounding an inside bid to an increment keeps it inside (the ends are whole increments); the clip only guards.
        return np.where(
            self.allowed[:, None], np.clip(candidates, low, high), low
        )  # an empty range scores a harmless bid

    def clip(self, bids: np.ndarray) -> np.ndarray:
        return np.clip(increments_down(bids, self.increment), self.low, self.high)


@dataclass(frozen=True)
class OptimizedBids:
    bid: np.ndarray
    expected_clicks: np.ndarray
    expected_cost_per_click: np.ndarray

    @property
    def expected_spend(self) -> np.ndarray:
        return self.expected_clicks * self.expected_cost_per_click


def optimize(
    value_per_click: np.ndarray,
    bids: BidRange,
    response: Response,
    campaign: np.ndarray | None = None,
    budgets: dict[str, float] | None = None,
    count: int = CANDIDATES,
) -> OptimizedBids:
    """The profit-maximizing candidate of each keyword whose range is not empty, within each campaign's budget
    where `budgets` names it. Rows with an empty range get NaN. With an `ExactResponse` the bid is the best whole
    increment of the range (without a budget); otherwise the best of `count` evenly spread ones."""
    budgeted = bool(budgets) and campaign is not None
    candidates = _candidates(value_per_click, bids, response, count, budgeted)
    clicks, cost_per_click = response(candidates)
    profit = clicks * (value_per_click[:, None] - cost_per_click)
    spend = clicks * cost_per_click
    price = np.zeros(len(value_per_click))
    if budgets and campaign is not None:
        price = _spend_prices(profit, spend, campaign, budgets, bids.allowed)
    choice = _best(profit, spend, price)
    row = np.arange(len(value_per_click))
    keep = bids.allowed
    return OptimizedBids(
        np.where(keep, candidates[row, choice], np.nan),
        np.where(keep, clicks[row, choice], np.nan),
        np.where(keep, cost_per_click[row, choice], np.nan),
    )


def _candidates(
    value_per_click: np.ndarray, bids: BidRange, response: Response, count: int, budgeted: bool
) -> np.ndarray:
    if not isinstance(response, ExactResponse):
        return bids.candidates(count)
    exact = bids.around(response.stationary_bids(value_per_click))
    if not budgeted:
        return exact
    # A price λ on spend moves each keyword's best bid to the turning points at value / (1 + λ), which the
    # bisection would need a response evaluation per step to follow; the grid covers those bids instead, and
    # the exact candidates come first so that a keyword without a price keeps its exact best on a tie.
    return np.concatenate([exact, bids.candidates(count)], axis=1)


def _best(profit: np.ndarray, spend: np.ndarray, price: np.ndarray) -> np.ndarray:
    return np.argmax(profit - price[:, None] * spend, axis=1)


def _spend_prices(
    profit: np.ndarray, spend: np.ndarray, campaign: np.ndarray, budgets: dict[str, float], allowed: np.ndarray
) -> np.ndarray:
    """Per keyword, the price on spend of its campaign that brings the campaign's expected spend within budget."""
    names, codes = np.unique(np.asarray(campaign, dtype=object).astype(str), return_inverse=True)
    limit = np.array([budgets.get(name, np.inf) for name in names], dtype="float64")
    price_per_keyword = np.zeros(len(codes))
    # A campaign without a budget keeps price 0, so the bisection scores the keywords of budgeted campaigns only.
    held = np.flatnonzero(np.isfinite(limit)[codes])
    profit, spend, codes, allowed = profit[held], spend[held], codes[held], allowed[held]
    row = np.arange(len(codes))

    def campaign_spend(prices: np.ndarray) -> np.ndarray:
        choice = _best(profit, spend, prices[codes])
        return np.bincount(codes, weights=np.where(allowed, spend[row, choice], 0.0), minlength=len(names))

    low = np.zeros(len(names))
    high = np.where(campaign_spend(low) > limit, 1.0, 0.0)
    for _ in range(60):  # find a price high enough for every over-budget campaign (or give up: infeasible)
        over = (campaign_spend(high) > limit) & (high > 0) & (high < 1e12)
        if not over.any():
            break
        high = np.where(over, high * 4.0, high)
    for _ in range(60):  # then bisect down to the lowest price that fits
        middle = (low + high) / 2.0
        fits = campaign_spend(middle) <= limit
        high, low = np.where(fits, middle, high), np.where(fits, low, middle)
    price_per_keyword[held] = high[codes]
    return price_per_keyword


# ---- exploration ------------------------------------------------------------------------------------------------
def _uniform(keyword_ids: np.ndarray, day: dt.date, seed: int, stream: int) -> np.ndarray:
    """A uniform draw in [0, 1) per keyword from (seed, day, keyword, stream) alone: splitmix64 of the four, so a
    keyword's draw does not depend on which other keywords the account has."""
    with np.errstate(over="ignore"):
        x = np.asarray(keyword_ids, dtype="uint64") * np.uint64(0x9E3779B97F4A7C15) + np.uint64(
            (seed * 1_000_003 + day.toordinal()) * 4 + stream
        )
        for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x = (x ^ (x >> np.uint64(shift))) * np.uint64(multiplier)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype("float64") / float(1 << 53)


def explore(
    bids: np.ndarray,
    keyword_ids: np.ndarray,
    day: dt.date,
    seed: int,
    share: float,
    spread: float,
    allowed: BidRange,
    downward: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(bids, explored): `share` of keywords, drawn for (seed, day), get their bid multiplied by a factor drawn
    uniformly from [1 − spread, 1 + spread], then put back inside the range the rules allow. Where `downward` is
    true (a campaign held to its budget) the factor is folded below 1, so exploring never adds spend."""
    chosen = (_uniform(keyword_ids, day, seed, 0) < share) & np.isfinite(bids)
    factor = 1.0 + spread * (2.0 * _uniform(keyword_ids, day, seed, 1) - 1.0)
    if downward is not None:
        factor = np.where(downward, 1.0 - np.abs(factor - 1.0), factor)
    return np.where(chosen, allowed.clip(bids * factor), bids), chosen
