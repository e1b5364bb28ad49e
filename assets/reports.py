"""Raw and validated keyword reports, and the quarantine of rejected rows."""

import json

import dagster as dg

from assets.metadata import readable
from assets.partitions import DAILY_ASSET_POLICIES, SOURCE_RETRY_POLICY, partition_days
from daily_bids.ingest.landing import LandingFileError
from daily_bids.ingest.stored_validation import StoredValidation, register_new_keys
from daily_bids.ingest.tally import ReportTally
from daily_bids.ingest.validation import KeyRegistryError, Plausibility
from daily_bids.schema import empty_raw
from daily_bids.settings import Settings
from daily_bids.storage import tables
from resources.ad_platform import ReportSource
from resources.engine import EngineResource
from resources.warehouse import WarehouseResource, held_metadata


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
def raw_keyword_report(
    context: dg.AssetExecutionContext, ad_platform: ReportSource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Each day's keyword report as the source delivered it, with the file and line every row came from. Written
    piece by piece as the source hands it over (the simulator makes a large day a million rows at a time); the
    range's days replace the stored ones together."""
    days = partition_days(context)
    store = warehouse.for_step(context)
    table = context.assets_def.key.path[-1]
    tally = ReportTally.of_days(days)
    try:
        with store.staging() as staged:
            with staged.day_writers(table, days) as writers:
                for piece in ad_platform.report_pieces(days, context.log.info):
                    writers.write(piece)
                    tally.add(piece)
                writers.fill(empty_raw())
            staged.publish(table)
    except LandingFileError as error:  # a malformed file stays malformed: retrying cannot help
        raise dg.Failure(description=str(error), allow_retries=False) from error
    empty_days = [day.isoformat() for day in tally.days_without_rows()]
    if empty_days:
        context.log.warning(f"no report rows for {len(empty_days)} day(s): {empty_days[:10]}")
    return dg.MaterializeResult(
        metadata={
            "rows": tally.rows,
            "days": len(days),
            "days_without_rows": len(empty_days),
            "source_files": len(tally.source_files),
            **_totals(tally),
            **_where(store, context.assets_def.key),
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
    deps=[raw_keyword_report],  # read from its stored partitions, shard by shard, not handed over whole
    **DAILY_ASSET_POLICIES,
)
def validated_keyword_report(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    settings: dg.ResourceParam[Settings],
    scoring: EngineResource,  # the engine (BIDS_ENGINE); its key is `scoring`, as stored runs name it
):
    """Validated one keyword shard at a time from the stored raw partitions, on the engine: memory holds a shard,
    not the range (`daily_bids.ingest.stored_validation`)."""
    days = partition_days(context)
    store = warehouse.for_step(context)
    selected = context.selected_asset_keys
    written = {key: key.path[-1] if key in selected else None for key in (VALIDATED_REPORT, QUARANTINE)}

    def record_new_keys(result: StoredValidation) -> None:
        """Before either table is published, and whichever is selected: a key once given is never given again."""
        if not len(result.new_keys):
            return
        try:
            register_new_keys(store, result.new_keys)
        except KeyRegistryError as error:  # a concurrent run's keys: retrying assigns from the registry as it is
            raise dg.RetryRequested(max_retries=2, seconds_to_wait=5) from error
        context.log.info(f"{len(result.new_keys)} new keyword(s) given keyword IDs ({tables.KEYWORD_KEYS})")

    result = scoring.validate_stored(
        store,
        tables.RAW_REPORT,
        days,
        plausibility(settings),
        written[VALIDATED_REPORT],
        written[QUARANTINE],
        record_new_keys,
        context.log.info,
    )
    if result.reasons:
        context.log.warning(f"{result.quarantined_rows} rows quarantined: {result.reasons}")
    if VALIDATED_REPORT in selected:
        yield dg.MaterializeResult(
            asset_key=VALIDATED_REPORT,
            metadata={
                "rows": result.valid_rows,
                "rows_quarantined": result.quarantined_rows,
                "keywords": result.keywords,
                "unreported_metrics": ", ".join(result.unreported_metrics) or "none",
                "keyword_shards": result.shards,
                **_totals(result.valid),
                **_where(store, VALIDATED_REPORT),
            },
        )
    if QUARANTINE in selected:
        yield dg.MaterializeResult(
            asset_key=QUARANTINE,
            metadata={
                "rows": result.quarantined_rows,
                **{f"reason_{code}": int(n) for code, n in result.reasons.items()},
                **_where(store, QUARANTINE),
            },
        )


def _where(store, key: dg.AssetKey) -> dict:
    """Where the table is, and what its partitions wait for when they are held for their checks."""
    table = key.path[-1]
    return {"path": dg.MetadataValue.path(store.display_uri(table)), **held_metadata(store, table)}


def _totals(tally: ReportTally) -> dict[str, float]:
    return readable({f"total_{column}": total for column, total in tally.totals.items()})
