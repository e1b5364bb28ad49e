"""Asset checks. Blocking ones stop downstream assets in the same run when they fail."""

import dagster as dg
import pandas as pd

from assets.partitions import daily_partitions
from assets.serving import keyword_bids
from resources.bid_policy import BidPolicyResource


@dg.asset_check(asset=keyword_bids, blocking=True, partitions_def=daily_partitions, description="Every bid is below its expected value per click and "
                "inside [min_bid, max_bid]; no keyword is bid twice for a day.")
def bids_are_profitable_and_capped(keyword_bids: pd.DataFrame, bid_policy: BidPolicyResource) -> dg.AssetCheckResult:
    at_or_above_value = keyword_bids["bid"] >= keyword_bids["expected_value_per_click"]
    outside_caps = (keyword_bids["bid"] < bid_policy.min_bid) | (keyword_bids["bid"] > bid_policy.max_bid)
    duplicated = keyword_bids.duplicated(["date", "keyword_id"])
    failing = keyword_bids[at_or_above_value | outside_caps | duplicated]
    return dg.AssetCheckResult(
        passed=failing.empty,
        metadata={
            "bids_checked": len(keyword_bids),
            "bids_at_or_above_value_per_click": int(at_or_above_value.sum()),
            "bids_outside_caps": int(outside_caps.sum()),
            "duplicate_bids": int(duplicated.sum()),
            "failing_sample": dg.MetadataValue.md(failing.head(5).to_markdown(index=False)) if len(failing) else "",
        },
    )
