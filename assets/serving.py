"""Next-day predictions, bids, and their publication to the ad platform.

`keyword_bids` only computes; `published_bids` is the one step that moves money. It sits downstream of the bids so
that the blocking checks on the bids run first, in the same run: a bid that fails them is never published.
"""

import datetime as dt

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.metadata import readable
from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from assets.models import REPORTS_TABLE
from assets.reports import VALIDATED_REPORT
from daily_bids import publishing, quality
from daily_bids.bidding import ads_editor_csv, bid_rule_note, decide_bids
from daily_bids.landscape import (
    CONTEXT_DAYS, TRAINING_DAYS, BidLandscape, LandscapeUnavailable, bid_context, landscape_for_day,
)
from daily_bids.prediction import predict_next_day, summarize_predictions
from resources.ad_platform import ReportSource
from resources.bid_policy import BidPolicyResource
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource

ADS_EDITOR_EXPORTS = "exports/google_ads_editor"
PUBLISHED_TABLE = "published_bids"


def ads_editor_export_path(effective_day: dt.date) -> str:
    return f"{ADS_EDITOR_EXPORTS}/keyword_bids_{effective_day.isoformat()}.csv"


@dg.asset(group_name="serving", kinds={"pandas", "parquet"}, **DAILY_ASSET_POLICIES)
def keyword_predictions(keyword_features: pd.DataFrame, champion_model,
                        keyword_clusters: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Expected clicks, conversions, value and value per click of each keyword on the day after the partition, from
    the champion model, and each keyword's cluster-level value per click (the cold-start prior)."""
    predictions = predict_next_day(keyword_features, champion_model, keyword_clusters)
    return dg.Output(predictions, metadata=readable({**summarize_predictions(predictions),
                                                        "model_version": champion_model.version}))


def _reports_through(store, day: dt.date, days: int) -> pd.DataFrame:
    """The validated reports of the `days` days through `day` that exist (a young deployment has fewer)."""
    wanted = [day - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
    return store.read_partitions(REPORTS_TABLE, [d for d in wanted if store.partition_exists(REPORTS_TABLE, d)])


@dg.asset(group_name="serving", kinds={"sklearn", "parquet"}, deps=[VALIDATED_REPORT],
          **DAILY_ASSET_POLICIES)
def bid_landscape(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                  tracker: ExperimentTracker) -> dg.Output[pd.DataFrame]:
    """How clicks and cost per click respond to the bid: pooled elasticities learnt from the bids in force (max CPC)
    and outcomes of the last 56 report days, with their errors on a holdout of the last 7 at the bids in force.
    One row per partition; none when the reports carry no max CPC or bids never varied (bids then follow the fixed
    margin, and the metadata says why)."""
    store = warehouse.warehouse()
    days = partition_days(context)
    reports = _reports_through(store, days[-1], TRAINING_DAYS + CONTEXT_DAYS + len(days))
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
        return dg.Output(pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")}),
                         metadata={"landscape": notes[days[-1].isoformat()]})
    latest = BidLandscape.from_row(rows[-1].iloc[0])
    run_id = tracker.log_run(f"bid_landscape {latest.version}", "bid_landscape",
                             {"trained_through": latest.trained_through, "training_rows": latest.training_rows,
                              "varied_rows": latest.varied_rows, "training_days": TRAINING_DAYS},
                             {**latest.holdout_metrics, "click_elasticity": latest.click_elasticity,
                              "cost_elasticity": latest.cost_elasticity})
    return dg.Output(pd.concat(rows, ignore_index=True), metadata=readable({
        "landscape": notes[days[-1].isoformat()],
        "varied_keyword_days": latest.varied_rows,
        "training_rows": latest.training_rows,
        **latest.holdout_metrics,
        "mlflow_run_id": run_id,
    }))


@dg.asset(group_name="serving", kinds={"pandas", "parquet"}, **DAILY_ASSET_POLICIES)
def keyword_bids(context: dg.AssetExecutionContext, keyword_predictions: pd.DataFrame, bid_landscape: pd.DataFrame,
                 bid_policy: BidPolicyResource, warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """Max CPC per keyword for the day after the partition, below its expected value per click, by the configured
    policy (`profit_optimal` on the bid landscape, or `fixed_margin`), with a share of keywords explored. Computed
    only: `published_bids` hands them to the ad platform once the checks on them have passed."""
    store = warehouse.warehouse()
    decisions = []
    # One read for the run: each day's bids in force come from the CONTEXT_DAYS reports through it.
    days = sorted({day.date() for day in keyword_predictions["date"]})
    recent_reports = _reports_through(store, days[-1], CONTEXT_DAYS + len(days) - 1) if days else None
    by_day = keyword_predictions.groupby("date", sort=True) if len(keyword_predictions) else []
    if not len(keyword_predictions):  # no keyword to bid: an empty table, with its economics all zero
        decisions.append(decide_bids(keyword_predictions, bid_policy))
    for day, predictions in by_day:
        day = day.date()
        todays = bid_landscape[bid_landscape["date"] == pd.Timestamp(day)]
        landscape = BidLandscape.from_row(todays.iloc[0]) if len(todays) else None
        try:
            recent = bid_context(recent_reports, day)
        except LandscapeUnavailable:  # no max CPC in the reports: nothing is known of the bids in force
            recent = None
        note = landscape.describe() if landscape else "no bid landscape for this day (see bid_landscape): fixed margin"
        decisions.append(decide_bids(predictions.reset_index(drop=True), bid_policy, landscape, recent, note))
    bids = pd.concat([d.bids for d in decisions], ignore_index=True)
    unprofitable = sum(len(d.unprofitable) for d in decisions)
    economics = decisions[-1].economics.round(2)
    if unprofitable:
        context.log.info(f"{unprofitable} keywords get no bid: even the minimum bid would not stay below its value")
    basis = bids["bid_basis"].value_counts()
    return dg.Output(bids, metadata={
        "bids": len(bids),
        "policy": bid_policy.policy,
        "keywords_not_bid_unprofitable": unprofitable,
        **{f"{name}_bids": int(basis.get(name, 0)) for name in ("profit_optimal", "fixed_margin", "cold_start",
                                                                 "configured_value")},
        "explored_bids": int(bids["exploration"].sum()),
        # Without the landscape a click's cost is known only to be at most the bid: spend is then an upper bound.
        "keywords_priced_by_landscape": decisions[-1].priced_by_landscape,
        "bid_rule": bid_rule_note(bids, bid_policy),
        "landscape": decisions[-1].landscape_note,
        # The chosen bids and the fixed-margin rule side by side (the latest day of the run).
        "economics": dg.MetadataValue.md(economics.rename_axis("bids").to_markdown()),
        "expected_clicks": float(economics.loc["chosen", "expected_clicks"]),
        "expected_spend": float(economics.loc["chosen", "expected_spend"]),
        "expected_profit": float(economics.loc["chosen", "expected_profit"]),
        "fixed_margin_expected_profit": float(economics.loc["fixed_margin", "expected_profit"]),
        "expected_value": round(float((bids["expected_clicks"] * bids["expected_value_per_click"]).sum()), 2),
        "expected_spend_at_most": round(float((bids["bid"] * bids["expected_clicks"]).sum()), 2),
        "mean_bid": round(float(bids["bid"].mean()), 4) if len(bids) else 0.0,
        "preview": dg.MetadataValue.md(bids.head(10).to_markdown(index=False)),
    })


class PublishConfig(dg.Config):
    republish: bool = Field(False, description="Publish a partition that was published already (for example after "
                                               "fixing a bad day). Bids of past days are never republished.")


@dg.asset(group_name="serving", kinds={"csv", "parquet"}, deps=[keyword_bids], **DAILY_ASSET_POLICIES)
def published_bids(context: dg.AssetExecutionContext, config: PublishConfig, bid_policy: BidPolicyResource,
                   ad_platform: ReportSource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The bids handed to the ad platform: the Google Ads Editor CSV, and, for the simulator, the bids in force the
    next day. Runs only after every blocking check upstream passed; publishes each day once and in order, so a
    backfill of past days never touches the live bids. The ledger (each bid and the bid it replaced) is kept in the
    `published_bids` table of the days that were published."""
    store = warehouse.warehouse()
    days = partition_days(context)
    bids = store.read_partitions(keyword_bids.key.path[-1], days)
    # Defence in depth: the same rules as the blocking check, so a run that skipped the check cannot publish.
    broken = [o for o in quality.run_expectations(bids, quality.bid_suite(bid_policy.min_bid, bid_policy.max_bid),
                                                  "bids_to_publish") if not o.success]
    if broken:
        raise dg.Failure(description="refusing to publish bids that break the bid rules: "
                                     + "; ".join(f"{o.expectation.description} ({o.unexpected_count} rows)" for o in broken),
                         allow_retries=False)
    published_days = store.list_partitions(PUBLISHED_TABLE)
    decisions, summary = {}, {}
    for day in days:
        decision = decisions[day.isoformat()] = publishing.decide_publication(day, published_days, config.republish)
        if not decision.publish:
            context.log.info(f"{day}: not published: {decision.reason}")
            continue
        effective_day = day + dt.timedelta(days=1)
        todays = bids[bids["date"] == pd.Timestamp(day)]
        previous_day = publishing.latest_before(published_days, day)
        previous = store.read_partitions(PUBLISHED_TABLE, [previous_day]) if previous_day else None
        ledger = publishing.ledger(todays, previous)
        store.write_bytes(ads_editor_export_path(effective_day), ads_editor_csv(todays))
        ad_platform.publish_bids(effective_day, todays)
        # The ledger is written last: a partition counts as published only once the hand-off is done.
        store.write_partition(PUBLISHED_TABLE, day, ledger)
        published_days = sorted({*published_days, day})
        summary = {
            "published_day": day.isoformat(), "effective_day": effective_day.isoformat(), "bids_published": len(todays),
            "ads_editor_csv": dg.MetadataValue.path(store.display_uri(ads_editor_export_path(effective_day))),
            **publishing.change_summary(ledger, todays.set_index("keyword_id")["keyword"]),
        }
    published = sum(decision.publish for decision in decisions.values())
    return dg.MaterializeResult(metadata={
        "days_published": published,
        "days_not_published": len(decisions) - published,
        "decisions": dg.MetadataValue.json({day: decision.reason for day, decision in decisions.items()}),
        **summary,
    })
