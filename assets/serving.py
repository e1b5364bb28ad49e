"""Next-day predictions and bids."""

import datetime as dt

import dagster as dg
import pandas as pd

from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from daily_bids.bidding import ads_editor_csv, compute_bids
from daily_bids.prediction import predict_next_day, summarize_predictions
from resources.ad_platform import SimulatedAdPlatform
from resources.bid_policy import BidPolicyResource
from resources.warehouse import WarehouseResource

ADS_EDITOR_EXPORTS = "exports/google_ads_editor"


def ads_editor_export_path(effective_day: dt.date) -> str:
    return f"{ADS_EDITOR_EXPORTS}/keyword_bids_{effective_day.isoformat()}.csv"


@dg.asset(group_name="serving", kinds={"pandas", "parquet"}, **DAILY_ASSET_POLICIES)
def keyword_predictions(keyword_features: pd.DataFrame, champion_model,
                        keyword_clusters: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Expected clicks, conversions, value and value per click of each keyword on the day after the partition, from
    the champion model, and each keyword's cluster-level value per click (the cold-start prior)."""
    predictions = predict_next_day(keyword_features, champion_model, keyword_clusters)
    return dg.Output(predictions, metadata={**summarize_predictions(predictions), "model_version": champion_model.version})


@dg.asset(group_name="serving", kinds={"pandas", "parquet", "csv"}, **DAILY_ASSET_POLICIES)
def keyword_bids(
    context: dg.AssetExecutionContext,
    keyword_predictions: pd.DataFrame,
    bid_policy: BidPolicyResource,
    ad_platform: SimulatedAdPlatform,
    warehouse: WarehouseResource,
) -> dg.Output[pd.DataFrame]:
    """Max CPC per keyword for the day after the partition, below its expected value per click. Also written as a
    Google Ads Editor CSV and published to the ad platform."""
    bids, unprofitable = compute_bids(keyword_predictions, bid_policy)
    store = warehouse.warehouse()
    exports = []
    for day in partition_days(context):
        effective_day = day + dt.timedelta(days=1)
        todays = bids[bids["effective_date"] == pd.Timestamp(effective_day)]
        store.write_bytes(ads_editor_export_path(effective_day), ads_editor_csv(todays))
        exports.append(store.display_uri(ads_editor_export_path(effective_day)))
        ad_platform.publish_bids(effective_day, todays)
    if len(unprofitable):
        context.log.info(f"{len(unprofitable)} keywords get no bid: even the minimum bid would not keep the margin")
    expected_spend_cap = float((bids["bid"] * bids["expected_clicks"]).sum())
    return dg.Output(
        bids,
        metadata={
            "bids": len(bids),
            "keywords_not_bid_unprofitable": len(unprofitable),
            "cold_start_bids": int((bids["bid_basis"] == "cold_start").sum()),
            "expected_clicks": float(bids["expected_clicks"].sum()),
            "expected_value": float((bids["expected_clicks"] * bids["expected_value_per_click"]).sum()),
            "expected_spend_at_most": expected_spend_cap,
            "mean_bid": float(bids["bid"].mean()) if len(bids) else 0.0,
            "ads_editor_csv": dg.MetadataValue.path(exports[-1]),
            "ads_editor_csv_files": len(exports),
            "preview": dg.MetadataValue.md(bids.head(10).to_markdown(index=False)),
        },
    )
