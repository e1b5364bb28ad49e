"""How a day's bids move against the bids in force: many large moves at once are the mark of a fault."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.bidding.policy import BidPolicy

LARGE_MOVE_COLUMNS = ["keyword_id", "bid_in_force", "bid", "change"]
# A bid in force within half a cent of the one we published is ours: half of the smallest billable unit of any
# currency (`daily_bids.currency`), so it tells two whole-unit bids apart in every one.
PUBLISHED_CENT = 0.005


@dataclass(frozen=True)
class BidMoves:
    compared: int  # keywords bid today that have a bid in force
    large: pd.DataFrame  # LARGE_MOVE_COLUMNS (change is relative), largest first
    share_large: float
    # Large moves that are the money rule cutting the advertiser's own bids (never ours) past the change cap: what
    # the product is for on its first days, so they do not count as large (LARGE_MOVE_COLUMNS).
    advertiser_bids_cut: pd.DataFrame

    def implausible(self, policy: BidPolicy) -> bool:
        return self.share_large > policy.max_share_large_moves


def bids_in_force(reported: pd.DataFrame | None, published: pd.DataFrame | None) -> pd.DataFrame:
    """keyword_id, bid, ours: each keyword's bid in force, as the day's report gives it (`max_cpc`), else the bid we
    published last (`bid`); `ours` where it is the bid we published. The report wins: it also knows the advertiser's
    own bids."""
    parts = []
    if reported is not None and "max_cpc" in reported.columns:
        known = pd.to_numeric(reported["max_cpc"], errors="coerce") > 0
        parts.append(reported.loc[known, ["keyword_id", "max_cpc"]].rename(columns={"max_cpc": "bid"}))
    if published is not None:
        parts.append(published[["keyword_id", "bid"]])
    if not parts:
        return pd.DataFrame(
            {"keyword_id": pd.Series(dtype="int64"), "bid": pd.Series(dtype="float64"), "ours": pd.Series(dtype=bool)}
        )
    in_force = pd.concat(parts, ignore_index=True).drop_duplicates("keyword_id", keep="first").reset_index(drop=True)
    ours = (
        published.set_index("keyword_id")["bid"].reindex(in_force["keyword_id"].to_numpy()).to_numpy(dtype="float64")
        if published is not None
        else np.full(len(in_force), np.nan)
    )
    return in_force.assign(ours=np.abs(in_force["bid"].to_numpy(dtype="float64") - ours) < PUBLISHED_CENT)


def with_todays_bids_in_force(
    context: pd.DataFrame, reported: pd.DataFrame | None, published: pd.DataFrame | None
) -> pd.DataFrame:
    """`context` (`landscape.bid_context`'s frame) with each keyword's `bid_in_force` as `bids_in_force` gives it
    for the day: a keyword missing from the day's report keeps the bid we published last, not the older max CPC its
    last report row showed. Keywords known to neither keep the context's."""
    in_force = bids_in_force(reported, published).set_index("keyword_id")["bid"]
    today = in_force.reindex(context["keyword_id"].to_numpy()).to_numpy(dtype="float64")
    return context.assign(bid_in_force=np.where(np.isnan(today), context["bid_in_force"].to_numpy(), today))


def bid_moves(bids: pd.DataFrame, in_force: pd.DataFrame | None, policy: BidPolicy) -> BidMoves:
    """How today's bids move against the bids in force (`keyword_id`, `bid`, and `ours` where known), keyword by
    keyword: a model or data fault shows as many large moves at once, while a healthy day moves few bids far.

    A bid the money rule lowered past the change cap (`lowered_to_ceiling`) counts as a large move when the bid in
    force was ours (a value that collapsed overnight looks the same as a fault), but not when it was the advertiser's:
    a first day against manual bids above what a click is worth would otherwise block every publication."""
    empty = pd.DataFrame(columns=LARGE_MOVE_COLUMNS)
    if in_force is None or in_force.empty or bids.empty:
        return BidMoves(0, empty, 0.0, empty)
    lowered = bids["lowered_to_ceiling"] if "lowered_to_ceiling" in bids.columns else False
    ours = in_force["ours"] if "ours" in in_force.columns else True
    joined = bids[["keyword_id", "bid"]].assign(lowered_to_ceiling=lowered)
    joined = joined.merge(
        in_force[["keyword_id", "bid"]].assign(ours=ours).rename(columns={"bid": "bid_in_force"}), on="keyword_id"
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        joined["change"] = joined["bid"].astype("float64") / joined["bid_in_force"].astype("float64") - 1.0
    joined = joined.reindex(joined["change"].abs().sort_values(ascending=False, na_position="first").index)
    large = ~(joined["change"].abs() <= policy.max_daily_change)  # NaN or inf moves count as large
    cut = large & joined["lowered_to_ceiling"].astype(bool) & ~joined["ours"].astype(bool)
    counted = joined[large & ~cut]
    return BidMoves(
        len(joined),
        counted.reset_index(drop=True)[LARGE_MOVE_COLUMNS],
        len(counted) / len(joined) if len(joined) else 0.0,
        joined[cut].reset_index(drop=True)[LARGE_MOVE_COLUMNS],
    )
