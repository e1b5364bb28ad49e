"""How a day's bids move against the bids in force: many large moves at once are the mark of a fault."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.bidding.policy import BidPolicy

LARGE_MOVE_COLUMNS = ["keyword_id", "bid_in_force", "bid", "change"]


@dataclass(frozen=True)
class BidMoves:
    compared: int  # keywords bid today that have a bid in force
    large: pd.DataFrame  # LARGE_MOVE_COLUMNS (change is relative), largest first
    share_large: float

    def implausible(self, policy: BidPolicy) -> bool:
        return self.share_large > policy.max_share_large_moves


def bids_in_force(reported: pd.DataFrame | None, published: pd.DataFrame | None) -> pd.DataFrame:
    """keyword_id, bid: each keyword's bid in force, as the day's report gives it (`max_cpc`), else the bid we
    published last (`bid`). The report wins: it also knows the advertiser's own bids, which were never ours."""
    parts = []
    if reported is not None and "max_cpc" in reported.columns:
        known = reported["max_cpc"].notna() & (pd.to_numeric(reported["max_cpc"], errors="coerce") > 0)
        parts.append(reported.loc[known, ["keyword_id", "max_cpc"]].rename(columns={"max_cpc": "bid"}))
    if published is not None:
        parts.append(published[["keyword_id", "bid"]])
    if not parts:
        return pd.DataFrame({"keyword_id": pd.Series(dtype="int64"), "bid": pd.Series(dtype="float64")})
    both = pd.concat(parts, ignore_index=True)
    return both.drop_duplicates("keyword_id", keep="first").reset_index(drop=True)


def bid_moves(bids: pd.DataFrame, in_force: pd.DataFrame | None, policy: BidPolicy) -> BidMoves:
    """How today's bids move against the bids in force (`keyword_id`, `bid`), keyword by keyword: a model or data
    fault shows as many large moves at once, while a healthy day moves few bids far."""
    if in_force is None or in_force.empty or bids.empty:
        return BidMoves(0, pd.DataFrame(columns=LARGE_MOVE_COLUMNS), 0.0)
    joined = bids[["keyword_id", "bid"]].merge(
        in_force[["keyword_id", "bid"]].rename(columns={"bid": "bid_in_force"}), on="keyword_id"
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        joined["change"] = joined["bid"].astype("float64") / joined["bid_in_force"].astype("float64") - 1.0
    large = joined[~(joined["change"].abs() <= policy.max_daily_change)]  # NaN or inf moves count as large
    large = large.reindex(large["change"].abs().sort_values(ascending=False).index)
    return BidMoves(
        len(joined),
        large.reset_index(drop=True)[LARGE_MOVE_COLUMNS],
        len(large) / len(joined) if len(joined) else 0.0,
    )
