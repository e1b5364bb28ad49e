"""A closed-loop backtest of bid policies on the simulator.

Every policy starts from the same state: the same report history, the same champion model and clusters. Each day it
bids with the platform's own code (the rolling features, `predict_next_day`, the bid landscape and `decide_bids`),
the simulator plays the next day with those bids in force, and that report feeds the next day's features and
landscape. The simulator's noise is a function of the seed and the day, so every policy meets the same market:
the differences in profit are the policies'.

Policies: `manual` keeps the advertiser's own bids; `fixed_margin` is the platform's margin rule, without
exploration; `profit_optimal` bids from the landscape, and pays for its own exploration. Both of the platform's
policies value a click as the product does: the pooled posterior of each keyword's whole history to date
(`daily_bids.models.value_per_click`), with the expected cost per click held at or below its conservative quantile.

`Knowledge` replays a policy with part of the truth given to it (the true value per click, or the posterior a
Bayesian who knew the market's priors would form: `daily_bids.simulator.ideal_estimate`), or part of its rules lifted
(the change cap, exploration): the profit each one recovers is what it costs the platform.

Each day is also judged against the simulator's truth, not the platform's own estimates: the expected profit of the
bids in force at each keyword's true value per click and true curves (`true_profit`), the same for the oracle's bids,
the best below each true value (`oracle_profit`), and the share of the expected spend that goes to keywords whose
cost per click at their bid is at or above what a click truly earns (`losing_spend_share`). That share is split by
whose bid it was: the policy's (`losing_spend_share_at_policy_bids`), or the advertiser's bid still in force on a
keyword the policy did not bid that day (`losing_spend_share_elsewhere`): a keyword launched that morning, which no
report has shown yet, or one the policy found no profitable bid for and so left as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.bidding.decision import decide_bids
from daily_bids.bidding.landscape import (
    CONTEXT_DAYS,
    TRAINING_DAYS,
    LandscapeUnavailable,
    bid_context,
    landscape_for_day,
)
from daily_bids.bidding.policy import BidPolicy
from daily_bids.features.keyword_features import LOOKBACK_DAYS, roll
from daily_bids.models.prediction import predict_next_day
from daily_bids.models.value_per_click import add_reports, posterior
from daily_bids.schema import as_day, numeric
from daily_bids.simulator.ideal_estimate import ideal_value_posterior
from daily_bids.simulator.market import AdMarketSimulator

BACKTEST_POLICIES = ("manual", "fixed_margin", "profit_optimal")


@dataclass(frozen=True)
class Knowledge:
    """What a replay knows beyond the platform: `true_value` gives it each keyword's true value per click (with no
    spread) in place of the pooled estimate; `ideal_posterior` the posterior of each keyword's history under the
    simulator's own priors, the best any estimator from the same data can do."""

    true_value: bool = False
    ideal_posterior: bool = False


@dataclass(frozen=True)
class BacktestResult:
    daily: pd.DataFrame  # policy, date, clicks, spend, conversion_value, profit, roas, bids, explored, ...
    totals: pd.DataFrame  # one row per policy

    def gain(self, policy: str, over: str) -> float:
        """Realized profit of `policy` relative to `over` (0.15 is 15% more)."""
        profit = self.totals.set_index("policy")["profit"]
        return float(profit[policy] / profit[over] - 1.0)


def run_backtest(
    simulator: AdMarketSimulator,
    history: pd.DataFrame,
    model,
    clusters: pd.DataFrame | None,
    bid_policy: BidPolicy,
    days: int = 28,
    policies: tuple[str, ...] = BACKTEST_POLICIES,
    log: Callable[[str], None] = print,
    knowledge: Knowledge = Knowledge(),
) -> BacktestResult:
    """Replay `days` days after the last day of `history` (validated reports) for each of `policies`."""
    unknown = set(policies) - set(BACKTEST_POLICIES)
    if unknown:
        raise ValueError(f"unknown backtest policies {sorted(unknown)}; choose from {list(BACKTEST_POLICIES)}")
    by_day = {key.date(): frame.reset_index(drop=True) for key, frame in history.groupby(as_day(history["date"]))}
    if not by_day:
        raise ValueError("the backtest needs report history to start from")
    start, history_start = max(by_day), min(by_day)
    _, features, state = next(roll([start], by_day.get, history_start=history_start))  # the same start for all
    replayed = [start + dt.timedelta(days=number) for number in range(1, days + 1)]
    oracle = {
        day: float(simulator.expected_outcomes(day, simulator.oracle_bids(day))["expected_profit"].sum())
        for day in replayed
    }
    frames = []
    for policy in policies:
        log(f"backtest {policy}: {days} days from {start + dt.timedelta(days=1)}")
        frames.append(
            _replay(
                policy,
                simulator,
                dict(by_day),
                (features, state),
                history_start,
                start,
                model,
                clusters,
                bid_policy,
                days,
                log,
                knowledge,
            )
        )
    daily = pd.concat(frames, ignore_index=True)
    daily["oracle_profit"] = daily["date"].dt.date.map(oracle).astype("float64")
    totals = daily.groupby("policy", sort=False)[["clicks", "spend", "conversion_value", "profit"]].sum()
    totals["roas"] = totals["conversion_value"] / totals["spend"]
    truth = daily.groupby("policy", sort=False)
    totals["true_profit"] = truth["true_profit"].sum()
    totals["share_of_oracle"] = totals["true_profit"] / truth["oracle_profit"].sum()
    totals["worst_day_losing_spend_share"] = truth["losing_spend_share"].max()
    totals["worst_day_losing_spend_share_at_policy_bids"] = truth["losing_spend_share_at_policy_bids"].max()
    totals["bids_at_or_above_true_value"] = truth["bids_at_or_above_true_value"].sum()
    totals["bids_at_or_above_value"] = daily.groupby("policy", sort=False)["bids_at_or_above_value"].sum()
    totals["days_over_budget"] = daily.groupby("policy", sort=False)["campaigns_over_budget"].apply(
        lambda s: int((s > 0).sum())
    )
    return BacktestResult(daily, totals.reset_index())


def _replay(
    policy: str,
    simulator: AdMarketSimulator,
    reports: dict[dt.date, pd.DataFrame],
    starting_point,
    history_start: dt.date,
    start: dt.date,
    model,
    clusters,
    bid_policy: BidPolicy,
    days: int,
    log,
    knowledge: Knowledge,
) -> pd.DataFrame:
    rows = []
    features, state = starting_point
    if policy == "fixed_margin":  # the margin rule alone: no exploration
        bid_policy = bid_policy.model_copy(update={"policy": "fixed_margin", "exploration_share": 0.0})
    elif policy == "profit_optimal":
        bid_policy = bid_policy.model_copy(update={"policy": "profit_optimal"})
    totals = add_reports(None, reports.values())
    for number in range(1, days + 1):
        today = start + dt.timedelta(days=number - 1)
        day = today + dt.timedelta(days=1)
        in_force = simulator.manual_bids()
        bid_by_policy = pd.Series(policy == "manual", index=in_force.index)  # manual: the advertiser's bids are its own
        summary = {
            "bids": 0,
            "explored": 0,
            "bids_at_or_above_value": 0,
            "campaigns_over_budget": 0,
            "expected_profit": np.nan,
            "landscape": "",
        }
        if policy != "manual":
            window = {d: f for d, f in reports.items() if d > today - dt.timedelta(days=CONTEXT_DAYS)}
            context = bid_context(pd.concat(window.values(), ignore_index=True), today)
            landscape, note = None, "not used"
            if policy == "profit_optimal":
                landscape, note = _landscape(reports, today)
            predictions = predict_next_day(
                features, model, clusters, value_posterior=_value_posterior(simulator, totals, knowledge)
            )
            decision = decide_bids(predictions, bid_policy, landscape, context, note)
            bids = decision.bids
            in_force.loc[bids["keyword_id"].to_numpy()] = bids["bid"].to_numpy()
            bid_by_policy = pd.Series(in_force.index.isin(bids["keyword_id"].to_numpy()), index=in_force.index)
            summary.update(
                bids=len(bids),
                explored=int(bids["exploration"].sum()),
                bids_at_or_above_value=int((bids["bid"] >= bids["expected_value_per_click"]).sum()),
                campaigns_over_budget=_campaigns_over_budget(bids, bid_policy.campaign_budgets),
                expected_profit=float(decision.economics.loc["chosen", "expected_profit"]),
                landscape=note,
            )
        outcomes = simulator.expected_outcomes(day, in_force)
        summary.update(_truth(outcomes, bid_by_policy.reindex(outcomes["keyword_id"]).to_numpy(dtype=bool)))
        report = simulator.report(day, in_force)
        reports[day] = report
        totals = add_reports(totals, [report])
        cost, value = numeric(report["cost"]).sum(), numeric(report["conversion_value"]).sum()
        rows.append(
            {
                "policy": policy,
                "date": pd.Timestamp(day),
                "clicks": int(numeric(report["clicks"]).sum()),
                "spend": round(float(cost), 2),
                "conversion_value": round(float(value), 2),
                "profit": round(float(value - cost), 2),
                "roas": float(value / cost) if cost else np.nan,
                **summary,
            }
        )
        _, features, state = next(roll([day], reports.get, state=state, history_start=history_start))
        for old in [d for d in reports if d < day - dt.timedelta(days=TRAINING_DAYS + LOOKBACK_DAYS)]:
            del reports[old]  # older than any feature window or landscape training day
        if number % 7 == 0 or number == days:
            done = pd.DataFrame(rows)
            log(f"backtest {policy}: day {number}/{days}, profit so far {done['profit'].sum():,.0f}")
    return pd.DataFrame(rows)


def _value_posterior(simulator: AdMarketSimulator, totals: pd.DataFrame, knowledge: Knowledge) -> pd.DataFrame:
    """Each keyword's value per click and its spread, by keyword_id: pooled from its totals to date, as the product's
    `keyword_value`, or the truth with no spread."""
    if knowledge.true_value:
        ids = simulator.keyword_dimensions["keyword_id"].to_numpy()
        truth = simulator.true_value_per_click
        return pd.DataFrame({"value_per_click": truth, "value_per_click_cv": 0.0}, index=ids)
    if knowledge.ideal_posterior:
        match_type = pd.Series(simulator.latent["match_type"], index=simulator.latent["keyword_id"])
        return ideal_value_posterior(totals, match_type.reindex(totals["keyword_id"].to_numpy()).to_numpy())
    table, _ = posterior(totals)
    return table.set_index("keyword_id")[["value_per_click", "value_per_click_cv"]]


def _truth(outcomes: pd.DataFrame, bid_by_policy: np.ndarray) -> dict[str, float]:
    """A day's bids in force judged at the simulator's true values and curves, in expectation. `bid_by_policy` says,
    row by row, whether the policy set that keyword's bid that day."""
    losing = (outcomes["expected_cost_per_click"] >= outcomes["true_value_per_click"]).to_numpy()
    spend = outcomes["expected_spend"].to_numpy()

    def share(rows: np.ndarray) -> float:
        return float(spend[rows].sum() / spend.sum()) if spend.sum() else 0.0

    return {
        "true_profit": float(outcomes["expected_profit"].sum()),
        "losing_spend_share": share(losing),
        "losing_spend_share_at_policy_bids": share(losing & bid_by_policy),
        "losing_spend_share_elsewhere": share(losing & ~bid_by_policy),
        "bids_at_or_above_true_value": int((outcomes["bid"] >= outcomes["true_value_per_click"]).sum()),
    }


def _landscape(reports: dict[dt.date, pd.DataFrame], today: dt.date):
    """The landscape trained on the reports through `today`, or None and why not."""
    first = today - dt.timedelta(days=TRAINING_DAYS + CONTEXT_DAYS)
    window = pd.concat([f for d, f in reports.items() if d >= first], ignore_index=True)
    try:
        landscape = landscape_for_day(window, today, TRAINING_DAYS)
    except LandscapeUnavailable as reason:
        return None, f"no bid landscape: {reason}"
    return landscape, landscape.describe()


def _campaigns_over_budget(bids: pd.DataFrame, budgets: dict[str, float]) -> int:
    """Campaigns whose expected spend (with a cent of rounding) is above their budget."""
    if not budgets:
        return 0
    spend = (bids["expected_clicks"] * bids["expected_cost_per_click"]).groupby(bids["campaign"].astype(str)).sum()
    return int(sum(spend.get(name, 0.0) > budget + 0.01 for name, budget in budgets.items()))


def cumulative_profit_png(daily: pd.DataFrame) -> bytes:
    """A line per policy of cumulative realized profit by day."""
    from daily_bids.charts import figure_png, pyplot

    figure, axis = pyplot().subplots(figsize=(8, 4))
    for policy, rows in daily.groupby("policy", sort=False):
        axis.plot(rows["date"], rows["profit"].cumsum(), label=policy, linewidth=2)
    axis.set_ylabel("cumulative realized profit")
    axis.set_title("Closed-loop backtest: cumulative profit by policy")
    axis.legend()
    axis.grid(alpha=0.3)
    axis.tick_params(axis="x", rotation=30)
    return figure_png(figure)
