"""The bid decision: from next-day predictions to a max CPC per keyword, by one of two policies.

`fixed_margin`: bid = expected value per click × (1 − target margin), rounded down to the bid increment, capped at
the max bid. It needs nothing but the predictions, and it ignores the auction.

`profit_optimal`: the bid that maximizes expected clicks(bid) × (value per click − cost per click(bid)), from the
bid landscape (`daily_bids.bidding.landscape`), within the caps, strictly below the value per click, and within each
campaign's budget (`daily_bids.bidding.optimizer`). Where there is no landscape (the reports carry no max CPC, or bids
never varied) or no bid in force for a keyword, that keyword is bid by the fixed margin, and the bids table says so in
`bid_basis`. Without the landscape a keyword's clicks do not respond to its bid: its expected clicks are the
champion's at any bid, so its expected profit says nothing about which bid or margin is better
(`clicks_assumed_unchanged` in the economics).

Under every policy a bid moves at most `max_bid_change` from the bid in force (the reports' latest max CPC), so no
day, the first included, swings the account: the change cap. The money rule outranks it: where even the lowest bid
the cap allows would break it, the bid is lowered to the keyword's ceiling (`lowered_to_ceiling`). `max_bid_change`
0 turns the cap off.

Every bid is a whole multiple of the bid increment, the account currency's billable unit (`BidPolicy.bid_increment`:
0.01 in USD, 1 in JPY), which Google Ads requires; "strictly below the value per click" is the value rounded up to
the increment, less one increment.

Either way a bid never reaches the expected value per click, and since the price paid per click is at most the bid
(second-price auctions), every click is expected to earn more than it costs. Where even the minimum bid would not
stay below it, the keyword gets no bid: it is listed as unprofitable rather than bid at a loss.

The money rule holds on what we are sure of, not only on the estimate: where the value per click is a posterior
(`value_per_click_cv`, from `daily_bids.models.value_per_click`), the expected cost per click at the bid stays at or
below its conservative value, the `value_quantile` quantile. Priced by the landscape, that is the highest bid whose
expected cost per click is at or below it (in a second-price auction a bid can sit above the price it pays);
elsewhere the bid itself, since a click costs at most the bid. A keyword we know little about has a wide posterior
and so a low conservative value: it cannot be bid to a loss on a lucky few conversions.

Keywords with fewer than `min_history_days` days of history are bid with the wider `cold_start_margin`, under either
policy: a conservative default while the model has little to go on. Their value per click is the pooled posterior's
(mostly their ad group's and campaign's, as they have little of their own); without a posterior, their cluster's, or
for a keyword not yet in a cluster, their ad group's (which falls back to the campaign's and the account's).

A share of keywords each day (`exploration_share`) has its bid moved by a random factor within
±`exploration_spread`, drawn from (seed, day, keyword), then put back inside every rule: the bid variation that
the landscape learns from. Those rows carry `exploration = true`. Only keywords whose bid in force the reports
carry (`max_cpc`) are explored, and never cold starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.bidding.optimizer import (
    CENT_INCREMENT,
    BidRange,
    change_window,
    explore,
    from_increments,
    in_increments,
    increments_down,
    optimize,
)
from daily_bids.bidding.policy import BidPolicy
from daily_bids.currency import CENT
from daily_bids.models.value_per_click import conservative_value
from daily_bids.schema import DIMENSION_COLUMNS, NOT_BID_STATUSES, NOT_REPORTED

# What can decide a bid (the bids table's `bid_basis`).
BID_BASES = ("profit_optimal", "fixed_margin", "cold_start", "configured_value")
BID_COLUMNS: tuple[str, ...] = (
    "date",
    "effective_date",
    "keyword_id",
    *DIMENSION_COLUMNS,
    "bid",
    "expected_clicks",
    "expected_value_per_click",
    "conservative_value_per_click",
    "expected_cost_per_click",
    "expected_profit",
    "bid_basis",
    "exploration",
    "bid_in_force",  # the reports' latest max CPC, which the change cap is measured from; null where unknown
    "change_capped",  # held at the edge of the change cap: the rule's own bid lay further from the bid in force
    "lowered_to_ceiling",  # below the change cap: the money rule's ceiling (or max_bid) is under the cap's window
    "model_version",
)
# What a profit at clicks assumed unchanged cannot tell: the notes on the bids and their economics say it this way.
WHY_CLICKS_ARE_ASSUMED_UNCHANGED = (
    "without a bid landscape a keyword's expected clicks are the same at any bid, so its expected profit cannot say "
    "whether another bid or margin would earn more"
)
# The economics' counts (keywords by what limited or priced their bid) beside its money totals.
ECONOMICS_COUNTS = ("keywords", "clicks_assumed_unchanged", "change_capped", "lowered_to_ceiling")


class CannotBidError(ValueError):
    """Raised when no keyword has a value per click to bid from."""


@dataclass(frozen=True)
class BidDecision:
    bids: pd.DataFrame  # BID_COLUMNS
    unprofitable: pd.DataFrame  # the predictions of keywords that get no bid
    # Rows `chosen` (the bids) and `fixed_margin` (the fixed margin's bids where the landscape prices the keyword, the
    # same bids elsewhere: where clicks do not respond to the bid, profits at two bids cannot be compared); columns
    # ECONOMICS_COUNTS and the expected clicks, spend, value and profit. Sums over batches add up.
    economics: pd.DataFrame
    landscape_note: str  # why the landscape was, or was not, used
    priced_by_landscape: int  # keywords whose clicks and costs the landscape priced (else costs are at most the bid)


def decide_bids(
    predictions: pd.DataFrame,
    policy: BidPolicy,
    landscape=None,
    context: pd.DataFrame | None = None,
    landscape_note: str = "",
) -> BidDecision:
    """Bids for `keyword_predictions` rows under `policy`.

    `predictions` needs expected_clicks, expected_value_per_click (the model's), prior_value_per_click (the ad
    group's), history_days and, optionally, cluster_value_per_click. `landscape` (a BidLandscape) and `context`
    (`landscape.bid_context` of the partition day) give the response to the bid; without them, or for a keyword
    without a bid in force, the fixed margin decides. `bid_basis` says what decided each bid: "profit_optimal",
    "fixed_margin", "cold_start" or "configured_value" (reports without conversion value, valued at the policy's
    value_per_click).

    A keyword whose report says it is paused or removed (`status`) gets no bid, and so is not explored either."""
    # A column the predictions lack (made before the report contract had it) was not reported.
    predictions = predictions.assign(**{name: NOT_REPORTED for name in DIMENSION_COLUMNS if name not in predictions})
    predictions = predictions[~predictions["status"].isin(NOT_BID_STATUSES).to_numpy()].reset_index(drop=True)
    values = _values(predictions, policy)
    in_force, aligned = np.full(len(predictions), np.nan), None
    if context is not None and len(context):  # each prediction's context row, found once
        aligned = context.set_index("keyword_id").reindex(predictions["keyword_id"].to_numpy())
        in_force = aligned["bid_in_force"].to_numpy(dtype="float64")
    priced = _Pricing(predictions, landscape, aligned, values.cold_start, in_force)
    limits = _Limits.of(values, in_force, policy)
    fixed_bid = limits.hold(values.fixed_bid)  # the fixed margin's bids, within the change cap
    fixed = priced.at(fixed_bid)
    bid, basis = fixed_bid.copy(), values.basis.copy()
    clicks, cost_per_click = fixed
    ranges = limits.capped
    budget_note = ""
    if policy.policy == "profit_optimal" and len(priced.rows):
        rows = priced.rows
        chosen, ranges_today, uncapped_today, budget_note = _profit_optimal(
            values.value_per_click[rows],
            values.conservative[rows],
            in_force[rows],
            policy,
            priced,
            predictions,
            clicks * cost_per_click,
        )
        ok = np.isfinite(chosen.bid)
        bid[rows[ok]], basis[rows[ok]] = chosen.bid[ok], "profit_optimal"
        clicks, cost_per_click = clicks.copy(), cost_per_click.copy()
        clicks[rows[ok]], cost_per_click[rows[ok]] = chosen.expected_clicks[ok], chosen.expected_cost_per_click[ok]
        ranges = BidRange(
            _put(ranges.low, rows, ranges_today.low), _put(ranges.high, rows, ranges_today.high), policy.bid_increment
        )
        limits = limits.with_rules(rows, uncapped_today)
    bid, explored = _explore(bid, predictions, policy, values.cold_start, in_force, ranges)
    if explored.any():
        explored_clicks, explored_cost = priced.at(bid)
        clicks, cost_per_click = (
            np.where(explored, explored_clicks, clicks),
            np.where(explored, explored_cost, cost_per_click),
        )
    held, lowered = limits.flags(bid)
    table = predictions.assign(
        bid=bid,
        expected_clicks=clicks,
        expected_value_per_click=values.value_per_click,
        # The money rule's limit on the expected cost per click; null where the value has no known spread.
        conservative_value_per_click=np.where(np.isfinite(values.conservative), values.conservative, np.nan),
        expected_cost_per_click=cost_per_click,
        expected_profit=clicks * (values.value_per_click - cost_per_click),
        bid_basis=basis,
        exploration=explored,
        bid_in_force=np.where(in_force > 0, in_force, np.nan),
        change_capped=held,
        lowered_to_ceiling=lowered,
    )
    profitable = _keeps_the_rules(bid, cost_per_click, values, policy)
    # The fixed margin beside the chosen bids, where the landscape says how clicks respond to the bid; elsewhere
    # both sides hold the chosen bids, so the comparison is the landscape's alone.
    by_landscape = np.zeros(len(predictions), dtype=bool)
    by_landscape[priced.rows] = True
    compared_bid = np.where(by_landscape, fixed_bid, bid)
    compared_clicks, compared_cost = (
        np.where(by_landscape, fixed[0], clicks),
        np.where(by_landscape, fixed[1], cost_per_click),
    )
    compared_held, compared_lowered = limits.flags(compared_bid)
    economics = pd.DataFrame(
        {
            "chosen": _totals(clicks, cost_per_click, values.value_per_click, profitable, by_landscape, held, lowered),
            "fixed_margin": _totals(
                compared_clicks,
                compared_cost,
                values.value_per_click,
                _keeps_the_rules(compared_bid, compared_cost, values, policy),
                by_landscape,
                compared_held,
                compared_lowered,
            ),
        }
    ).T
    note = (
        landscape_note
        or (
            "the bid landscape priced every keyword with a bid in force"
            if len(priced.rows)
            else "no bid landscape: bids follow the fixed margin, and clicks are assumed unchanged at any bid"
        )
    ) + budget_note
    return BidDecision(
        table.loc[profitable, list(BID_COLUMNS)].reset_index(drop=True),
        table.loc[~profitable].reset_index(drop=True),
        economics,
        note,
        len(priced.rows),
    )


def _keeps_the_rules(bid, cost_per_click, values: _Values, policy: BidPolicy) -> np.ndarray:
    """Whether each bid may be placed: inside the caps, below the value per click, and keeping the money rule."""
    return (
        (bid >= policy.min_bid)
        & (bid < values.value_per_click)
        & (bid <= policy.max_bid)
        & (cost_per_click <= values.conservative)
    )


@dataclass(frozen=True)
class _Values:
    # The pooled posterior's mean; without one, the model's, the cluster's for cold starts, or the configured one.
    value_per_click: np.ndarray
    conservative: np.ndarray  # the money rule's limit on the expected cost per click (inf where the spread is unknown)
    cold_start: np.ndarray
    fixed_bid: np.ndarray  # the fixed margin's bid
    basis: np.ndarray  # what the fixed margin's bid rests on


def _values(predictions: pd.DataFrame, policy: BidPolicy) -> _Values:
    model_value = predictions["expected_value_per_click"].to_numpy(dtype="float64")
    prior_value = predictions["prior_value_per_click"].to_numpy(dtype="float64")
    if "cluster_value_per_click" in predictions.columns:  # the cluster's prior where the keyword has a cluster
        cluster_value = predictions["cluster_value_per_click"].to_numpy(dtype="float64")
        prior_value = np.where(np.isnan(cluster_value), prior_value, cluster_value)
    value_unknown = np.isnan(model_value)
    if len(predictions) and value_unknown.all() and policy.value_per_click is None:
        raise CannotBidError(
            "cannot bid: the keyword reports carry no conversion value, so no value per click can be predicted. "
            "Set BIDS_VALUE_PER_CLICK (or the bid_policy resource's value_per_click) to the value of a click."
        )
    if policy.value_per_click is not None:
        model_value = np.where(value_unknown, policy.value_per_click, model_value)
        prior_value = np.where(np.isnan(prior_value), policy.value_per_click, prior_value)
    spread = (
        predictions["value_per_click_cv"].to_numpy(dtype="float64")
        if "value_per_click_cv" in predictions
        else np.full(len(predictions), np.nan)
    )
    pooled = np.isfinite(spread) & ~value_unknown  # the pooled posterior already borrows from the ad group
    cold_start = predictions["history_days"].to_numpy() < policy.min_history_days
    value_per_click = np.where(cold_start & ~pooled, prior_value, model_value)
    conservative = np.where(pooled, conservative_value(value_per_click, spread, policy.value_quantile), np.inf)
    margin = np.where(cold_start, max(policy.cold_start_margin, policy.target_margin), policy.target_margin)
    increment = policy.bid_increment
    fixed_bid = np.minimum(increments_down(value_per_click * (1.0 - margin), increment), policy.max_bid)
    fixed_bid = np.minimum(fixed_bid, increments_down(conservative, increment))
    basis = np.where(cold_start, "cold_start", np.where(value_unknown, "configured_value", "fixed_margin"))
    return _Values(value_per_click, conservative, cold_start, fixed_bid, basis)


@dataclass(frozen=True)
class _Limits:
    """The change cap around each bid in force (`window`, unbounded where none is known or the cap is off), the rules'
    range without it (`rules`: the caps and the money rule's ceiling), and the range a bid may take (`capped`: both,
    the rules winning where they miss the window)."""

    window: BidRange
    rules: BidRange
    capped: BidRange

    @classmethod
    def of(cls, values: _Values, in_force: np.ndarray, policy: BidPolicy) -> _Limits:
        # Without the landscape a click costs at most the bid: the money rule's ceiling is the conservative value.
        value, conservative, step = values.value_per_click, values.conservative, policy.bid_increment
        rules = BidRange.of(value, in_force, policy.min_bid, policy.max_bid, None, conservative, step)
        cap = policy.change_cap
        unbounded = np.full(len(in_force), np.inf)
        window = (
            BidRange(*change_window(in_force, cap, step), step)
            if cap is not None
            else BidRange(-unbounded, unbounded, step)
        )
        capped = BidRange.of(value, in_force, policy.min_bid, policy.max_bid, cap, conservative, step)
        return cls(window, rules, capped)

    def hold(self, bids: np.ndarray) -> np.ndarray:
        """`bids` put inside the change cap (and the rules) where a bid is in force; elsewhere left as they are."""
        inside = self.capped.allowed & np.isfinite(bids) & np.isfinite(self.window.low)
        return np.where(inside, self.capped.clip(np.where(inside, bids, 0.0)), bids)

    def with_rules(self, rows: np.ndarray, rules: BidRange) -> _Limits:
        """The same limits with `rules` for `rows` (the optimizer's money rule, priced on the landscape)."""
        return _Limits(
            self.window,
            BidRange(_put(self.rules.low, rows, rules.low), _put(self.rules.high, rows, rules.high), rules.increment),
            self.capped,
        )

    def flags(self, bids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(held, lowered) per bid: held at an edge of the change cap while the rules allowed a bid beyond it, or
        below the cap's window because the rules' ceiling is under it (the money rule wins)."""
        low, high = self.window.low, self.window.high
        with np.errstate(invalid="ignore"):
            at_high = np.isclose(bids, high) & (self.rules.high > high + 1e-9)
            at_low = np.isclose(bids, low) & (self.rules.low < low - 1e-9)
            lowered = (bids < low - 1e-9) & (self.rules.high < low - 1e-9)
        return at_high | at_low, lowered


class _Pricing:
    """Expected clicks and cost per click at any bids: from the landscape for the keywords it can price (`rows`:
    a bid in force, not a cold start), else the champion's clicks and the bid as the most a click can cost."""

    def __init__(self, predictions, landscape, aligned_context, cold_start, in_force):
        """`aligned_context`: the bid context's row of each prediction, in their order (None without a context)."""
        self.clicks = predictions["expected_clicks"].to_numpy(dtype="float64")
        self.landscape = landscape
        priceable = landscape is not None and aligned_context is not None
        self.rows = np.flatnonzero(~cold_start & np.isfinite(in_force)) if priceable else np.zeros(0, dtype="int64")
        if priceable:
            self.context = aligned_context.iloc[self.rows].reset_index()

    def response(self, bids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clicks, cost per click) of the priceable keywords at candidate bids (priceable keywords × candidates)."""
        multiplier, cost_per_click = self.landscape.response(self.context, bids)
        return self.clicks[self.rows, None] * multiplier, cost_per_click

    # The optimizer's ExactResponse: the landscape's turning points make its candidates exact to the cent.
    __call__ = response

    def stationary_bids(self, value_per_click: np.ndarray) -> np.ndarray:
        """Where the profit of each priceable keyword turns (priceable keywords × 3, NaN where it does not)."""
        return self.landscape.stationary_bids(self.context, value_per_click)

    def highest_bid_costing_at_most(
        self, limit: np.ndarray, high: np.ndarray, increment: float = CENT_INCREMENT
    ) -> np.ndarray:
        """Per priceable keyword, the highest whole-increment bid at or below `high` whose expected cost per click
        is at or below `limit` (0 where even one increment costs more): a bisection over increments, as the cost per
        click rises with the bid."""
        low_steps = np.zeros(len(limit))  # 0: a sentinel for "no bid", which costs nothing
        high_steps = np.floor(in_increments(np.where(np.isfinite(high), high, 0.0), increment))
        fits = self._costs_at_most(high_steps, limit, increment)
        low_steps = np.where(fits, high_steps, low_steps)
        high_steps = np.where(fits, high_steps + 1.0, high_steps)
        while (open_ := high_steps - low_steps > 1.0).any():
            middle = np.where(open_, np.floor((low_steps + high_steps) / 2.0), low_steps)
            fits = self._costs_at_most(np.maximum(middle, 1.0), limit, increment) & open_
            low_steps = np.where(fits, middle, low_steps)
            high_steps = np.where(open_ & ~fits, middle, high_steps)
        return np.where(np.isfinite(limit), from_increments(low_steps, increment), high)

    def _costs_at_most(self, steps: np.ndarray, limit: np.ndarray, increment: float) -> np.ndarray:
        bids = from_increments(np.maximum(steps, 1.0), increment)
        _, cost_per_click = self.response(bids[:, None])
        return np.minimum(cost_per_click[:, 0], bids) <= limit

    def at(self, bids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clicks, cost per click) of every keyword at one bid each."""
        clicks, cost_per_click = self.clicks.copy(), np.asarray(bids, dtype="float64").copy()
        if len(self.rows):
            landscape_clicks, landscape_cost = self.response(cost_per_click[self.rows, None])
            clicks[self.rows], cost_per_click[self.rows] = landscape_clicks[:, 0], landscape_cost[:, 0]
        return clicks, np.minimum(cost_per_click, bids)


def _profit_optimal(
    value_per_click, conservative, in_force, policy: BidPolicy, priced: _Pricing, predictions, spend_at_fixed
):
    """The optimizer's bids for the priceable keywords, their ranges with and without the change cap, and a note
    when a budget beat the change cap."""
    # The money rule as a ceiling on the bid: the highest bid whose expected cost per click stays at or below the
    # conservative value.
    step = policy.bid_increment
    highest = BidRange.of(value_per_click, in_force, policy.min_bid, policy.max_bid, None, None, step).high
    ceiling = priced.highest_bid_costing_at_most(conservative, highest, step)
    ranges = BidRange.of(value_per_click, in_force, policy.min_bid, policy.max_bid, policy.change_cap, ceiling, step)
    budgets = _remaining_budgets(policy.campaign_budgets, predictions, priced.rows, spend_at_fixed)
    campaigns = predictions["campaign"].astype(str).to_numpy()[priced.rows]
    chosen = optimize(value_per_click, ranges, priced, campaigns, budgets)
    spend = pd.Series(chosen.expected_spend).groupby(campaigns).sum()
    over = [name for name, budget in budgets.items() if spend.get(name, 0.0) > budget + 0.005]
    uncapped = BidRange.of(value_per_click, in_force, policy.min_bid, policy.max_bid, None, ceiling, step)
    if not over:
        return chosen, ranges, uncapped, ""
    # A budget is the advertiser's limit: it outranks the change cap where both cannot hold.
    ranges = BidRange(np.where(np.isin(campaigns, over), uncapped.low, ranges.low), ranges.high, step)
    chosen = optimize(value_per_click, ranges, priced, campaigns, budgets)
    return (
        chosen,
        ranges,
        uncapped,
        (
            f"; the budgets of {', '.join(over)} could not be met within the "
            f"{policy.max_bid_change:.0%} change cap, so their bids went lower"
        ),
    )


def _explore(bid, predictions, policy: BidPolicy, cold_start, in_force, ranges: BidRange):
    """(bids, explored): exploration only where the reports say which bid was in force (elsewhere an explored bid
    could teach the landscape nothing), never for cold starts, and only downwards in a campaign with a budget."""
    day = pd.Timestamp(predictions["date"].iloc[0]).date() if len(predictions) else dt.date.today()
    exploring = np.where(cold_start | ~np.isfinite(in_force), np.nan, bid)
    budgeted = predictions["campaign"].astype(str).isin(list(policy.campaign_budgets)).to_numpy()
    explored_bid, explored = explore(
        exploring,
        predictions["keyword_id"].to_numpy(),
        day,
        policy.exploration_seed,
        policy.exploration_share,
        policy.exploration_spread,
        ranges,
        budgeted,
    )
    explored &= ranges.allowed
    return np.where(explored, explored_bid, bid), explored


def _put(values: np.ndarray, rows: np.ndarray, replacement: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[rows] = replacement
    return out


def _totals(clicks, cost_per_click, value_per_click, keep, by_landscape, held, lowered) -> dict[str, float]:
    spend = np.where(keep, clicks * cost_per_click, 0.0)
    value = np.where(keep, clicks * value_per_click, 0.0)
    return {
        "keywords": float(keep.sum()),
        "clicks_assumed_unchanged": float((keep & ~by_landscape).sum()),
        "change_capped": float((keep & held).sum()),
        "lowered_to_ceiling": float((keep & lowered).sum()),
        "expected_clicks": float(np.nansum(np.where(keep, clicks, 0.0))),
        "expected_spend": float(np.nansum(spend)),
        "expected_value": float(np.nansum(value)),
        "expected_profit": float(np.nansum(value - spend)),
    }


def _remaining_budgets(
    budgets: dict[str, float], predictions: pd.DataFrame, optimized_rows: np.ndarray, spend: np.ndarray
) -> dict[str, float]:
    """Each campaign's budget less the expected spend of its keywords the optimizer does not bid (cold starts)."""
    if not budgets:
        return {}
    others = np.ones(len(predictions), dtype=bool)
    others[optimized_rows] = False
    fixed_spend = pd.Series(np.where(others, spend, 0.0)).groupby(predictions["campaign"].astype(str).to_numpy()).sum()
    return {name: max(0.0, budget - float(fixed_spend.get(name, 0.0))) for name, budget in budgets.items()}


def bid_rule_note(
    basis: dict[str, int],
    explored: int,
    policy: BidPolicy,
    change_capped: int = 0,
    lowered_to_ceiling: int = 0,
    clicks_assumed_unchanged: int = 0,
) -> str:
    """What decided the day's bids (how many bids each `bid_basis` decided, how many were explored, held by the change
    cap or lowered past it, and whose clicks are assumed not to respond to the bid), in a sentence per rule used;
    says plainly why bids are flat when they come from one configured value per click."""
    notes = []
    if basis.get("profit_optimal", 0):
        notes.append(
            f"{basis['profit_optimal']} keywords at the bid of highest expected profit on the bid landscape, "
            "below the value per click"
        )
    if basis.get("fixed_margin", 0):
        notes.append(
            f"{basis['fixed_margin']} keywords at the predicted value per click x (1 - "
            f"{policy.target_margin:g}), rounded down to {_increment_words(policy)}"
        )
    if basis.get("configured_value", 0):
        money = policy.account_currency.format
        flat = float(increments_down(policy.value_per_click * (1.0 - policy.target_margin), policy.bid_increment))
        exceptions = [name for name, count in (("explored", explored), ("capped", change_capped)) if count]
        notes.append(
            f"the reports carry no conversion value, so every click is valued at value_per_click "
            f"(BIDS_VALUE_PER_CLICK) {money(policy.value_per_click)}, and {basis['configured_value']} keywords "
            f"bid the same {money(flat)} = {money(policy.value_per_click)} x (1 - {policy.target_margin:g})"
            + (f", but for the {' and '.join(exceptions)} ones" if exceptions else "")
        )
        notes.insert(0, notes.pop())  # the reason the bids are flat comes first
    if basis.get("cold_start", 0):
        notes.append(
            f"{basis['cold_start']} keywords with under {policy.min_history_days} days of history from their "
            f"cluster's value per click x (1 - {max(policy.cold_start_margin, policy.target_margin):g})"
        )
    if explored:
        notes.append(f"{explored} of them explored: moved by up to ±{policy.exploration_spread:.0%} within the rules")
    if notes:
        notes.append(_cap_note(policy, change_capped, lowered_to_ceiling))
    bids = sum(basis.values())
    if clicks_assumed_unchanged:
        notes.append(
            (
                "clicks assumed unchanged"
                if clicks_assumed_unchanged >= bids
                else f"clicks assumed unchanged for "
                f"{clicks_assumed_unchanged} keywords the bid landscape does not price"
            )
            + f": {WHY_CLICKS_ARE_ASSUMED_UNCHANGED}"
        )
    if notes and not basis.get("configured_value", 0):
        notes.append(
            f"every bid's expected cost per click at or below the {policy.value_quantile:.0%} quantile of its "
            f"keyword's value per click: what a click is worth with {1 - policy.value_quantile:.0%} certainty"
        )
    return "; ".join(notes) or "no bids"


def _increment_words(policy: BidPolicy) -> str:
    """The bid increment in words: "the cent" where it is one, else "whole multiples of 1 JPY"."""
    unit = policy.account_currency
    if unit.billable_unit_micros == CENT:
        return "the cent"
    return f"whole multiples of {unit.format(unit.billable_unit)} {unit.code}"


def _cap_note(policy: BidPolicy, change_capped: int, lowered_to_ceiling: int) -> str:
    if policy.change_cap is None:
        return "no change cap (max_bid_change 0): a bid may move any distance from the bid in force"
    held = [
        f"{change_capped} held at that limit" if change_capped else "",
        f"{lowered_to_ceiling} lowered further, to the highest bid that keeps the money rule"
        if lowered_to_ceiling
        else "",
    ]
    return f"every bid within {policy.change_cap:.0%} of the bid in force (the reports' max CPC) where one is known" + (
        ": " + ", ".join(part for part in held if part) if any(held) else ""
    )


def clicks_note(economics: pd.DataFrame) -> str:
    """Whether the chosen bids' clicks respond to the bid, from `BidDecision.economics` (of a batch or a day)."""
    assumed, bids = (int(economics.loc["chosen", name]) for name in ("clicks_assumed_unchanged", "keywords"))
    if not assumed:
        return "respond to the bid (bid landscape)"
    return (
        "clicks assumed unchanged"
        + ("" if assumed >= bids else f" for {assumed:,} of {bids:,} keywords (no bid landscape price)")
        + f": {WHY_CLICKS_ARE_ASSUMED_UNCHANGED}"
    )


def economics_view(economics: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """`BidDecision.economics` as users read it, and a note under it: counts whole, money to the cent, and the fixed
    margin's row only where the landscape prices some keyword (elsewhere it holds the chosen bids: nothing to
    compare, as clicks assumed unchanged would make the higher margin look better every time)."""
    counts = economics[list(ECONOMICS_COUNTS)].astype(int)
    table = pd.concat([counts, economics.drop(columns=list(ECONOMICS_COUNTS)).round(2)], axis=1)
    assumed, bids = counts.loc["chosen", "clicks_assumed_unchanged"], counts.loc["chosen", "keywords"]
    if assumed and assumed >= bids:
        return table.loc[["chosen"]], (
            "Clicks assumed unchanged (no bid landscape): expected_profit holds every keyword's clicks at the "
            "champion's prediction, so it is not comparable between margins or with the fixed margin's."
        )
    if assumed:
        return table, (
            "fixed_margin: the fixed margin's bids where the bid landscape prices the keyword, and the chosen bids "
            f"for the {assumed:,} keywords whose clicks are assumed unchanged, which cannot compare two bids."
        )
    return table, ""
