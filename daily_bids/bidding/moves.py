"""How a day's bids moved against the previous day's: many large moves at once are the mark of a fault."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from daily_bids.bidding.policy import BidPolicy


@dataclass(frozen=True)
class BidMoves:
    compared: int  # keywords bid both yesterday and today
    large: pd.DataFrame  # keyword_id, previous_bid, bid, change (relative), largest first
    share_large: float

    def implausible(self, policy: BidPolicy) -> bool:
        return self.share_large > policy.max_share_large_moves


def bid_moves(bids: pd.DataFrame, previous: pd.DataFrame | None, policy: BidPolicy) -> BidMoves:
    """How today's bids moved against yesterday's, keyword by keyword: a model or data fault shows as many large
    moves at once, while a healthy day moves few bids far."""
    if previous is None or previous.empty or bids.empty:
        return BidMoves(0, pd.DataFrame(columns=["keyword_id", "previous_bid", "bid", "change"]), 0.0)
    joined = bids[["keyword_id", "bid"]].merge(
        previous[["keyword_id", "bid"]].rename(columns={"bid": "previous_bid"}), on="keyword_id"
    )
    joined["change"] = joined["bid"] / joined["previous_bid"] - 1.0
    large = joined[~(joined["change"].abs() <= policy.max_daily_change)]  # NaN or inf moves count as large
    large = large.reindex(large["change"].abs().sort_values(ascending=False).index)
    return BidMoves(
        len(joined),
        large.reset_index(drop=True)[["keyword_id", "previous_bid", "bid", "change"]],
        len(large) / len(joined) if len(joined) else 0.0,
    )
