"""Benchmark: the closed-loop backtest of the bid policies on the default simulated account, in each market.

    .venv/bin/python benchmarks/bid_policy_backtest.py [--market both] [--keywords 2000] [--days 28] [--seed 7]
        [--exploration-seeds 5]

`--market` is the simulator's auction shape (`share_of_bid`, `second_price`, or `both`, one after the other). Every
policy is also judged against the simulator's truth: its expected profit at each keyword's true value per click and
true curves as a share of the oracle's (the best bid below each true value), and the share of expected spend on
keywords whose cost per click at their bid is at or above what a click truly earns, on the worst day.

Set-up: 90 days of reports under the advertiser's manual bids (2025-01-01...2025-03-31), the features, keyword
clusters and an XGBoost champion trained on the last 56 feature days (the platform's own training code). Then each
policy replays the next `--days` days in a closed loop (`daily_bids.bidding.backtest`); profit_optimal replays them again
with other exploration seeds (its result depends on which bids it explored), and once more with a daily budget on
every campaign of 60% of its share of the fixed margin's mean daily spend.

Also printed: the ceiling on the gain, the expected profit of the simulator's true optimum against the fixed margin
at the true value per click (what a perfect landscape and a perfect value model would earn).
"""

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd

from daily_bids.bidding.backtest import BACKTEST_POLICIES, EXPERIMENTAL_POLICIES, run_backtest
from daily_bids.bidding.policy import BidPolicy
from daily_bids.features.keyword_features import roll
from daily_bids.models.clustering import behaviour_profiles, fit_clusters
from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
from daily_bids.simulator.auctions import MARKETS, share_of_bid
from daily_bids.simulator.market import AdMarketSimulator

TARGET_OVER_FIXED_MARGIN, TARGET_OVER_MANUAL = 0.15, 2.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--market", choices=[*MARKETS, "both"], default="both")
    parser.add_argument("--keywords", type=int, default=2000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--exploration-seeds", type=int, default=5)
    args = parser.parse_args()
    for market in MARKETS if args.market == "both" else (args.market,):
        print(f"\n## market: {market}", flush=True)
        run(AdMarketSimulator(seed=args.seed, keywords=args.keywords, market=market), args)


def run(simulator: AdMarketSimulator, args: argparse.Namespace) -> None:
    first, last = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
    print(
        f"set-up: {(last - first).days + 1} days x {args.keywords:,} keywords at manual bids, features, clusters "
        "and an XGBoost champion ...",
        flush=True,
    )
    reports = {
        first + dt.timedelta(days=n): simulator.report(first + dt.timedelta(days=n))
        for n in range((last - first).days + 1)
    }
    history = pd.concat(reports.values(), ignore_index=True)
    features = {day: frame for day, frame, _ in roll(sorted(reports)[28:], reports.get, history_start=first)}
    days = sorted(features)[-57:-1]
    frame = training_frame(
        pd.concat([features[d] for d in days]), pd.concat([reports[d + dt.timedelta(days=1)] for d in days])
    )
    model = train(frame, days[-1], TrainingParameters(training_days=56), log=lambda message: None)
    clusters = fit_clusters(behaviour_profiles(history[history["date"] > pd.Timestamp(last - dt.timedelta(days=56))]))

    def profit_optimal_only(bid_policy: BidPolicy):
        """`profit_optimal` alone replayed under another policy configuration, from the same state."""
        return run_backtest(
            simulator, history, model, clusters.assignments, bid_policy, args.days, ("profit_optimal",), lambda m: None
        )

    started = time.perf_counter()
    policies = (*BACKTEST_POLICIES, *EXPERIMENTAL_POLICIES)
    result = run_backtest(
        simulator, history, model, clusters.assignments, BidPolicy(), days=args.days, policies=policies
    )
    seconds = time.perf_counter() - started
    totals = result.totals.set_index("policy")
    # Exploration draws decide which bids vary and so what the landscape learns: other seeds give the spread.
    gains = [result.gain("profit_optimal", "fixed_margin")]
    for seed in range(1, args.exploration_seeds):
        other = profit_optimal_only(BidPolicy(exploration_seed=seed))
        gains.append(float(other.totals["profit"].iloc[0] / totals.loc["fixed_margin", "profit"] - 1.0))
    print(
        f"\n{args.days} closed-loop days from {last + dt.timedelta(days=1)}, {args.keywords:,} keywords "
        f"(seed {args.seed}), {seconds:.0f} s for the {len(policies)} policies\n"
    )
    print(result.totals.round(3).to_markdown(index=False))
    truth = result.daily.groupby("policy", sort=False)
    first_week = result.daily[result.daily["date"] < result.daily["date"].min() + pd.Timedelta(days=7)]
    print("\nagainst the truth (share of the oracle's expected profit; losing spend on the worst day):")
    for policy, rows in truth:
        later = rows[rows["date"] >= rows["date"].min() + pd.Timedelta(days=7)]
        week = first_week[first_week["policy"] == policy]
        print(
            f"  {policy:>15}: {rows['true_profit'].sum() / rows['oracle_profit'].sum():.1%} over all days, "
            f"{week['true_profit'].sum() / week['oracle_profit'].sum():.1%} in the first week, "
            f"{later['true_profit'].sum() / later['oracle_profit'].sum():.1%} after it; losing spend up to "
            f"{rows['losing_spend_share'].max():.1%} of a day's spend"
        )
    over_fixed, over_manual = result.gain("profit_optimal", "fixed_margin"), result.gain("profit_optimal", "manual")
    print(f"\nprofit_optimal vs fixed_margin: {over_fixed:+.1%} (target +{TARGET_OVER_FIXED_MARGIN:.0%})")
    print(
        f"  over {len(gains)} exploration seeds: mean {np.mean(gains):+.1%}, from {min(gains):+.1%} to "
        f"{max(gains):+.1%}"
    )
    print(f"profit_optimal vs manual: {1 + over_manual:.2f}x (target {TARGET_OVER_MANUAL:.0f}x)")
    print(f"bids at or above their expected value per click: {int(totals['bids_at_or_above_value'].sum())}")
    if simulator.market != "share_of_bid":
        return  # the ceiling and budget runs below are the share-of-bid market's
    spend = result.daily[result.daily["policy"] == "fixed_margin"]["spend"].mean()
    campaign_share = (history.groupby("campaign", observed=True)["cost"].sum() / history["cost"].sum()).astype(float)
    budgets = {str(name): round(0.6 * spend * share, 2) for name, share in campaign_share.items()}
    budgeted = profit_optimal_only(BidPolicy(campaign_budgets=budgets))
    ceiling = _ceiling(simulator)
    print(
        f"ceiling: the simulator's true optimum earns {ceiling - 1:+.1%} over the fixed margin in expectation, at "
        f"the true value per click; over manual: {ceiling * totals.loc['fixed_margin', 'profit'] / totals.loc['manual', 'profit']:.2f}x"
    )
    row = budgeted.totals.iloc[0]
    over = budgeted.daily["campaigns_over_budget"].to_numpy()
    print(
        f"\nwith budgets (60% of the fixed margin's spend per campaign, {sum(budgets.values()):,.0f} a day): "
        f"profit {row['profit']:,.0f}, realized spend {row['spend']:,.0f} against {args.days * sum(budgets.values()):,.0f} "
        f"budgeted; campaigns whose expected spend was over budget, by day: {' '.join(str(n) for n in over)} "
        f"(of {len(budgets)})"
    )


def _ceiling(simulator: AdMarketSimulator) -> float:
    """Expected profit of each keyword's true best bid over the fixed margin's, both at the true value per click."""
    latent = simulator.latent
    value = latent["conversion_rate"] * latent["order_value"]
    bids = value[:, None] * np.linspace(0.01, 0.99, 400)

    def profit(bid):
        outcome = share_of_bid(bid, latent["price_scale"][:, None])
        return outcome.click_factor * (value[:, None] - bid * outcome.price_fraction)

    weight = latent["base_volume"] * latent["ctr"]
    return float((weight * profit(bids).max(axis=1)).sum() / (weight * profit(0.7 * value[:, None])[:, 0]).sum())


if __name__ == "__main__":
    main()
