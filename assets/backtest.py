"""The closed-loop backtest of bid policies, on demand: materialize `bid_policy_backtest` from the UI or the CLI."""

import datetime as dt

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.metadata import readable
from assets.reports import VALIDATED_REPORT
from daily_bids.bidding.backtest import BACKTEST_POLICIES, cumulative_profit_png, run_backtest
from daily_bids.bidding.landscape import CONTEXT_DAYS, TRAINING_DAYS
from daily_bids.charts import png_markdown
from daily_bids.features.keyword_features import LOOKBACK_DAYS
from daily_bids.storage import tables
from daily_bids.storage.warehouse import chart_path
from resources.ad_platform import ReportSource, SimulatedAdPlatform
from resources.bid_policy import BidPolicyResource
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource


class BacktestConfig(dg.Config):
    days: int = Field(28, ge=1, le=365, description="Days replayed after the latest report day, per policy.")
    policies: list[str] = Field(
        list(BACKTEST_POLICIES), description=f"Policies to compare, of {list(BACKTEST_POLICIES)}."
    )
    seed: int = Field(0, description="Seed of profit_optimal's exploration draws.")


@dg.asset(group_name="evaluation", kinds={"pandas", "parquet"}, deps=[VALIDATED_REPORT])
def bid_policy_backtest(
    context: dg.AssetExecutionContext,
    config: BacktestConfig,
    champion_model,
    keyword_clusters: pd.DataFrame,
    ad_platform: ReportSource,
    bid_policy: BidPolicyResource,
    warehouse: WarehouseResource,
    tracker: ExperimentTracker,
) -> dg.Output[pd.DataFrame]:
    """Each policy replays the same simulated days in a closed loop, from the warehouse's latest state and with the
    serving champion: realized clicks, spend, conversion value, profit and ROAS per policy and day."""
    if not isinstance(ad_platform, SimulatedAdPlatform):
        raise dg.Failure(
            description="the backtest replays days on the simulator: a real account's response to other "
            "bids cannot be replayed (BIDS_SOURCE=simulator)",
            allow_retries=False,
        )
    store = warehouse.warehouse()
    available = store.list_partitions(tables.VALIDATED_REPORT)
    if not available:
        raise dg.Failure(
            description=f"{tables.VALIDATED_REPORT} has no partitions yet: materialize the reports first",
            allow_retries=False,
        )
    needed = TRAINING_DAYS + CONTEXT_DAYS + LOOKBACK_DAYS
    history_days = [d for d in available if d > available[-1] - dt.timedelta(days=needed)]
    history = store.read_partitions(tables.VALIDATED_REPORT, history_days)
    policy = bid_policy.model_copy(update={"exploration_seed": config.seed})
    result = run_backtest(
        ad_platform.simulator,
        history,
        champion_model,
        keyword_clusters,
        policy,
        config.days,
        tuple(config.policies),
        log=context.log.info,
    )
    png = cumulative_profit_png(result.daily)
    store.write_bytes(chart_path("bid_policy_backtest", "cumulative_profit.png"), png)
    totals = result.totals.set_index("policy")
    metrics = {
        f"{name}_{column}": float(totals.loc[name, column])
        for name in totals.index
        for column in (
            "profit",
            "clicks",
            "spend",
            "conversion_value",
            "roas",
            "true_profit",
            "share_of_oracle",
            "worst_day_losing_spend_share",
            "worst_day_losing_spend_share_at_policy_bids",  # without keywords the policy has not bid yet
        )
    }
    gains = {}
    if {"profit_optimal", "fixed_margin"} <= set(totals.index):
        gains["profit_optimal_vs_fixed_margin"] = result.gain("profit_optimal", "fixed_margin")
    if {"profit_optimal", "manual"} <= set(totals.index):
        gains["profit_optimal_vs_manual"] = result.gain("profit_optimal", "manual")
    run_id = tracker.log_run(
        f"bid_policy_backtest {config.days}d",
        "backtest",
        {
            "days": config.days,
            "policies": ",".join(config.policies),
            "seed": config.seed,
            "start": history_days[-1] + dt.timedelta(days=1),
            "champion": champion_model.version,
        },
        {**metrics, **gains},
        {"cumulative_profit.png": png},
    )
    return dg.Output(
        result.daily.drop(columns=["landscape"]),
        metadata=readable(
            {
                "days": config.days,
                "replayed": f"{history_days[-1] + dt.timedelta(days=1)}...{history_days[-1] + dt.timedelta(days=config.days)}",
                "totals": dg.MetadataValue.md(result.totals.round(2).to_markdown(index=False)),
                **gains,
                **{f"{name}_profit": float(totals.loc[name, "profit"]) for name in totals.index},
                "cumulative_profit": dg.MetadataValue.md(png_markdown(png, "cumulative profit by policy")),
                "cumulative_profit_png": dg.MetadataValue.path(
                    store.display_uri(chart_path("bid_policy_backtest", "cumulative_profit.png"))
                ),
                "mlflow_run_id": run_id,
            }
        ),
    )
