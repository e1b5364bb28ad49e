"""Raw and validated keyword reports, and the quarantine of rejected rows."""

import datetime as dt
import json

import dagster as dg
import pandas as pd

from assets.metadata import readable
from assets.partitions import DAILY_ASSET_POLICIES, SOURCE_RETRY_POLICY, partition_days
from daily_bids.ingest.landing import LandingFileError
from daily_bids.ingest.validation import KeyRegistryError, Plausibility, add_to_key_registry, validate_report
from daily_bids.schema import METRIC_COLUMNS, numeric
from daily_bids.settings import Settings
from daily_bids.storage import tables
from resources.ad_platform import ReportSource
from resources.warehouse import WarehouseResource


def plausibility(settings: Settings) -> Plausibility:
    """The deployment's plausibility limits (`BIDS_PLAUSIBLE_MAX`, `BIDS_OUTLIER_FACTOR`) on the report contract's.
    Also built when the definitions load (`assets.build_asset_graph`), so a bad setting fails at once."""
    try:
        return Plausibility.from_contract(settings.plausible_max, settings.outlier_factor)
    except (ValueError, TypeError) as error:
        raw = json.dumps(settings.plausible_max) if settings.plausible_max else ""
        factor = "" if settings.outlier_factor is None else f"{settings.outlier_factor:g}"
        raise ValueError(f"BIDS_PLAUSIBLE_MAX={raw!r} / BIDS_OUTLIER_FACTOR={factor!r}: {error}") from None


VALIDATED_REPORT = dg.AssetKey(tables.VALIDATED_REPORT)
QUARANTINE = dg.AssetKey(tables.QUARANTINE)


@dg.asset(group_name="reports", kinds={"pandas", "parquet"}, retry_policy=SOURCE_RETRY_POLICY, **DAILY_ASSET_POLICIES)
def raw_keyword_report(context: dg.AssetExecutionContext, ad_platform: ReportSource) -> dg.Output[pd.DataFrame]:
    """Each day's keyword report as the source delivered it, with the file and line every row came from."""
    days = partition_days(context)
    try:
        report = ad_platform.fetch_reports(days, context.log.info)
    except LandingFileError as error:  # a malformed file stays malformed: retrying cannot help
        raise dg.Failure(description=str(error), allow_retries=False) from error
    rows_per_day = report.groupby("date").size()
    empty_days = [d.isoformat() for d in days if rows_per_day.get(pd.Timestamp(d), 0) == 0]
    if empty_days:
        context.log.warning(f"no report rows for {len(empty_days)} day(s): {empty_days[:10]}")
    return dg.Output(
        report,
        metadata={
            "rows": len(report),
            "days": len(days),
            "days_without_rows": len(empty_days),
            "source_files": report["source_file"].nunique(),
            **_totals(report),
        },
    )


@dg.multi_asset(
    outs={
        VALIDATED_REPORT.path[-1]: dg.AssetOut(
            kinds={"pandas", "parquet"},
            is_required=False,
            description="Typed rows that pass every row rule; one per (date, keyword_id). Where the report has "
            "ad group IDs, keyword_id is the platform's key of (ad_group_id, criterion_id).",
        ),
        QUARANTINE.path[-1]: dg.AssetOut(
            kinds={"pandas", "parquet"},
            is_required=False,
            description="Raw rows that did not pass, each with a reason code, a detail, and its source file and line.",
        ),
    },
    group_name="reports",
    # Either table can be selected alone (`--select validated_keyword_report`). Validation is a pure function of the
    # raw report, so recomputing one side gives the rows the stored other side was made with; `quarantine_reconciles`
    # proves it for every day.
    can_subset=True,
    **DAILY_ASSET_POLICIES,
)
def validated_keyword_report(
    context: dg.AssetExecutionContext,
    raw_keyword_report: pd.DataFrame,
    warehouse: WarehouseResource,
    settings: dg.ResourceParam[Settings],
):
    days = partition_days(context)
    store = warehouse.warehouse()
    result = validate_report(
        raw_keyword_report,
        days,
        plausibility(settings),
        _trailing_totals(warehouse, days[0] - dt.timedelta(days=1)),
        _key_registry(store),
    )
    if len(result.new_keys):
        # Written before either table, and whichever is selected: a key once given is never given again.
        try:
            store.write_table(tables.KEYWORD_KEYS, add_to_key_registry(_key_registry(store), result.new_keys))
        except KeyRegistryError as error:  # a concurrent run's keys: retrying assigns from the registry as it is
            raise dg.RetryRequested(max_retries=2, seconds_to_wait=5) from error
        context.log.info(f"{len(result.new_keys)} new keyword(s) given keyword IDs ({tables.KEYWORD_KEYS})")
    reasons = result.quarantine["reason"].value_counts().to_dict()
    if reasons:
        context.log.warning(f"{len(result.quarantine)} rows quarantined: {reasons}")
    selected = context.selected_asset_keys
    if VALIDATED_REPORT in selected:
        yield dg.Output(
            result.valid,
            output_name=VALIDATED_REPORT.path[-1],
            metadata={
                "rows": len(result.valid),
                "rows_quarantined": len(result.quarantine),
                "keywords": int(result.valid["keyword_id"].nunique()),
                "unreported_metrics": ", ".join(result.unreported_metrics) or "none",
                **_totals(result.valid),
            },
        )
    if QUARANTINE in selected:
        yield dg.Output(
            result.quarantine,
            output_name=QUARANTINE.path[-1],
            metadata={
                "rows": len(result.quarantine),
                **{f"reason_{code}": int(n) for code, n in reasons.items()},
            },
        )


def _key_registry(store) -> pd.DataFrame | None:
    return store.read_table(tables.KEYWORD_KEYS) if store.table_exists(tables.KEYWORD_KEYS) else None


def _trailing_totals(warehouse: WarehouseResource, day: dt.date) -> pd.DataFrame | None:
    """Each keyword's metric totals over the 28 days through `day`, from the features' rolling state (one partition,
    not 28 report days); None before the features have run, when the outlier rule has nothing to go by."""
    store = warehouse.warehouse()
    if not store.partition_exists(tables.FEATURE_STATE, day):
        return None
    sums = {f"{m}_sum_28d": m for m in METRIC_COLUMNS}
    return store.read_partitions(tables.FEATURE_STATE, [day], columns=["keyword_id", *sums]).rename(columns=sums)


def _totals(report: pd.DataFrame) -> dict[str, float]:
    return readable({f"total_{column}": float(pd.Series(numeric(report[column])).sum()) for column in METRIC_COLUMNS})
