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

import csv
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from daily_bids.schema import DIMENSION_COLUMNS, NOT_REPORTED

BID_COLUMNS: tuple[str, ...] = (
    "date", "effective_date", "keyword_id", *DIMENSION_COLUMNS,
    "bid", "expected_clicks", "expected_value_per_click", "bid_basis", "model_version",
)
# Google Ads Editor's columns for a keyword bid change, and the bid table's column each one is taken from. The IDs
# are what match the change to the keyword (a report without names is still applied by them); the names are there
# for people reading the file, and empty where the report had none.
ADS_EDITOR_COLUMNS: dict[str, str] = {
    "Keyword ID": "keyword_id", "Campaign ID": "campaign_id", "Campaign": "campaign", "Ad group ID": "ad_group_id",
    "Ad group": "ad_group", "Keyword": "keyword", "Match type": "match_type", "Max CPC": "bid",
}
# A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV-injection list, tab and CR included,
# since spreadsheets strip them and then read what follows).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


class BidPolicy(BaseModel):
    """Margin and caps. Also the `keyword_bids` asset's run configuration."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)  # inf and nan are never a setting

    target_margin: float = Field(0.3, gt=0.0, lt=1.0, description="Share of the expected value per click kept as margin.")
    min_bid: float = Field(0.05, gt=0.0, description="Lowest max CPC the ad platform accepts.")
    max_bid: float = Field(20.0, gt=0.0, description="Highest max CPC the platform will ever set.")
    min_history_days: int = Field(7, ge=1, le=28, description="Days of history below which a keyword is a cold start.")
    cold_start_margin: float = Field(0.5, gt=0.0, lt=1.0, description="Margin for cold-start keywords (wider: less known).")
    value_per_click: float | None = Field(
        None, gt=0.0, description="Value of a click, for reports without conversion value (impressions and clicks only)."
    )
    max_daily_change: float = Field(0.5, gt=0.0, description="A bid that moves by more than this share of yesterday's "
                                                           "bid counts as a large move.")
    max_share_large_moves: float = Field(0.25, gt=0.0, le=1.0, description="The share of keywords with a large move "
                                         "above which the day's bids are implausible and are not published.")

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


def bid_rule_note(bids: pd.DataFrame, policy: BidPolicy) -> str:
    """What decided the day's bids, in a sentence; says plainly why bids are flat when they come from one configured
    value per click."""
    basis = bids["bid_basis"].value_counts()
    configured = int(basis.get("configured_value", 0))
    if configured and configured == len(bids) - int(basis.get("cold_start", 0)):
        flat = np.floor(np.round(policy.value_per_click * (1.0 - policy.target_margin) * 100.0, 6)) / 100.0
        return (f"the reports carry no conversion value, so every click is valued at value_per_click "
                f"(BIDS_VALUE_PER_CLICK) {policy.value_per_click:.2f}, and every keyword with history bids the same "
                f"{flat:.2f} = {policy.value_per_click:.2f} x (1 - {policy.target_margin:g})")
    return (f"each keyword's predicted value per click x (1 - {policy.target_margin:g}), rounded down to the cent; "
            f"keywords with under {policy.min_history_days} days of history from their cluster's, x (1 - "
            f"{max(policy.cold_start_margin, policy.target_margin):g})")


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
    joined = bids[["keyword_id", "bid"]].merge(previous[["keyword_id", "bid"]].rename(columns={"bid": "previous_bid"}),
                                               on="keyword_id")
    joined["change"] = joined["bid"] / joined["previous_bid"] - 1.0
    large = joined[~(joined["change"].abs() <= policy.max_daily_change)]  # NaN or inf moves count as large
    large = large.reindex(large["change"].abs().sort_values(ascending=False).index)
    return BidMoves(len(joined), large.reset_index(drop=True)[["keyword_id", "previous_bid", "bid", "change"]],
                    len(large) / len(joined) if len(joined) else 0.0)


def ads_editor_csv(bids: pd.DataFrame) -> bytes:
    """The bids in the layout Google Ads Editor imports as keyword bid changes.

    Text is written as reported, every field quoted (so commas, quotes, line breaks and Unicode line separators stay
    inside their field), except that text a spreadsheet would run as a formula gets a leading apostrophe, the way
    spreadsheet tools mark a cell as text. A name the report did not carry is an empty field, never a marker."""
    sheet = pd.DataFrame({header: bids[column].to_numpy() for header, column in ADS_EDITOR_COLUMNS.items()})
    for header, column in ADS_EDITOR_COLUMNS.items():
        if column in DIMENSION_COLUMNS:  # text as the report had it
            sheet[header] = sheet[header].map(neutralize_formula)
    sheet["Keyword ID"] = sheet["Keyword ID"].map(lambda value: str(int(value)))
    sheet["Max CPC"] = sheet["Max CPC"].map(lambda value: f"{value:.2f}")
    return sheet.to_csv(index=False, quoting=csv.QUOTE_ALL, lineterminator="\r\n").encode("utf-8")


def neutralize_formula(value) -> str:
    """`value` as spreadsheet-safe text: empty for a null or the not-reported marker, `'` before a formula lead."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == NOT_REPORTED:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_LEADS) else text
