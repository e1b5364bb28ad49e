"""Benchmark: the closed-loop backtest of the bid policies on the default simulated account, against the truth.

    .venv/bin/python benchmarks/bid_policy_backtest.py [--market both] [--seeds 7,8,9,10,11] [--keywords 2000]
        [--days 28] [--no-attribution] [--frontier 0.05,0.1,0.2,0.3,0.4] [--frontier-ideal]

For each market (`--market`: the simulator's auction shape, `share_of_bid`, `second_price` or `both`) and each market
seed: 90 days of reports under the advertiser's manual bids (2025-01-01...2025-03-31), the features, keyword clusters
and an XGBoost champion trained on the last 56 feature days (the platform's own training code). Then each policy
replays the next `--days` days in a closed loop (`daily_bids.bidding.backtest`), valuing clicks as the product does
(the pooled posterior of each keyword's history to date, the money rule at its 10% quantile).

Every day is judged against the simulator's truth: the expected profit of the bids in force at each keyword's true
value per click and true curves, as a share of the oracle's (the best bid below each true value), and the share of the
day's expected spend on keywords whose cost per click at their bid is at or above what a click truly earns: at the
policy's bids, and apart from it on keywords the policy did not bid that day, which keep the advertiser's bid (a
keyword launched that morning that no report has shown yet).

Attribution (the first seed of each market): `profit_optimal` replayed again with the true value per click in place of
the estimate, without the change cap, and without exploration. What each recovers is what it costs; what is left
once the true value is given is the landscape's (and whole-cent rounding's). It is also replayed with the posterior a
Bayesian who knew the simulated market's priors would form from the same history
(`daily_bids.simulator.ideal_estimate`): what that recovers is what a better estimator could still gain, and the
rest of the value estimate's cost is the data's.

Frontier (`--frontier`, the first seed of each market): `profit_optimal` replayed at each of the given quantiles of
the money rule (`BIDS_VALUE_QUANTILE`), to show what a surer bid costs in profit and what a bolder one costs in spend
on losing keywords; the chart goes to `--frontier-chart`. With `--frontier-ideal` the frontier values clicks with the
best posterior the data allow instead: how far any estimator could take each quantile.

The share-of-bid market's first seed also replays `profit_optimal` with a daily budget on every campaign (60% of its
share of the fixed margin's mean daily spend), to show the budgets hold.
"""

import argparse
import datetime as dt
import time
from pathlib import Path

import pandas as pd

from daily_bids.bidding.backtest import BACKTEST_POLICIES, Knowledge, run_backtest
from daily_bids.bidding.policy import BidPolicy
from daily_bids.features.keyword_features import roll
from daily_bids.models.clustering import behaviour_profiles, fit_clusters
from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
from daily_bids.simulator.auctions import MARKETS
from daily_bids.simulator.market import AdMarketSimulator

FIRST, LAST = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
FIRST_WEEK = pd.Timedelta(days=7)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--market", choices=[*MARKETS, "both"], default="both")
    parser.add_argument("--seeds", default="7,8,9,10,11", help="market seeds, comma-separated")
    parser.add_argument("--keywords", type=int, default=2000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--no-attribution", action="store_true")
    parser.add_argument("--frontier", default="", help="money-rule quantiles to replay on the first seed, e.g. 0.1,0.3")
    parser.add_argument("--frontier-chart", default="docs/images/value-quantile-frontier.png")
    parser.add_argument(
        "--frontier-ideal",
        action="store_true",
        help="replay the frontier with the best posterior the data allow (the simulator's priors known), not the "
        "product's estimate: how far any estimate could take each quantile",
    )
    args = parser.parse_args()
    frontier = [float(quantile) for quantile in args.frontier.split(",") if quantile]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    started, rows = time.perf_counter(), []
    for market in MARKETS if args.market == "both" else (args.market,):
        for number, seed in enumerate(seeds):
            simulator = AdMarketSimulator(seed=seed, keywords=args.keywords, market=market)
            print(f"\n## {market}, seed {seed}", flush=True)
            rows += replay(
                simulator,
                args.days,
                first_seed=number == 0,
                attribution=not args.no_attribution,
                frontier=frontier,
                frontier_knowledge=Knowledge(ideal_posterior=args.frontier_ideal),
            )
    table = pd.DataFrame(rows)
    print(
        f"\n{len(seeds)} seeds, {args.days} days, {args.keywords:,} keywords, {time.perf_counter() - started:.0f} s\n"
    )
    summary = table.groupby(["market", "policy"], sort=False).agg(
        share_of_oracle=("share_of_oracle", "mean"),
        share_lowest_seed=("share_of_oracle", "min"),
        share_after_first_week=("share_after_first_week", "mean"),
        share_after_first_week_lowest_seed=("share_after_first_week", "min"),
        worst_day_losing_spend=("worst_day_losing_spend", "max"),
        worst_day_losing_spend_elsewhere=("worst_day_losing_spend_elsewhere", "max"),
        seeds=("seed", "nunique"),
    )
    print(summary.reset_index().to_markdown(index=False, floatfmt=".3f"))
    if frontier:
        points = table[table["policy"].str.startswith("profit_optimal, quantile ")]
        print("\n" + points.drop(columns=["profit"]).to_markdown(index=False, floatfmt=".3f"))
        Path(args.frontier_chart).parent.mkdir(parents=True, exist_ok=True)
        Path(args.frontier_chart).write_bytes(frontier_png(points))
        print(f"chart: {args.frontier_chart}")


def replay(
    simulator: AdMarketSimulator,
    days: int,
    first_seed: bool,
    attribution: bool,
    frontier: list[float],
    frontier_knowledge: Knowledge = Knowledge(),
) -> list[dict]:
    reports = {
        FIRST + dt.timedelta(days=n): simulator.report(FIRST + dt.timedelta(days=n))
        for n in range((LAST - FIRST).days + 1)
    }
    history = pd.concat(reports.values(), ignore_index=True)
    features = {day: frame for day, frame, _ in roll(sorted(reports)[28:], reports.get, history_start=FIRST)}
    training = sorted(features)[-57:-1]
    frame = training_frame(
        pd.concat([features[d] for d in training]), pd.concat([reports[d + dt.timedelta(days=1)] for d in training])
    )
    model = train(frame, training[-1], TrainingParameters(training_days=56), log=lambda message: None)
    clusters = fit_clusters(behaviour_profiles(history[history["date"] > pd.Timestamp(LAST - dt.timedelta(days=56))]))

    def backtest(policy: BidPolicy, policies=BACKTEST_POLICIES, knowledge=Knowledge()):
        return run_backtest(
            simulator, history, model, clusters.assignments, policy, days, policies, lambda m: None, knowledge
        )

    result = backtest(BidPolicy())
    rows = [_judged(simulator, policy, daily) for policy, daily in result.daily.groupby("policy", sort=False)]
    if first_seed and attribution:
        variants = {
            "profit_optimal, true value": (BidPolicy(), Knowledge(true_value=True)),
            "profit_optimal, the best posterior the data allow": (BidPolicy(), Knowledge(ideal_posterior=True)),
            "profit_optimal, no change cap": (BidPolicy(max_bid_change=0.0), Knowledge()),
            "profit_optimal, no exploration": (BidPolicy(exploration_share=0.0), Knowledge()),
        }
        for name, (policy, knowledge) in variants.items():
            rows.append(_judged(simulator, name, backtest(policy, ("profit_optimal",), knowledge).daily))
    if first_seed:
        for quantile in frontier:
            replayed = backtest(BidPolicy(value_quantile=quantile), ("profit_optimal",), frontier_knowledge).daily
            name = f"profit_optimal, quantile {quantile:g}" + (
                ", best posterior" if frontier_knowledge.ideal_posterior else ""
            )
            rows.append({**_judged(simulator, name, replayed), "quantile": quantile})
    for row in rows:
        print(
            f"  {row['policy']:>32}: {row['share_of_oracle']:.1%} of the oracle's profit "
            f"({row['share_after_first_week']:.1%} after the first week), losing spend up to "
            f"{row['worst_day_losing_spend']:.1%} of a day's at its bids (and "
            f"{row['worst_day_losing_spend_elsewhere']:.1%} on keywords it did not bid); realized profit "
            f"{row['profit']:,.0f}",
            flush=True,
        )
    if first_seed and simulator.market == "share_of_bid":
        _budgets(result, history, backtest, days)
    return rows


def _judged(simulator: AdMarketSimulator, policy: str, daily: pd.DataFrame) -> dict:
    later = daily[daily["date"] >= daily["date"].min() + FIRST_WEEK]
    return {
        "market": simulator.market,
        "seed": simulator.params.seed,
        "policy": policy,
        "profit": float(daily["profit"].sum()),
        "share_of_oracle": float(daily["true_profit"].sum() / daily["oracle_profit"].sum()),
        "share_after_first_week": float(later["true_profit"].sum() / later["oracle_profit"].sum()),
        "worst_day_losing_spend": float(daily["losing_spend_share_at_policy_bids"].max()),
        "worst_day_losing_spend_elsewhere": float(daily["losing_spend_share_elsewhere"].max()),
        "bids_at_or_above_true_value": int(daily["bids_at_or_above_true_value"].sum()),
    }


def _budgets(result, history: pd.DataFrame, backtest, days: int) -> None:
    spend = result.daily[result.daily["policy"] == "fixed_margin"]["spend"].mean()
    campaign_share = (history.groupby("campaign", observed=True)["cost"].sum() / history["cost"].sum()).astype(float)
    budgets = {str(name): round(0.6 * spend * share, 2) for name, share in campaign_share.items()}
    budgeted = backtest(BidPolicy(campaign_budgets=budgets), ("profit_optimal",))
    row = budgeted.totals.iloc[0]
    over = budgeted.daily["campaigns_over_budget"].to_numpy()
    print(
        f"  with budgets (60% of the fixed margin's spend per campaign, {sum(budgets.values()):,.0f} a day): profit "
        f"{row['profit']:,.0f}, realized spend {row['spend']:,.0f} against {days * sum(budgets.values()):,.0f} "
        f"budgeted; campaigns whose expected spend was over budget, by day: {' '.join(str(n) for n in over)} "
        f"(of {len(budgets)})"
    )


def frontier_png(points: pd.DataFrame) -> bytes:
    """Per market, the share of the oracle's profit against the worst day's losing spend, a point per quantile."""
    from daily_bids.charts import figure_png, pyplot

    figure, axis = pyplot().subplots(figsize=(7, 4.5))
    for market, rows in points.groupby("market", sort=False):
        rows = rows.sort_values("quantile")
        axis.plot(100 * rows["worst_day_losing_spend"], 100 * rows["share_of_oracle"], marker="o", label=market)
        for _, row in rows.iterrows():
            axis.annotate(
                f"{row['quantile']:g}",
                (100 * row["worst_day_losing_spend"], 100 * row["share_of_oracle"]),
                textcoords="offset points",
                xytext=(5, -10),
            )
    axis.axvline(5.0, color="grey", linestyle=":", label="5% of a day's spend")
    axis.axhline(90.0, color="grey", linestyle="--", label="90% of the oracle's profit")
    axis.set_xlabel("spend on keywords losing money at their bid, worst day (%)")
    axis.set_ylabel("profit, share of the oracle's (%)")
    axis.set_title("The money rule's quantile: profit against spend at a loss")
    axis.legend()
    axis.grid(alpha=0.3)
    return figure_png(figure)


if __name__ == "__main__":
    main()
