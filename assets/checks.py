"""Asset checks on every layer. Blocking checks stop everything downstream in the same run when they fail with
ERROR severity; WARN results are shown in the UI and stop nothing.

Value rules run through great-expectations (see `daily_bids.quality.expectations`); volume, drift and reconciliation are computed
with pandas against the trailing days in the warehouse.
"""

import datetime as dt
from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd

# Not exported by dagster: the link from a verdict to the materialization it judged, which per-day verdicts of a
# range run must carry (see _judged_materialization).
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData

from assets.features import keyword_features, keyword_value
from assets.models import champion_model, keyword_clusters
from assets.partitions import daily_partitions, partition_days
from assets.reports import QUARANTINE, VALIDATED_REPORT, raw_keyword_report
from assets.serving import BIDS, PREDICTIONS
from daily_bids.bidding.moves import bid_moves
from daily_bids.ingest import landing
from daily_bids.models.store import ModelStore
from daily_bids.quality import expectations as quality
from daily_bids.quality.quarantine_share import quarantined_share
from daily_bids.schema import as_day
from daily_bids.serving import publishing
from daily_bids.serving import scoring as scoring_math
from daily_bids.settings import Settings
from daily_bids.storage import tables
from resources.bid_policy import BidPolicyResource
from resources.engine import EngineResource
from resources.warehouse import WarehouseResource

CHECK_POLICY = dict(partitions_def=daily_partitions)

DayJudge = Callable[[list[dt.date], pd.DataFrame], dg.AssetCheckResult]


def passed(result: dg.AssetCheckResult) -> bool:
    return result.passed


def each_day(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    frame: pd.DataFrame,
    judge: DayJudge,
    vouches_for_each_day: Callable[[dg.AssetCheckResult], bool] | None = None,
    rows_of_day: Callable[[pd.DataFrame], int] = len,
) -> Iterator:
    """A check's verdict for every day of its run; a blocking check that blocks nothing (it passed, or only warns)
    then lets the partitions held for it replace the stored ones (`WarehouseResource.release_checked`).

    A one-day run yields the day's result as usual. A range run (a single-run backfill) records one evaluation per
    day, so the UI shows each day's verdict rather than one result for the whole range: `judge(days, rows)` is asked
    about each day. Where a verdict on the whole range can vouch for every day (a pass of row rules or per-day
    counts: `passed`), give `vouches_for_each_day`: the range is judged once, and day by day only when it cannot;
    `rows_of_day` counts a day's rows for such a vouched verdict, from that day's rows of `frame`.
    """
    spec = context.check_specs[0]
    days = partition_days(context)
    if len(days) == 1:
        verdict = judge(days, frame)
        if spec.blocking and not _blocks(verdict):
            warehouse.release_checked(context)
        yield verdict
        return
    whole_passed = vouches_for_each_day is not None and vouches_for_each_day(judge(days, frame))
    dates = as_day(frame["date"])
    blocked = False
    for day in days:
        rows = frame[(dates == pd.Timestamp(day)).to_numpy()]
        verdict = (
            judge([day], rows)
            if not whole_passed
            else dg.AssetCheckResult(
                passed=True, metadata={"rows": rows_of_day(rows), "judged_with_range": f"{days[0]}...{days[-1]}"}
            )
        )
        blocked = blocked or _blocks(verdict)
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=verdict.passed,
            metadata=verdict.metadata,
            severity=verdict.severity,
            description=verdict.description,
            blocking=spec.blocking,
            partition=day.isoformat(),
            target_materialization_data=_judged_materialization(context, spec, day),
        )
    if spec.blocking and not blocked:
        warehouse.release_checked(context)
    # The check's own output: what lets the steps downstream of a blocking check run (or be skipped).
    yield dg.Output(None, output_name=context.op_execution_context.op_def.output_defs[0].name)


def _blocks(verdict: dg.AssetCheckResult) -> bool:
    """Whether a blocking check's verdict stops what depends on it: a failure of ERROR severity (a WARN only shows)."""
    return not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR


def _judged_materialization(context, spec, day: dt.date) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialization of the day a verdict is about. Automation conditions (`check_passed`, and the models'
    `all_deps_blocking_checks_passed`) count a verdict only when it names the latest materialization it judged, as
    Dagster's own single-partition results do."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=spec.asset_key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id, run_id=records[0].event_log_entry.run_id, timestamp=records[0].timestamp
    )


def _result(
    outcomes: list[quality.Outcome], dtype_problems: dict[str, str] | None = None, **extra
) -> dg.AssetCheckResult:
    """One check result from expectation outcomes: ERROR if an error-level rule failed, WARN if only warn-level."""
    failed = [o for o in outcomes if not o.success]
    dtype_problems = dtype_problems or {}
    errors = [o for o in failed if o.expectation.severity == quality.ERROR] + list(dtype_problems)
    rows = [
        {
            "expectation": o.expectation.description,
            "severity": o.expectation.severity,
            "observed": o.observed_value,
            "unexpected": o.unexpected_count,
            "unexpected_percent": round(o.unexpected_percent, 4),
            "sample": o.sample,
            "error": o.error,
        }
        for o in failed
    ] + [
        {
            "expectation": f"column {name} has the contract type",
            "severity": quality.ERROR,
            "observed": problem,
            "unexpected": None,
            "unexpected_percent": None,
            "sample": [],
            "error": "",
        }
        for name, problem in dtype_problems.items()
    ]
    metadata = {
        "expectations_evaluated": len(outcomes) + len(dtype_problems),
        "expectations_failed": len(rows),
        # Rows any rule found, passing rules included (a share of nulls within its bound still counts here).
        "unexpected_rows": sum(o.unexpected_count for o in outcomes),
        **extra,
    }
    if rows:
        metadata["failures"] = dg.MetadataValue.json(rows)
        metadata["failures_table"] = dg.MetadataValue.md(
            pd.DataFrame([{k: v for k, v in r.items() if k != "sample"} for r in rows]).to_markdown(index=False)
        )
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _report_contract(layer: str, context, warehouse: WarehouseResource, engine: EngineResource) -> Iterator:
    """The raw or validated report's contract on its stored partitions, on the engine. No rule found a single row over
    a whole range: then no day can fail, whatever its share of nulls."""
    return _stored_expectations(
        context,
        warehouse,
        engine,
        lambda days: quality.report_suite(layer, days),
        f"{layer}_report",
        dtypes=quality.layer_dtypes(layer),
        vouches_for_each_day=_found_no_row,
    )


def _found_no_row(result: dg.AssetCheckResult) -> bool:
    return result.passed and result.metadata["unexpected_rows"].value == 0


@dg.asset_check(
    asset=raw_keyword_report,
    blocking=True,
    description="Raw report against the data contract: columns, "
    "types, dates inside the partition (ERROR); ranges, pair rules, unique keys, null rates (WARN: such "
    "rows are quarantined downstream).",
    **CHECK_POLICY,
)
def raw_report_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, scoring: EngineResource):
    yield from _report_contract("raw", context, warehouse, scoring)


@dg.asset_check(
    asset=raw_keyword_report,
    blocking=True,
    description="Each day has rows (ERROR when empty), and "
    "not far from the trailing 7 days' median (WARN outside 0.5×–2×).",
    **CHECK_POLICY,
)
def raw_report_volume(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    trailing = quality.TrailingDays(warehouse.warehouse(), tables.RAW_REPORT)

    def judge(days: list[dt.date], rows_of_days: pd.DataFrame) -> dg.AssetCheckResult:
        per_day = dict(zip(rows_of_days["date"].dt.date, rows_of_days["rows"]))
        verdicts = {
            day.isoformat(): quality.volume_verdict(int(per_day[day]), trailing.row_counts(day)) for day in days
        }
        severities = {severity for severity, _ in verdicts.values()}
        return dg.AssetCheckResult(
            passed=severities == {None},
            severity=dg.AssetCheckSeverity.ERROR if quality.ERROR in severities else dg.AssetCheckSeverity.WARN,
            metadata={
                "rows": int(rows_of_days["rows"].sum()),
                "days": dg.MetadataValue.json({d: text for d, (_, text) in verdicts.items()}),
            },
        )

    stored = _stored_rows(warehouse, tables.RAW_REPORT, partition_days(context))
    yield from each_day(
        context, warehouse, stored, judge, vouches_for_each_day=passed, rows_of_day=lambda rows: int(rows["rows"].sum())
    )


@dg.asset_check(
    asset=raw_keyword_report,
    blocking=True,
    description="Landing files vouch for themselves: ERROR when "
    "a file covering the day states totals its rows do not add up to, or is a Google Ads export cut "
    "short before its Total line; WARN when a landing file could not be read at all (its days are "
    "unknown, so it blocks none).",
    **CHECK_POLICY,
)
def raw_report_complete(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    store = warehouse.warehouse()
    judged_days = pd.DataFrame({"date": as_day(partition_days(context))})
    if not store.table_exists(tables.LANDING_INDEX):
        yield from each_day(
            context,
            warehouse,
            judged_days,
            lambda days, rows: dg.AssetCheckResult(
                passed=True, metadata={"note": "no landing files (the report source keeps no index)"}
            ),
        )
        return
    index = store.read_table(tables.LANDING_INDEX)
    unreadable = landing.unreadable_files(index)

    def judge(days: list[dt.date], rows: pd.DataFrame) -> dg.AssetCheckResult:
        covering = index[index["date"].isin([pd.Timestamp(d) for d in days])]
        incomplete = covering[covering["completeness"].fillna("") != ""].drop_duplicates("path")
        problems = [f"{path}: {why}" for path, why in zip(incomplete["path"], incomplete["completeness"])]
        return dg.AssetCheckResult(
            passed=not problems and not unreadable,
            severity=dg.AssetCheckSeverity.ERROR if problems else dg.AssetCheckSeverity.WARN,
            description="; ".join(problems + [f"not read: {error}" for error in unreadable.values()])[:2000] or None,
            metadata={
                "files_covering": int(covering["path"].nunique()),
                "incomplete_files": len(problems),
                "unreadable_files": dg.MetadataValue.json(unreadable),
            },
        )

    yield from each_day(context, warehouse, judged_days, judge)


@dg.asset_check(
    asset=raw_keyword_report,
    blocking=False,
    description="Distribution drift of the report metrics "
    f"against the trailing 7 days (population stability index; WARN above {quality.PSI_WARN}).",
    **CHECK_POLICY,
)
def raw_report_drift(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    store = warehouse.warehouse()
    trailing = quality.TrailingDays(store, tables.RAW_REPORT)

    def judge(days: list[dt.date], judged: pd.DataFrame) -> dg.AssetCheckResult:
        # A range is judged a day at a time (`each_day`), and only the columns the scores compare are read.
        rows = store.read_partitions(tables.RAW_REPORT, days, columns=list(quality.DRIFT_COLUMNS))
        scores, reference_days = trailing.drift_scores(rows, days[0])
        if not reference_days:
            return dg.AssetCheckResult(passed=True, metadata={"note": "no trailing days to compare with yet"})
        drifted = {column: score for column, score in scores.items() if score > quality.PSI_WARN}
        return dg.AssetCheckResult(
            passed=not drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"distribution moved against the {len(reference_days)} trailing day(s) (PSI above "
                f"{quality.PSI_WARN}): " + ", ".join(f"{c} {v:.2f}" for c, v in drifted.items())
                if drifted
                else None
            ),
            metadata={
                **{
                    f"psi_{column}": (None if pd.isna(score) else round(float(score), 4))
                    for column, score in scores.items()
                },
                "reference_days": f"{reference_days[-1]}...{reference_days[0]}",
            },
        )

    yield from each_day(context, warehouse, pd.DataFrame({"date": as_day(partition_days(context))}), judge)


@dg.asset_check(
    asset=VALIDATED_REPORT,
    blocking=True,
    description="Validated report against the data contract; every rule is ERROR here.",
    **CHECK_POLICY,
)
def validated_report_contract(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, scoring: EngineResource
):
    yield from _report_contract("validated", context, warehouse, scoring)


@dg.asset_check(
    asset=VALIDATED_REPORT,
    blocking=True,
    description="Nothing lost: for every day, raw rows = validated rows + quarantined rows.",
    additional_deps=[raw_keyword_report],
    **CHECK_POLICY,
)
def quarantine_reconciles(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    days = partition_days(context)
    store = warehouse.warehouse()
    quarantined = set(store.list_partitions(QUARANTINE.path[-1])) & set(days)
    missing = [d for d in days if d not in quarantined]
    counts = pd.DataFrame(  # every count from the partitions' footers: no row is read
        {
            "raw": _stored_rows(warehouse, tables.RAW_REPORT, days)["rows"].to_numpy(),
            "validated": _stored_rows(warehouse, VALIDATED_REPORT.path[-1], days)["rows"].to_numpy(),
            "quarantined": [store.partition_rows(QUARANTINE.path[-1], d) if d in quarantined else 0 for d in days],
        },
        index=pd.DatetimeIndex(as_day(days), name="date"),
    )
    counts["lost"] = counts["raw"] - counts["validated"] - counts["quarantined"]
    counts["quarantine_materialized"] = [d not in missing for d in days]
    counts = counts.reset_index()

    def judge(days: list[dt.date], rows: pd.DataFrame) -> dg.AssetCheckResult:
        off = rows[(rows["lost"] != 0) | ~rows["quarantine_materialized"]]
        unmaterialized = rows.loc[~rows["quarantine_materialized"], "date"].dt.date.astype(str).tolist()
        return dg.AssetCheckResult(
            passed=off.empty,
            description=(
                f"keyword_quarantine is not materialized for {unmaterialized}: materialize it with the validated report"
                if unmaterialized
                else None
            ),
            metadata={
                "raw_rows": int(rows["raw"].sum()),
                "validated_rows": int(rows["validated"].sum()),
                "quarantined_rows": int(rows["quarantined"].sum()),
                "days_not_reconciling": dg.MetadataValue.md(off.to_markdown(index=False)) if len(off) else "none",
            },
        )

    yield from each_day(context, warehouse, counts, judge, vouches_for_each_day=passed)


@dg.asset_check(
    asset=VALIDATED_REPORT,
    blocking=True,
    description="A day is not bid on from what is left of it: ERROR when more than BIDS_MAX_QUARANTINED_SHARE (20%) "
    "of its rows are quarantined (rows superseded by a restatement aside), as when a file's columns are swapped or a "
    "unit changed. The metadata names the top reasons with their counts and an example row of each (file and line). "
    "Fix or re-export the file, drop it in the landing zone and run the day again; if the day really is that bad "
    "and its remaining rows are right, raise BIDS_MAX_QUARANTINED_SHARE.",
    **CHECK_POLICY,
)
def quarantine_stays_small(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, settings: dg.ResourceParam[Settings]
):
    days = partition_days(context)
    quarantine, materialized = _stored_quarantine(warehouse, days, ["reason", "detail", "source_file", "source_row"])
    counts = _stored_rows(warehouse, VALIDATED_REPORT.path[-1], days).rename(columns={"rows": "validated"})
    maximum = settings.max_quarantined_share

    def judge(judged: list[dt.date], rows: pd.DataFrame) -> dg.AssetCheckResult:
        if not set(judged) <= materialized:
            return dg.AssetCheckResult(
                passed=True, metadata={"note": "keyword_quarantine is not materialized: quarantine_reconciles fails"}
            )
        of_days = quarantine[as_day(quarantine["date"]).isin(as_day(judged)).to_numpy()]
        day = quarantined_share(of_days, int(rows["validated"].sum()))
        too_many = day.exceeds(maximum)
        mostly = ", ".join(f"{reason} ({count:,})" for reason, count in day.top_reasons.items())
        return dg.AssetCheckResult(
            passed=not too_many,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{day.share:.0%} of the day's rows are quarantined ({day.quarantined:,} of {day.rows:,}), above "
                f"BIDS_MAX_QUARANTINED_SHARE ({maximum:.0%}): {mostly}. No bids are made from the rest. See the "
                "examples for the file and line; fix or re-export the file and run the day again."
                if too_many
                else None
            ),
            metadata={
                "rows": day.rows,
                "quarantined_rows": day.quarantined,
                "quarantined_share": round(day.share, 4),
                "max_quarantined_share": maximum,
                "superseded_rows": day.superseded,
                "top_reasons": dg.MetadataValue.json(day.top_reasons),
                "examples": dg.MetadataValue.md(day.examples.to_markdown(index=False)) if day.quarantined else "none",
            },
        )

    yield from each_day(context, warehouse, counts, judge)


def _stored_quarantine(
    warehouse: WarehouseResource, days: list[dt.date], columns: list[str]
) -> tuple[pd.DataFrame, set[dt.date]]:
    """The quarantined rows of those of `days` whose quarantine is materialized, and those days. Read from the
    warehouse rather than as an input: a day whose quarantine was never materialized (the validated report selected
    alone) then fails `quarantine_reconciles` with a plain reason, not a load error; this run's quarantine, held
    beside the report until the report's checks pass, is read in place of the stored one."""
    store = warehouse.warehouse()
    materialized = set(store.list_partitions(QUARANTINE.path[-1])) & set(days)
    if not materialized:
        return pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), **{c: pd.Series() for c in columns}}), set()
    return store.read_partitions(QUARANTINE.path[-1], sorted(materialized), columns=columns), materialized


def _stored_rows(warehouse: WarehouseResource, table: str, days: list[dt.date]) -> pd.DataFrame:
    """Each day's rows of `table` as the run sees it, from the partitions' footers: a check that counts rows, or
    judges the stored rows itself, hands this to `each_day` rather than holding the day's rows."""
    store = warehouse.warehouse()
    store.require_partitions(table, days)  # every missing day named at once
    return pd.DataFrame({"date": as_day(days), "rows": [store.partition_rows(table, day) for day in days]})


def _stored_expectations(
    context,
    warehouse: WarehouseResource,
    engine: EngineResource,
    suite: Callable[[list[dt.date]], list[quality.Expectation]],
    name: str,
    dtypes: dict[str, str] | None = None,
    vouches_for_each_day: Callable[[dg.AssetCheckResult], bool] = passed,
) -> Iterator:
    """The expectations `suite(days)` gives for the days judged, on the check's table read from the warehouse in
    batches of rows, on the engine (BIDS_ENGINE): memory stays at one batch (and the key columns), whatever the
    partition's size. With `dtypes`, each judged day's stored columns must have the contract's types (read from
    the footers). A range is judged at once, and day by day only if the verdict cannot vouch for each day."""
    store, table = warehouse.warehouse(), context.check_specs[0].asset_key.path[-1]

    def judge(days: list[dt.date], rows_of_days: pd.DataFrame) -> dg.AssetCheckResult:
        rows = int(rows_of_days["rows"].sum())
        outcomes = engine.check_stored(store, table, days, suite(days), name, context.log.info, rows)
        problems = {}
        if dtypes is not None:  # the first day with a column wrong names it
            for day in reversed(days):
                problems.update(quality.dtype_mismatches(store.empty_partition(table, day), dtypes))
        return _result(outcomes, problems, rows=rows)

    return each_day(
        context,
        warehouse,
        _stored_rows(warehouse, table, partition_days(context)),
        judge,
        vouches_for_each_day=vouches_for_each_day,
        rows_of_day=lambda rows: int(rows["rows"].sum()),
    )


@dg.asset_check(
    asset=keyword_features,
    blocking=True,
    description="One row per keyword and day; features from impressions and clicks never null; counts never negative.",
    **CHECK_POLICY,
)
def features_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, scoring: EngineResource):
    yield from _stored_expectations(context, warehouse, scoring, lambda days: quality.features_suite(), "features")


@dg.asset_check(
    asset=PREDICTIONS,
    blocking=True,
    description="One prediction per keyword and day; expected "
    "clicks known and never negative; every prediction finite.",
    **CHECK_POLICY,
)
def predictions_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, scoring: EngineResource):
    yield from _stored_expectations(
        context, warehouse, scoring, lambda days: quality.predictions_suite(), "predictions"
    )


@dg.asset_check(
    asset=PREDICTIONS,
    blocking=True,
    description="The written predictions equal the champion's, "
    "re-scored here in one call on a sample of the day's keywords (the TalkingData check of Spark "
    "against the training framework): count, mean, p50, p99 and max of the element-wise relative "
    "difference; fails above the model's tolerance (1e-6 for XGBoost, 1e-4 for the deep model).",
    additional_deps=[keyword_features, keyword_value, champion_model, keyword_clusters],
    **CHECK_POLICY,
)
def predictions_match_the_model(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, scoring: EngineResource
):
    store = warehouse.warehouse()
    model = ModelStore(store, champion_model.key.path[-1]).current_or_fail()
    clusters = store.read_table(tables.CLUSTERS) if store.table_exists(tables.CLUSTERS) else None
    features_table, table = keyword_features.key.path[-1], context.check_specs[0].asset_key.path[-1]

    def judge(days: list[dt.date], rows: pd.DataFrame) -> dg.AssetCheckResult:
        day = days[-1]
        rescored = scoring_math.rescore_sample(
            store, features_table, day, model, clusters, value_table=tables.KEYWORD_VALUE
        )
        written = store.read_partitions(
            table, [day], ["keyword_id", *scoring_math.PARITY_COLUMNS], rescored["keyword_id"].to_numpy()
        )
        report = scoring_math.parity_report(written, rescored)
        worst = float(report["max"].max()) if len(report) else 0.0
        return dg.AssetCheckResult(
            passed=bool(worst <= model.parity_tolerance),
            metadata={
                "engine": scoring.engine,
                "model_version": model.version,
                "keywords_compared": len(rescored),
                "max_relative_difference": worst,
                "tolerance": model.parity_tolerance,
                "differences": dg.MetadataValue.md(report.to_markdown(floatfmt=".3g")),
            },
        )

    days = partition_days(context)
    yield from each_day(context, warehouse, pd.DataFrame({"date": pd.Series(as_day(days))}), judge)


@dg.asset_check(
    asset=BIDS,
    blocking=True,
    description="Every bid is below its expected value per click, its expected cost per click is at or below the "
    "keyword's conservative value per click (the money rule), and it is inside [min_bid, max_bid]; no keyword is bid "
    "twice for a day. Nothing is published unless it passes.",
    **CHECK_POLICY,
)
def bids_are_profitable_and_capped(
    context: dg.AssetCheckExecutionContext,
    bid_policy: BidPolicyResource,
    warehouse: WarehouseResource,
    scoring: EngineResource,
):
    yield from _stored_expectations(
        context,
        warehouse,
        scoring,
        lambda days: quality.bid_suite(bid_policy.min_bid, bid_policy.max_bid),
        "bids",
    )


@dg.asset_check(
    asset=BIDS,
    blocking=True,
    description="Bids move plausibly against the bids in force (the day's report's max CPC, else the bids published "
    "last): ERROR when more than `max_share_large_moves` (25%) of the keywords with a bid in force move by more than "
    "`max_daily_change` (50%); the metadata names the keywords that moved most. The money rule cutting the "
    "advertiser's own bids past the change cap is counted apart: it is what a first day against manual bids does.",
    **CHECK_POLICY,
)
def bids_move_plausibly(
    context: dg.AssetCheckExecutionContext,
    keyword_bids: pd.DataFrame,
    bid_policy: BidPolicyResource,
    warehouse: WarehouseResource,
):
    store = warehouse.warehouse()

    def judge(days: list[dt.date], rows: pd.DataFrame) -> dg.AssetCheckResult:
        day = days[-1]
        todays = rows[rows["date"] == pd.Timestamp(day)]
        in_force, compared_with = publishing.bids_in_force_on(store, day)
        moves = bid_moves(todays, in_force, bid_policy)
        return dg.AssetCheckResult(
            passed=not moves.implausible(bid_policy),
            metadata={
                "compared_with": compared_with,
                "keywords_compared": moves.compared,
                "large_moves": len(moves.large),
                "share_large_moves": round(moves.share_large, 4),
                "largest_moves": dg.MetadataValue.md(moves.large.head(20).round(4).to_markdown(index=False))
                if len(moves.large)
                else "none",
                # Not counted: the money rule cutting the advertiser's own bids, above what a click is worth.
                "advertiser_bids_cut_by_the_money_rule": len(moves.advertiser_bids_cut),
            },
        )

    yield from each_day(context, warehouse, keyword_bids, judge)


ALL_CHECKS = [
    raw_report_contract,
    raw_report_volume,
    raw_report_complete,
    raw_report_drift,
    validated_report_contract,
    quarantine_reconciles,
    quarantine_stays_small,
    features_contract,
    predictions_contract,
    predictions_match_the_model,
    bids_are_profitable_and_capped,
    bids_move_plausibly,
]
