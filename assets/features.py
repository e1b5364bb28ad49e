"""Keyword features for next-day prediction."""

import dagster as dg
import pandas as pd

from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from assets.reports import VALIDATED_REPORT
from daily_bids.features import FEATURES, LOOKBACK_DAYS, compute_features, feature_set_version


@dg.asset(
    group_name="features",
    kinds={"pandas", "parquet"},
    ins={
        "validated_keyword_report": dg.AssetIn(
            key=VALIDATED_REPORT,
            # Each day reads the 28 report days ending on it; before the first partition there is simply no data.
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(LOOKBACK_DAYS - 1), allow_nonexistent_upstream_partitions=True
            )
        )
    },
    # A change to any feature definition changes the code version, which marks the asset and its dependents stale.
    code_version=feature_set_version(),
    **DAILY_ASSET_POLICIES,
)
def keyword_features(context: dg.AssetExecutionContext, validated_keyword_report: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Lags, 7- and 28-day sums and means (log1p-scaled), smoothed ratios and calendar features per keyword, as of
    the end of the partition day. Reads report days up to the partition day only."""
    days = partition_days(context)
    features = compute_features(validated_keyword_report, days)
    return dg.Output(features, metadata={"rows": len(features), "features": len(FEATURES), "days": len(days)})
