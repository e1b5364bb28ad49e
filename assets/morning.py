"""The morning report: the business view of a partition, once its bids are published (`daily_bids.monitoring.
morning_report` holds what it says; this module reads the warehouse and the instance for it)."""

import base64
import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

# Dagster has no public API yet that reads checks' verdicts by partition; the instance's storage takes this filter.
# Not exported by dagster: the only way to ask for a check's latest verdict on one partition.
from dagster._core.event_api import PartitionKeyFilter

from assets.monitoring import model_monitoring
from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from assets.reports import VALIDATED_REPORT
from assets.serving import BIDS, PREDICTIONS, published_bids
from daily_bids.bidding.landscape import BidLandscape, LandscapeUnavailable, bid_context
from daily_bids.charts import png_markdown
from daily_bids.monitoring import morning_report as morning
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse, chart_path
from resources.bid_policy import BidPolicyResource
from resources.warehouse import WarehouseResource

MORNING_REPORTS = "exports/morning_report"
# The report's columns: the morning report's, and those the landscape's context is read from.
REPORT_COLUMNS = [*morning.REPORT_INPUTS, "search_impression_share"]


def morning_report_path(effective_day: dt.date) -> str:
    """Where the report for the bids of `effective_day` is written: beside the Ads Editor CSV's folder."""
    return f"{MORNING_REPORTS}/morning_report_{effective_day.isoformat()}.html"


@dg.asset(
    name=tables.MORNING_REPORT,
    group_name="monitoring",
    kinds={"pandas", "parquet", "html"},
    deps=[published_bids, model_monitoring, VALIDATED_REPORT, BIDS, PREDICTIONS],
    **DAILY_ASSET_POLICIES,
)
def morning_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, bid_policy: BidPolicyResource
) -> dg.Output[pd.DataFrame]:
    """Partition D, read on the morning of D+1: yesterday's (D) clicks, spend, value, profit and ROAS under the bids in
    force, against what partition D-1 predicted for them; today's (D+1) expected clicks, spend, value and profit of the
    bids of partition D, against yesterday and against keeping the bids in force; the same per campaign; the largest
    bid moves and what decided them; and the checks that warned or failed on the partition. Money is in the account's
    currency. One row per campaign; the metadata shows the tables and a chart, and names the HTML file to mail."""
    store = warehouse.warehouse()
    reports, rows = {}, []
    for day in partition_days(context):
        reports[day] = _report_of(context, store, day, bid_policy.currency)
        rows.append(reports[day].table().assign(date=pd.Timestamp(day)))
    latest = reports[max(reports)]
    png = latest.chart_png()
    store.write_bytes(chart_path(tables.MORNING_REPORT, "morning_report.png"), png)
    for report in reports.values():
        chart = base64.b64encode(png if report is latest else report.chart_png()).decode()
        store.write_bytes(morning_report_path(report.effective_day), report.html(chart).encode())
    account = latest.account()
    table = pd.concat(rows, ignore_index=True)
    return dg.Output(
        table[["date", *[c for c in table.columns if c != "date"]]],
        metadata={
            "summary": dg.MetadataValue.md("\n".join(f"- {line}" for line in latest.summary_lines())),
            "account": dg.MetadataValue.md(latest.account_view().to_markdown()),
            "chart": dg.MetadataValue.md(png_markdown(png, "the account, yesterday and today")),
            "chart_png": dg.MetadataValue.path(
                store.display_uri(chart_path(tables.MORNING_REPORT, "morning_report.png"))
            ),
            "by_campaign": dg.MetadataValue.md(latest.campaign_view().to_markdown()),
            "largest_moves": dg.MetadataValue.md(
                latest.moves_view().to_markdown(index=False) if len(latest.moves) else "No bid moved."
            ),
            "checks_warned_or_failed": dg.MetadataValue.md(
                latest.checks_view().to_markdown(index=False) if latest.problems() else "None."
            ),
            "checks_judged": len(latest.checks),
            "checks_warned_or_failed_count": len(latest.problems()),
            "report_html": dg.MetadataValue.path(store.display_uri(morning_report_path(latest.effective_day))),
            "currency": latest.currency,
            # Plain numbers, which the UI's Plots tab draws over time.
            **{
                f"{scenario}_{name}": round(float(account.loc[name, scenario]), 2)
                for scenario in ("actual", "expected", "kept")
                for name in ("spend", "value", "profit")
                if np.isfinite(account.loc[name, scenario])
            },
        },
    )


def _report_of(
    context: dg.AssetExecutionContext, store: Warehouse, day: dt.date, currency: str
) -> morning.MorningReport:
    before = day - dt.timedelta(days=1)
    for table in (tables.VALIDATED_REPORT, tables.PREDICTIONS, tables.BIDS):
        if not store.partition_exists(table, day):
            raise dg.Failure(
                description=f"no morning report for {day}: partition {day} of {table} has not been materialized "
                "(run daily_bid_job for the day first)",
                allow_retries=False,
            )
    report = _read_report(store, day)
    published_before = _read(store, tables.PUBLISHED_BIDS, before, ("keyword_id", "bid"))
    bids = _read(store, tables.BIDS, day, morning.BID_INPUTS)
    predictions = _read(store, tables.PREDICTIONS, day, morning.PREDICTION_INPUTS)
    in_force = morning.bids_in_force(report, published_before, day)
    return morning.build_report(
        day,
        report,
        _read(store, tables.PREDICTIONS, before, morning.PREDICTION_INPUTS),
        _read(store, tables.BIDS, before, morning.BID_INPUTS) if published_before is not None else None,
        bids,
        predictions,
        in_force,
        _check_outcomes(context, day),
        _kept_pricing(store, day, bids, predictions, in_force),
        currency,
    )


def _read(store: Warehouse, table: str, day: dt.date, columns) -> pd.DataFrame | None:
    """The `columns` that partition `day` of `table` carries, or None where the partition does not exist."""
    if not store.partition_exists(table, day):
        return None
    carried = set(store.partition_columns(table, day))
    return store.read_partitions(table, [day], [name for name in columns if name in carried])


def _read_report(store: Warehouse, day: dt.date) -> pd.DataFrame | None:
    return _read(store, tables.VALIDATED_REPORT, day, REPORT_COLUMNS)


def _kept_pricing(
    store: Warehouse, day: dt.date, bids: pd.DataFrame, predictions: pd.DataFrame, in_force: morning.BidsInForce
) -> morning.KeptPricing | None:
    """The landscape's clicks and cost per click at the bid in force, for the bids it priced today (none without a
    landscape for the day)."""
    if not store.partition_exists(tables.LANDSCAPE, day):
        return None
    landscapes = store.read_partitions(tables.LANDSCAPE, [day])
    priced = bids[bids["bid_basis"] == "profit_optimal"]
    if landscapes.empty or priced.empty:
        return None
    landscape = BidLandscape.from_row(landscapes.iloc[0])
    try:
        context = bid_context(lambda d: _read_report(store, d), day)
    except LandscapeUnavailable:
        return None
    context = context[context["keyword_id"].isin(priced["keyword_id"]) & context["bid_in_force"].notna()]
    context = context[context["keyword_id"].isin(in_force.bids.index)].reset_index(drop=True)
    if context.empty:
        return None
    ids = context["keyword_id"].to_numpy()
    multiplier, cost_per_click = landscape.response(context, in_force.bids.reindex(ids).to_numpy()[:, None])
    champion = predictions.set_index("keyword_id")["expected_clicks"].reindex(ids).to_numpy(dtype="float64")
    return morning.KeptPricing(
        clicks=pd.Series(champion * multiplier[:, 0], index=ids),
        cost_per_click=pd.Series(cost_per_click[:, 0], index=ids),
    )


def _check_outcomes(context: dg.AssetExecutionContext, day: dt.date) -> list[morning.CheckOutcome]:
    """Each check's latest verdict on the partition of `day`, in this run or an earlier one."""
    # The one list of the graph's checks lives in `assets`, which imports this module: read when the report runs.
    from assets import ALL_CHECKS

    keys = [key for checks in ALL_CHECKS for key in checks.check_keys]
    records = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        keys, partition_filter=PartitionKeyFilter(key=day.isoformat())
    )
    outcomes = []
    for key, record in sorted(records.items(), key=lambda item: (item[0].asset_key.to_user_string(), item[0].name)):
        evaluation = record.event.asset_check_evaluation if record.event is not None else None
        if evaluation is None:  # planned, not yet judged
            continue
        outcomes.append(
            morning.CheckOutcome(
                asset=key.asset_key.to_user_string(),
                check=key.name,
                passed=evaluation.passed,
                severity=evaluation.severity.value,
                description=evaluation.description or "",
            )
        )
    return outcomes
