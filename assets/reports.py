"""Raw and validated keyword reports."""

import dagster as dg
import pandas as pd

from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from daily_bids.schema import METRIC_COLUMNS
from daily_bids.validation import validate_report
from resources.ad_platform import SimulatedAdPlatform


@dg.asset(group_name="reports", kinds={"pandas", "parquet"}, **DAILY_ASSET_POLICIES)
def raw_keyword_report(context: dg.AssetExecutionContext, ad_platform: SimulatedAdPlatform) -> dg.Output[pd.DataFrame]:
    """The keyword report of each day as the ad platform delivered it."""
    days = partition_days(context)
    reports = []
    log_every = max(1, len(days) // 10)  # about ten progress lines however long the range
    for number, day in enumerate(days, start=1):
        reports.append(ad_platform.fetch_report(day))
        if number % log_every == 0 or number == len(days):
            context.log.info(f"fetched report {number}/{len(days)}: {day} ({len(reports[-1]):,} rows)")
    report = pd.concat(reports, ignore_index=True)
    return dg.Output(report, metadata={"rows": len(report), "days": len(days), **_totals(report)})


@dg.asset(group_name="reports", kinds={"pandas", "parquet"}, **DAILY_ASSET_POLICIES)
def validated_keyword_report(context: dg.AssetExecutionContext, raw_keyword_report: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Typed, de-duplicated report rows that pass every row rule; one row per (date, keyword_id)."""
    result = validate_report(raw_keyword_report)
    if len(result.rejected):
        reasons = result.rejected["reason"].value_counts().to_dict()
        context.log.warning(f"{len(result.rejected)} rows rejected: {reasons}")
    return dg.Output(
        result.valid,
        metadata={
            "rows": len(result.valid),
            "rows_rejected": len(result.rejected),
            "duplicates_dropped": result.duplicates_dropped,
            "keywords": int(result.valid["keyword_id"].nunique()),
            **_totals(result.valid),
        },
    )


def _totals(report: pd.DataFrame) -> dict[str, float]:
    return {f"total_{column}": float(report[column].sum()) for column in METRIC_COLUMNS}
