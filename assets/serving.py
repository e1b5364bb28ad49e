"""Next-day predictions, bids, and their publication to the ad platform.

`keyword_bids` only computes; `published_bids` is the one step that moves money. It sits downstream of the bids so
that the blocking checks on the bids run first, in the same run: a bid that fails them is never published.
"""

import datetime as dt

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.features import keyword_features, keyword_value
from assets.metadata import readable
from assets.models import champion_model, keyword_clusters
from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from assets.reports import VALIDATED_REPORT
from daily_bids.bidding.decision import BID_BASES, CannotBidError, bid_rule_note
from daily_bids.bidding.landscape import (
    CONTEXT_DAYS,
    TRAINING_DAYS,
    BidLandscape,
    LandscapeUnavailable,
    bid_context,
    landscape_for_day,
)
from daily_bids.bidding.moves import with_todays_bids_in_force
from daily_bids.bidding.report_history import history_reader, sampled_history
from daily_bids.quality import expectations as quality
from daily_bids.serving import publishing
from daily_bids.serving.scoring import BidTotals
from daily_bids.storage import tables
from daily_bids.storage.warehouse import MissingPartitionsError
from resources.ad_platform import ReportSource
from resources.bid_policy import BidPolicyResource
from resources.engine import EngineResource
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource, held_metadata

ADS_EDITOR_EXPORTS = "exports/google_ads_editor"
# What a publication hands to the ad platform: the bid, and the IDs the ad platform addresses its keyword by.
PUBLISHED_COLUMNS = ("keyword_id", "keyword", "bid", "ad_group_id", "criterion_id")


def ads_editor_export_path(effective_day: dt.date) -> str:
    return f"{ADS_EDITOR_EXPORTS}/keyword_bids_{effective_day.isoformat()}.csv"


@dg.asset(group_name="serving", kinds={"sklearn", "parquet"}, deps=[VALIDATED_REPORT], **DAILY_ASSET_POLICIES)
def bid_landscape(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, tracker: ExperimentTracker
) -> dg.Output[pd.DataFrame]:
    """How clicks and cost per click respond to the bid: pooled elasticities learnt from the bids in force (max CPC)
    and outcomes of the last 56 report days, with their errors on a holdout of the last 7 at the bids in force.
    One row per partition; none when the reports carry no max CPC or bids never varied (bids then follow the fixed
    margin, and the metadata says why)."""
    store = warehouse.warehouse()
    days = partition_days(context)
    # A large account is learnt from a sample of its keywords, whose rows of each report day are kept once read.
    history = sampled_history(store, days[-1], TRAINING_DAYS + CONTEXT_DAYS + len(days))
    context.log.info(f"bid history: {history.describe()}")
    reports = history.reports
    rows, notes = [], {}
    for day in days:
        try:
            landscape = landscape_for_day(reports[reports["date"] <= pd.Timestamp(day)], day)
        except LandscapeUnavailable as reason:
            notes[day.isoformat()] = f"no bid landscape: {reason}"
            continue
        notes[day.isoformat()] = landscape.describe()
        rows.append(landscape.to_frame(day))
    if not rows:
        context.log.info(notes[days[-1].isoformat()])
        return dg.Output(
            BidLandscape.empty_frame(),
            metadata={"landscape": notes[days[-1].isoformat()], "bid_history": history.describe()},
        )
    latest = BidLandscape.from_row(rows[-1].iloc[0])
    run_id = tracker.log_run(
        f"bid_landscape {latest.version}",
        tables.LANDSCAPE,
        {
            "trained_through": latest.trained_through,
            "training_rows": latest.training_rows,
            "varied_rows": latest.varied_rows,
            "training_days": TRAINING_DAYS,
        },
        {
            **latest.holdout_metrics,
            "click_elasticity": latest.click_elasticity,
            "cost_elasticity": latest.cost_elasticity,
        },
    )
    return dg.Output(
        pd.concat(rows, ignore_index=True),
        metadata=readable(
            {
                "landscape": notes[days[-1].isoformat()],
                "bid_history": history.describe(),
                "varied_keyword_days": latest.varied_rows,
                "training_rows": latest.training_rows,
                **latest.holdout_metrics,
                "mlflow_run_id": run_id,
            }
        ),
    )


PREDICTIONS, BIDS = dg.AssetKey(tables.PREDICTIONS), dg.AssetKey(tables.BIDS)


def _require_stored_predictions(store, days: list[dt.date]) -> None:
    """Refuses, before anything is written, a run of the bids alone over days whose predictions were never stored."""
    try:
        store.require_partitions(tables.PREDICTIONS, days)
    except MissingPartitionsError as missing:
        raise dg.Failure(
            description=f"{tables.BIDS} was selected without {tables.PREDICTIONS}, so its bids are made from the "
            f"stored predictions, and there are none to bid from ({missing}). Materialize {tables.PREDICTIONS} for "
            f"these days first, or both assets together (`--select keyword_predictions,keyword_bids`).",
            allow_retries=False,
        ) from None


def _stored_predictions_note(store, days: list[dt.date]) -> str:
    """Which models made the stored predictions a run of the bids alone bid from."""
    versions = store.read_partitions(tables.PREDICTIONS, days, ["model_version"])["model_version"].unique()
    return f"stored predictions of {days[0]}...{days[-1]}, made by {', '.join(sorted(map(str, versions)))}"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            PREDICTIONS,
            group_name="serving",
            kinds={"pandas", "parquet"},
            deps=[keyword_features, keyword_value, champion_model, keyword_clusters],
            description="Expected clicks, conversions and value of each keyword on the day after the partition, "
            "from the champion model, and its value per click with the spread of it (the pooled "
            "posterior of `keyword_value`).",
        ),
        dg.AssetSpec(
            BIDS,
            group_name="serving",
            kinds={"pandas", "parquet"},
            deps=[PREDICTIONS, bid_landscape],
            description="Max CPC per keyword for the day after the partition, below its expected value per "
            "click, by the configured policy (`profit_optimal` on the bid landscape, or "
            "`fixed_margin`), with a share of keywords explored. Computed only: `published_bids` "
            "hands them to the ad platform once the checks on them have passed.",
        ),
    ],
    can_subset=True,
    **DAILY_ASSET_POLICIES,
)
def keyword_scores(
    context: dg.AssetExecutionContext,
    champion_model,
    keyword_clusters: pd.DataFrame,
    bid_policy: BidPolicyResource,
    scoring: EngineResource,
    warehouse: WarehouseResource,
):
    """Predictions and bids in one pass over the features, batch by batch (`daily_bids.serving.scoring`), on the engine
    `BIDS_ENGINE` names: this process, or Spark. The model is loaded once for the run.

    Either asset runs alone too. The bids alone are made from the stored predictions of their days, which are read and
    never rewritten; without them the run is refused before anything is written. Every partition is staged, and a
    table's days replace the stored ones only once all of them are made and the table's blocking checks have passed:
    a run that fails part-way, or whose checks fail, leaves the stored partitions as they were."""
    store = warehouse.for_step(context)
    days = partition_days(context)
    with_predictions, with_bids = PREDICTIONS in context.selected_asset_keys, BIDS in context.selected_asset_keys
    if not with_predictions:
        _require_stored_predictions(store, days)
    # Each day's bids in force come from the CONTEXT_DAYS reports through it, read a day at a time.
    report_for = history_reader(store)
    # Read here, not as an input: a run of the predictions alone needs no landscape.
    landscapes = store.read_partitions(tables.LANDSCAPE, days) if with_bids else None
    scores = {}
    with store.staging() as staged:
        for day in days:
            todays = landscapes[landscapes["date"] == pd.Timestamp(day)] if with_bids else landscapes
            landscape = BidLandscape.from_row(todays.iloc[0]) if todays is not None and len(todays) else None
            try:
                recent = bid_context(report_for, day) if with_bids else None
            except LandscapeUnavailable:  # no max CPC in the reports: nothing is known of the bids in force
                recent = None
            if recent is not None:  # a keyword without a row today has the bid we published last in force
                recent = with_todays_bids_in_force(recent, report_for(day), publishing.published_before(store, day)[1])
            note = (
                landscape.describe() if landscape else "no bid landscape for this day (see bid_landscape): fixed margin"
            )
            if with_predictions:
                outputs = {"predictions": tables.PREDICTIONS, **({"bids": tables.BIDS} if with_bids else {})}
                scores[day] = scoring.score_day(
                    store,
                    tables.FEATURES,
                    day,
                    champion_model,
                    keyword_clusters,
                    outputs,
                    bid_policy,
                    landscape,
                    recent,
                    note,
                    context.log.info,
                    tables.KEYWORD_VALUE,
                    sink=staged,
                )
                done = f"scored at {scores[day].rows_per_second:,.0f} rows/s on the {scoring.engine} engine"
            else:
                scores[day] = scoring.bid_day(
                    store,
                    tables.PREDICTIONS,
                    tables.BIDS,
                    day,
                    bid_policy,
                    landscape,
                    recent,
                    note,
                    context.log.info,
                    sink=staged,
                )
                done = "bid from their stored predictions"
            context.log.info(f"{day}: {scores[day].predictions.keywords:,} keywords {done}")
        refused = {day: score.cannot_bid for day, score in scores.items() if score.cannot_bid} if with_bids else {}
        if refused:  # the step fails saying why, and what it wrote is thrown away: no table changes
            reasons = set(refused.values())
            raise CannotBidError(
                reasons.pop() if len(reasons) == 1 else "; ".join(f"{day}: {reason}" for day, reason in refused.items())
            )
        latest = scores[days[-1]]
        if with_predictions:
            staged.publish(tables.PREDICTIONS)
            yield dg.MaterializeResult(
                asset_key=PREDICTIONS,
                metadata=readable(
                    {
                        **latest.predictions.summary(),
                        "model_version": champion_model.version,
                        "engine": scoring.engine,
                        "rows_per_second": round(latest.rows_per_second),
                        "path": dg.MetadataValue.path(store.display_uri(tables.PREDICTIONS)),
                        **held_metadata(store, tables.PREDICTIONS),
                    }
                ),
            )
        if not with_bids:
            return
        staged.publish(tables.BIDS)
        predictions_used = {} if with_predictions else {"predictions_used": _stored_predictions_note(store, days)}
        yield dg.MaterializeResult(
            asset_key=BIDS,
            metadata={
                **_bid_metadata(context, latest.bids, bid_policy, store),
                **predictions_used,
                **held_metadata(store, tables.BIDS),
            },
        )


def _bid_metadata(context, totals: BidTotals, bid_policy: BidPolicyResource, store) -> dict:
    from daily_bids.bidding.decision import clicks_note, economics_view

    if totals.unprofitable:
        context.log.info(
            f"{totals.unprofitable} keywords get no bid: even the minimum bid would not stay below its value per "
            "click, or would be expected to cost more than its conservative value"
        )
    economics, economics_note = economics_view(totals.economics)
    chosen = economics.loc["chosen"]
    cap = bid_policy.change_cap
    return {
        "bids": totals.bids,
        "policy": bid_policy.policy,
        "keywords_not_bid_unprofitable": totals.unprofitable,
        **{f"{name}_bids": totals.basis.get(name, 0) for name in BID_BASES},
        "explored_bids": totals.explored,
        "change_cap": f"{cap:.0%} of the bid in force" if cap is not None else "off (max_bid_change 0)",
        "change_capped_bids": int(chosen["change_capped"]),
        # Bids that fell further than the cap allows: at the cap they would break the money rule (or max_bid).
        "lowered_to_ceiling_bids": int(chosen["lowered_to_ceiling"]),
        # Without the landscape a click's cost is known only to be at most the bid: spend is then an upper bound.
        "keywords_priced_by_landscape": totals.priced_by_landscape,
        "clicks": clicks_note(totals.economics),
        "keywords_clicks_assumed_unchanged": int(chosen["clicks_assumed_unchanged"]),
        "bid_rule": bid_rule_note(
            totals.basis,
            totals.explored,
            bid_policy,
            int(chosen["change_capped"]),
            int(chosen["lowered_to_ceiling"]),
            int(chosen["clicks_assumed_unchanged"]),
        ),
        "landscape": totals.landscape_note,
        # The chosen bids and, where clicks respond to the bid, the fixed margin's (the latest day of the run).
        "economics": dg.MetadataValue.md(
            economics.rename_axis("bids").to_markdown() + (f"\n\n{economics_note}" if economics_note else "")
        ),
        "expected_clicks": float(chosen["expected_clicks"]),
        "expected_spend": float(chosen["expected_spend"]),
        "expected_profit": float(chosen["expected_profit"]),
        # Only where the fixed margin's bids can be compared by profit (the landscape priced some keyword).
        **(
            {"fixed_margin_expected_profit": round(float(totals.economics.loc["fixed_margin", "expected_profit"]), 2)}
            if "fixed_margin" in economics.index or totals.priced_by_landscape
            else {}
        ),
        "expected_value": round(totals.expected_value, 2),
        "expected_spend_at_most": round(totals.spend_at_most, 2),
        "mean_bid": round(totals.mean_bid, 4),
        "preview": dg.MetadataValue.md(totals.preview.to_markdown(index=False)),
        "path": dg.MetadataValue.path(store.display_uri(tables.BIDS)),
    }


class PublishConfig(dg.Config):
    republish: bool = Field(
        False,
        description="Publish a partition that was published already (for example after "
        "fixing a bad day). Bids of past days are never republished.",
    )


@dg.asset(group_name="serving", kinds={"csv", "parquet"}, deps=[BIDS], **DAILY_ASSET_POLICIES)
def published_bids(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    bid_policy: BidPolicyResource,
    ad_platform: ReportSource,
    warehouse: WarehouseResource,
    scoring: EngineResource,  # the engine (BIDS_ENGINE) of the rules' check and of the Ads Editor CSV
) -> dg.MaterializeResult:
    """The bids handed to the ad platform: the Google Ads Editor CSV, and, for the simulator, the bids in force the
    next day. Runs only after every blocking check upstream passed; publishes each day once and in order, so a
    backfill of past days never touches the live bids. The ledger (each bid and the bid it replaced) is kept in the
    `published_bids` table of the days that were published."""
    store = warehouse.warehouse()
    days = partition_days(context)
    # Defence in depth: the same rules as the blocking check, so a run that skipped the check cannot publish.
    suite = quality.bid_suite(bid_policy.min_bid, bid_policy.max_bid)
    for day in days:
        outcomes = scoring.check_stored(store, tables.BIDS, [day], suite, "bids_to_publish", context.log.info)
        broken = [outcome for outcome in outcomes if not outcome.success]
        if broken:
            raise dg.Failure(
                description=f"refusing to publish the bids of {day}, which break the bid rules: "
                + "; ".join(f"{o.expectation.description} ({o.unexpected_count} rows)" for o in broken),
                allow_retries=False,
            )
    published_days = store.list_partitions(tables.PUBLISHED_BIDS)
    decisions, hand_offs = {}, {}
    for day in days:
        decision = decisions[day.isoformat()] = publishing.decide_publication(day, published_days, config.republish)
        if not decision.publish:
            context.log.info(f"{day}: not published: {decision.reason}")
            continue
        effective_day = day + dt.timedelta(days=1)
        todays = store.read_partitions(
            tables.BIDS, [day], publishing.present_columns(store, tables.BIDS, day, list(PUBLISHED_COLUMNS))
        )
        previous_day = publishing.latest_before(published_days, day)
        previous = store.read_partitions(tables.PUBLISHED_BIDS, [previous_day]) if previous_day else None
        ledger = publishing.ledger(todays, previous)
        scoring.write_ads_editor_csv(
            store, tables.BIDS, day, ads_editor_export_path(effective_day), bid_policy.currency, context.log.info
        )
        handed_off = ad_platform.publish_bids(day, todays, context.run_id, context.log.info)
        if handed_off:
            context.log.info(f"{day}: {handed_off}")
            hand_offs[day.isoformat()] = handed_off
        if ad_platform.dry_run:
            context.log.info(f"{day}: a dry run, so the day is not recorded as published")
            continue
        # The ledger is written last: a partition counts as published only once the hand-off is done.
        store.write_partition(tables.PUBLISHED_BIDS, day, ledger)
        published_days = sorted({*published_days, day})
    # The latest publication of the run's days, read back from its ledger: a re-run that publishes nothing (the day
    # was published already) still shows the day's CSV and changes, not only "published already".
    summary = {}
    shown = max((day for day in days if day in published_days), default=None)
    if shown is not None:
        effective_day = shown + dt.timedelta(days=1)
        ledger = store.read_partitions(tables.PUBLISHED_BIDS, [shown], list(publishing.LEDGER_COLUMNS))
        csv_path = ads_editor_export_path(effective_day)
        summary = {
            "published_day": shown.isoformat(),
            "effective_day": effective_day.isoformat(),
            "published_by_this_run": decisions[shown.isoformat()].publish,
            "bids_published": len(ledger),
            **(
                {"ads_editor_csv": dg.MetadataValue.path(store.display_uri(csv_path))} if store.exists(csv_path) else {}
            ),
            **publishing.change_summary(
                ledger, publishing.keyword_names(store, tables.BIDS, shown), currency=bid_policy.currency
            ),
        }
    published = sum(decision.publish for decision in decisions.values())
    return dg.MaterializeResult(
        metadata={
            "days_published": published,
            "days_not_published": len(decisions) - published,
            "decisions": dg.MetadataValue.json({day: decision.reason for day, decision in decisions.items()}),
            **({"ad_platform": dg.MetadataValue.json(hand_offs)} if hand_offs else {}),
            **summary,
        }
    )
