"""The bidding math of a Google Ads publication, without the API: micros in the billable unit, and the plan."""

from decimal import Decimal

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from daily_bids.google_ads.bids import NOT_SENT, Publication, bid_micros, plan_changes

YEN, CENT = 1_000_000, 10_000


@given(
    st.lists(st.decimals(min_value=0, max_value=100_000, places=6, allow_nan=False), min_size=1, max_size=50),
    st.sampled_from([CENT, YEN, 10 * YEN]),
)
def test_micros_are_whole_units_never_above_the_bid_and_less_than_a_unit_below(amounts, unit):
    micros = bid_micros(pd.Series([float(amount) for amount in amounts]), unit)
    for amount, sent in zip(amounts, micros.tolist(), strict=True):
        exact = Decimal(amount) * 1_000_000
        assert sent % unit == 0
        assert sent <= exact < sent + unit


def test_the_plan_sends_only_changed_bids_of_keywords_the_account_has_and_names_the_rest():
    account = pd.DataFrame(
        {
            "ad_group_id": ["1", "1", "2", "2"],
            "criterion_id": ["10", "11", "10", "12"],
            "status": ["ENABLED", "ENABLED", "ENABLED", "REMOVED"],
            "cpc_bid_micros": [120 * YEN, 95 * YEN, 80 * YEN, 40 * YEN],
        }
    ).astype({"ad_group_id": "string", "criterion_id": "string", "status": "string", "cpc_bid_micros": "Int64"})
    bids = pd.DataFrame(
        {
            "keyword_id": [1, 2, 3, 4, 5],
            "ad_group_id": ["1", "1", "2", "2", "9"],
            "criterion_id": ["10", "11", "10", "12", "99"],
            "bid": [120.0, 99.7, 70.0, 50.0, 10.0],  # unchanged, up (rounded down), down, removed, unknown
        }
    )
    plan = plan_changes(bids, account, Publication(customer_id="123-456-7890", billable_unit_micros=YEN))
    rows = plan.set_index("keyword_id")
    assert sorted(rows.index) == [2, 3, 4, 5]  # the unchanged bid is not sent
    assert rows.loc[2, "bid_micros"] == 99 * YEN and rows.loc[2, "previous_bid_micros"] == 95 * YEN
    assert rows.loc[3, "resource_name"] == "customers/1234567890/adGroupCriteria/2~10"
    assert pd.isna(rows.loc[2, "outcome"]) and pd.isna(rows.loc[3, "outcome"])  # to be sent
    assert rows.loc[4, "outcome"] == NOT_SENT and "removed" in rows.loc[4, "error"]
    assert rows.loc[5, "outcome"] == NOT_SENT and "no such keyword" in rows.loc[5, "error"]
