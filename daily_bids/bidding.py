"""Bidding math: from next-day predictions to a max CPC per keyword.

    bid = expected value per click × (1 − target margin), rounded down to the cent, capped at the max bid.

A bid never reaches the expected value per click, because the margin is above zero and rounding goes down. The price
paid per click is at most the bid (second-price auctions), so every click is expected to earn more than it costs.
Where even the minimum bid would not keep the margin, the keyword gets no bid: it is listed as unprofitable rather
than bid at a loss.

Keywords with fewer than `min_history_days` days of history are bid from their cluster's value per click, or, for a
keyword not yet in a cluster, their ad group's (which falls back to the campaign's and the account's), with the wider
`cold_start_margin`: a conservative default while the model has little to go on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

BID_COLUMNS: tuple[str, ...] = (
    "date", "effective_date", "keyword_id", "campaign", "ad_group", "keyword", "match_type",
    "bid", "expected_clicks", "expected_value_per_click", "bid_basis", "model_version",
)
# Google Ads Editor's columns for a keyword bid change, and the bid table's column each one is taken from.
ADS_EDITOR_COLUMNS: dict[str, str] = {
    "Campaign": "campaign", "Ad group": "ad_group", "Keyword": "keyword", "Match type": "match_type", "Max CPC": "bid",
}


class BidPolicy(BaseModel):
    """Margin and caps. Also the `keyword_bids` asset's run configuration."""

    model_config = ConfigDict(frozen=True)

    target_margin: float = Field(0.3, gt=0.0, lt=1.0, description="Share of the expected value per click kept as margin.")
    min_bid: float = Field(0.05, gt=0.0, description="Lowest max CPC the ad platform accepts.")
    max_bid: float = Field(20.0, gt=0.0, description="Highest max CPC the platform will ever set.")
    min_history_days: int = Field(7, ge=1, le=28, description="Days of history below which a keyword is a cold start.")
    cold_start_margin: float = Field(0.5, gt=0.0, lt=1.0, description="Margin for cold-start keywords (wider: less known).")
    value_per_click: float | None = Field(
        None, gt=0.0, description="Value of a click, for reports without conversion value (impressions and clicks only)."
    )

    @model_validator(mode="after")
    def _caps_in_order(self):
        if self.min_bid > self.max_bid:
            raise ValueError(f"min_bid {self.min_bid} is above max_bid {self.max_bid}")
        return self


class CannotBidError(ValueError):
    """Raised when no keyword has a value per click to bid from."""


def compute_bids(predictions: pd.DataFrame, policy: BidPolicy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bids, unprofitable) from `keyword_predictions` rows.

    `predictions` needs expected_clicks, expected_value_per_click (the model's), prior_value_per_click (the ad
    group's), history_days and, optionally, cluster_value_per_click. Bids carry `bid_basis`: "model", "cold_start" or "configured_value" (reports without
    conversion value, bid from the policy's value_per_click).
    """
    model_value = predictions["expected_value_per_click"].to_numpy(dtype="float64")
    prior_value = predictions["prior_value_per_click"].to_numpy(dtype="float64")
    if "cluster_value_per_click" in predictions.columns:  # the cluster's prior where the keyword has a cluster
        cluster_value = predictions["cluster_value_per_click"].to_numpy(dtype="float64")
        prior_value = np.where(np.isnan(cluster_value), prior_value, cluster_value)
    value_unknown = np.isnan(model_value)
    if len(predictions) and value_unknown.all() and policy.value_per_click is None:
        raise CannotBidError(
            "cannot bid: the keyword reports carry no conversion value, so no value per click can be predicted. "
            "Set BIDS_VALUE_PER_CLICK (or the bid_policy resource's value_per_click) to the value of a click."
        )
    if policy.value_per_click is not None:
        model_value = np.where(value_unknown, policy.value_per_click, model_value)
        prior_value = np.where(np.isnan(prior_value), policy.value_per_click, prior_value)
    cold_start = predictions["history_days"].to_numpy() < policy.min_history_days
    value_per_click = np.where(cold_start, prior_value, model_value)
    margin = np.where(cold_start, max(policy.cold_start_margin, policy.target_margin), policy.target_margin)
    # Down to the cent; rounding to 6 places first stops float noise (0.8 × 0.7 = 0.55999…) from costing a cent.
    bid = np.minimum(np.floor(np.round(value_per_click * (1.0 - margin) * 100.0, 6)) / 100.0, policy.max_bid)

    priced = predictions.assign(
        bid=bid,
        expected_value_per_click=value_per_click,
        bid_basis=np.where(cold_start, "cold_start", np.where(value_unknown, "configured_value", "model")),
    )
    profitable = (bid >= policy.min_bid) & (bid < value_per_click)
    bids = priced.loc[profitable, list(BID_COLUMNS)].reset_index(drop=True)
    unprofitable = priced.loc[~profitable].reset_index(drop=True)
    return bids, unprofitable


def ads_editor_csv(bids: pd.DataFrame) -> bytes:
    """The bids in the layout Google Ads Editor imports as keyword bid changes."""
    sheet = pd.DataFrame({header: bids[column].to_numpy() for header, column in ADS_EDITOR_COLUMNS.items()})
    sheet["Max CPC"] = sheet["Max CPC"].map(lambda value: f"{value:.2f}")
    return sheet.to_csv(index=False).encode("utf-8")
