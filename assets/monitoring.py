"""How yesterday's predictions and bids turned out: the model monitoring table, the decline check, and the value
rule in truth (realized against predicted value per click, and the losing-spend check)."""

import datetime as dt

import dagster as dg
import pandas as pd

from assets.checks import CHECK_POLICY, each_day
from assets.metadata import readable
from assets.models import champion_model, keyword_clusters
from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from assets.reports import VALIDATED_REPORT
from assets.retraining import DATA_THROUGH, DECLINE_CHECK
from assets.serving import BIDS, PREDICTIONS
from daily_bids.charts import png_markdown
from daily_bids.monitoring import outcomes as monitoring
from daily_bids.monitoring import value_rule
from daily_bids.settings import Settings
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse, chart_path
from resources.warehouse import WarehouseResource

# Partition D of the monitoring joins the report of D with what partition D-1 predicted and bid for D.
_MADE_THE_DAY_BEFORE = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
)


@dg.asset(
    name=tables.MONITORING,
    group_name="monitoring",
    kinds={"pandas", "parquet"},
    deps=[
        VALIDATED_REPORT,
        keyword_clusters,
        dg.AssetDep(PREDICTIONS, partition_mapping=_MADE_THE_DAY_BEFORE),
        dg.AssetDep(BIDS, partition_mapping=_MADE_THE_DAY_BEFORE),
    ],
    **DAILY_ASSET_POLICIES,
)
def model_monitoring(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """Partition D: the report of D against the predictions and bids made for D (in partition D-1). Error of
    clicks, conversions and value (MAE, RMSE, mean Poisson deviance, calibration), overall and per cluster, and the
    realized economics of the bids: spend, conversion value, profit, ROAS, and the share of keywords whose cost per
    click came out above their expected value per click. Days before any prediction was made have no rows: on a new
    deployment the first daily run monitors nothing yet (its `why_empty` metadata says from which partition it fills).

    Its metadata also judges the value rule over the 28 report days ending at the (last) partition day: realized
    against predicted value per click by decile of the prediction (a table and a chart), and the share of the spend
    on bid keywords whose clicks earned less than they cost (`losing_spend_share`, judged by `losing_spend`)."""
    store = warehouse.warehouse()
    clusters = store.read_table(tables.CLUSTERS) if store.table_exists(tables.CLUSTERS) else None
    frames = []
    for day in partition_days(context):
        made_on = day - dt.timedelta(days=1)
        if not store.partition_exists(tables.PREDICTIONS, made_on):
            context.log.info(f"{day}: no predictions were made for it (partition {made_on} of {tables.PREDICTIONS})")
            continue
        bids = store.read_partitions(tables.BIDS, [made_on]) if store.partition_exists(tables.BIDS, made_on) else None
        frames.append(
            monitoring.monitor_day(
                day,
                store.read_partitions(tables.VALIDATED_REPORT, [day]),
                store.read_partitions(tables.PREDICTIONS, [made_on]),
                bids,
                clusters,
            )
        )
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(monitoring.MONITORING_COLUMNS))
    metadata = {"days_monitored": len(frames), "rows": len(rows)}
    if not frames:
        metadata["why_empty"] = why_empty(store, partition_days(context))
        context.log.info(metadata["why_empty"])
    if frames:
        history = _history(store, partition_days(context)[0], rows)
        png = monitoring.real_vs_predicted_png(history)
        store.write_bytes(chart_path(tables.MONITORING, "real_vs_predicted.png"), png)
        metadata |= {
            **monitoring.metadata_summary(rows),
            "real_vs_predicted_28d": dg.MetadataValue.md(png_markdown(png, "real vs predicted, last 28 days")),
            "real_vs_predicted_png": dg.MetadataValue.path(
                store.display_uri(chart_path(tables.MONITORING, "real_vs_predicted.png"))
            ),
            **_value_rule_metadata(store, partition_days(context)[-1]),
        }
    return dg.Output(rows, metadata=readable(metadata))


def why_empty(store: Warehouse, days: list[dt.date]) -> str:
    """Why the monitoring of `days` has no rows, and from which partition it fills: it judges report D against the
    predictions made the day before (partition D-1), so a deployment's first predictions are judged the next day."""
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]}...{days[-1]}"
    made = [d for d in store.list_partitions(tables.PREDICTIONS) if d >= days[0] - dt.timedelta(days=1)]
    reason = (
        f"Empty: no predictions were made for {span} (monitoring judges report D against the predictions made the "
        f"day before, partition D-1 of {tables.PREDICTIONS})."
    )
    if made:
        first = made[0] + dt.timedelta(days=1)
        return (
            f"{reason} The first predictions after it are of partition {made[0]}: monitoring has rows from {first} on."
        )
    return (
        f"{reason} No predictions are stored yet: the first daily run makes them (partition D of "
        f"{tables.PREDICTIONS}), and the next day's run fills partition D+1 of the monitoring."
    )


def _value_rule_metadata(store: Warehouse, day: dt.date) -> dict:
    """The value rule over the 28 report days ending at `day`: the decile table and chart, and the losing spend."""
    window = value_rule.read_keyword_days(store, day - dt.timedelta(days=value_rule.WINDOW_DAYS - 1), day)
    if window.empty:
        return {}
    deciles = value_rule.value_per_click_deciles(window)
    spend = value_rule.losing_spend(window)
    png = value_rule.value_per_click_png(deciles)
    path = chart_path(tables.MONITORING, "value_per_click_by_decile.png")
    store.write_bytes(path, png)
    metadata = {
        "value_rule_days": spend.days,
        "value_per_click_by_decile": dg.MetadataValue.md(value_rule.deciles_markdown(deciles)),
        "value_per_click_by_decile_28d": dg.MetadataValue.md(
            png_markdown(png, "realized vs predicted value per click by decile, last 28 days")
        ),
        "value_per_click_by_decile_png": dg.MetadataValue.path(store.display_uri(path)),
    }
    if spend.not_reported:
        return metadata | {"losing_spend_note": f"the reports do not report {' or '.join(spend.not_reported)}"}
    # losing_spend_share: the figure the `losing_spend` check judges (absent when there was no spend to judge).
    return (
        metadata
        | {
            name: value
            for name, value in spend.metadata().items()
            if name in ("losing_spend_share", "losing_spend", "losing_keywords")
        }
        | {"bid_spend_28d": spend.spend}
    )


def _history(store: Warehouse, first_day: dt.date, rows: pd.DataFrame) -> pd.DataFrame:
    """The stored monitoring rows of the 28 days before `first_day`, then `rows`."""
    earlier = [
        d for d in store.list_partitions(tables.MONITORING) if first_day - dt.timedelta(days=28) <= d < first_day
    ]
    return pd.concat(
        [store.read_partitions(tables.MONITORING, earlier), rows] if earlier else [rows], ignore_index=True
    )


@dg.asset_check(
    asset=model_monitoring,
    name=DECLINE_CHECK.name,
    blocking=False,
    description="WARN when the serving champion's mean Poisson deviance of clicks over the last 7 monitored "
    "days is worse than its holdout deviance by more than BIDS_DECLINE_MARGIN (10%). The "
    "models' automation retrains them when this fails.",
    **CHECK_POLICY,
)
def model_decline(
    context: dg.AssetCheckExecutionContext,
    model_monitoring: pd.DataFrame,
    warehouse: WarehouseResource,
    settings: dg.ResourceParam[Settings],
):
    store = warehouse.warehouse()
    champion = context.instance.get_latest_materialization_event(champion_model.key)

    def judge(days: list[dt.date], rows: pd.DataFrame) -> dg.AssetCheckResult:
        if champion is None:
            return dg.AssetCheckResult(passed=True, metadata={"note": "no champion yet"})
        metadata = champion.asset_materialization.metadata
        if "champion_holdout_clicks_poisson_deviance" not in metadata or DATA_THROUGH not in metadata:
            return dg.AssetCheckResult(
                passed=True,
                metadata={
                    "note": "the champion was stored before it recorded its holdout deviance; the next retraining does"
                },
            )
        version = metadata["model_version"].value
        reference = metadata["champion_holdout_clicks_poisson_deviance"].value
        # Only days this champion predicted after the gate last judged it (on a holdout ending `data_through`): a
        # retrained champion, or one the gate kept on fresher data, starts with a clean slate.
        judged_through = dt.date.fromisoformat(metadata[DATA_THROUGH].value)
        start = max(
            days[-1] - dt.timedelta(days=monitoring.DECLINE_WINDOW_DAYS - 1), judged_through + dt.timedelta(days=1)
        )
        window = [d for d in store.list_partitions(tables.MONITORING) if start <= d <= days[-1]]
        history = store.read_partitions(tables.MONITORING, window) if window else model_monitoring.iloc[0:0]
        verdict = monitoring.rolling_decline(
            history[history["model_version"] == version], reference, settings.decline_margin
        )
        return dg.AssetCheckResult(
            passed=not verdict.declined,
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict.explanation,
            metadata={**verdict.metadata(), "champion": version, "days_judged_from": start.isoformat()},
        )

    yield from each_day(context, warehouse, model_monitoring, judge)


@dg.asset_check(
    asset=model_monitoring,
    name="losing_spend",
    blocking=False,
    description="WARN when, over the last 28 report days, more than BIDS_LOSING_SPEND_WARN_SHARE (30%) of the spend "
    "on keywords the platform bid on went to keywords whose realized value per click (conversion value / clicks) "
    "was below their average cost per click: the bids were made below the predicted value of a click, so this "
    "judges whether clicks really earned what the bids assumed. Passes with a note on fewer than 28 monitored days "
    "or on reports without conversion value or cost.",
    **CHECK_POLICY,
)
def losing_spend(
    context: dg.AssetCheckExecutionContext,
    model_monitoring: pd.DataFrame,
    warehouse: WarehouseResource,
    settings: dg.ResourceParam[Settings],
):
    store = warehouse.warehouse()
    days = partition_days(context)
    # One read for the whole run: every day's window is a slice of it.
    history = value_rule.read_keyword_days(store, days[0] - dt.timedelta(days=value_rule.WINDOW_DAYS - 1), days[-1])

    def judge(judged: list[dt.date], rows: pd.DataFrame) -> dg.AssetCheckResult:
        verdict = value_rule.judge_losing_spend(
            value_rule.trailing(history, judged[-1]), settings.losing_spend_warn_share
        )
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict.explanation,
            metadata={**verdict.metadata, "window_ends": judged[-1].isoformat()},
        )

    yield from each_day(context, warehouse, model_monitoring, judge)
