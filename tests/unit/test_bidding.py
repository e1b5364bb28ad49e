"""Property checks of the bidding math."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from daily_bids.bidding.decision import BID_COLUMNS, decide_bids
from daily_bids.bidding.policy import BidPolicy
from daily_bids.serving.ads_editor import ADS_EDITOR_COLUMNS, ads_editor_csv

money = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)
policies = st.builds(
    lambda margin, cold, low, span, history: BidPolicy(
        target_margin=margin, cold_start_margin=cold, min_bid=low, max_bid=low + span, min_history_days=history
    ),
    st.floats(0.01, 0.95),
    st.floats(0.01, 0.95),
    st.integers(1, 200).map(lambda cents: cents / 100),  # caps are whole cents: USD's bid increment
    st.integers(0, 5000).map(lambda cents: cents / 100),
    st.integers(1, 28),
)


def compute_bids(predictions: pd.DataFrame, policy: BidPolicy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bids, unprofitable) by the fixed margin without exploration: the rule every other policy falls back to."""
    decision = decide_bids(predictions, policy.model_copy(update={"policy": "fixed_margin", "exploration_share": 0.0}))
    return decision.bids, decision.unprofitable


def _predictions(values, priors, history):
    n = len(values)
    return pd.DataFrame(
        {
            "date": pd.Timestamp("2025-03-01"),
            "effective_date": pd.Timestamp("2025-03-02"),
            "keyword_id": np.arange(n),
            "campaign": "c",
            "ad_group": "g",
            "campaign_id": "31",
            "ad_group_id": "32",
            "keyword": [f"k{i}" for i in range(n)],
            "match_type": "Exact",
            "expected_clicks": 1.0,
            "expected_value_per_click": values,
            "prior_value_per_click": priors,
            "history_days": history,
            "model_version": "xgb-test",
        }
    )


@settings(max_examples=300, deadline=None)
@given(policy=policies, rows=st.lists(st.tuples(money, money, st.integers(1, 28)), min_size=1, max_size=40))
def test_every_bid_is_below_value_per_click_and_within_caps(policy, rows):
    values, priors, history = map(list, zip(*rows))
    bids, unprofitable = compute_bids(_predictions(values, priors, history), policy)
    assert (bids["bid"] < bids["expected_value_per_click"]).all()
    assert bids["bid"].between(policy.min_bid, policy.max_bid).all()
    assert len(bids) + len(unprofitable) == len(rows)  # every keyword is either bid or listed as unprofitable
    assert list(bids.columns) == list(BID_COLUMNS)


@settings(max_examples=200, deadline=None)
@given(policy=policies, value=st.floats(0.5, 500.0), history=st.integers(1, 28))
def test_bid_keeps_at_least_the_margin_of_its_basis(policy, value, history):
    bids, _ = compute_bids(_predictions([value], [value], [history]), policy)
    margin = (
        policy.target_margin
        if history >= policy.min_history_days
        else max(policy.target_margin, policy.cold_start_margin)
    )
    if len(bids):
        assert bids["bid"].iloc[0] <= value * (1 - margin) + 1e-9


def test_cold_start_keywords_bid_from_the_ad_group_with_the_wider_margin():
    policy = BidPolicy(target_margin=0.2, cold_start_margin=0.5, min_history_days=7)
    bids, _ = compute_bids(_predictions([4.0, 4.0], [2.0, 2.0], [28, 3]), policy)
    established, cold = bids.iloc[0], bids.iloc[1]
    assert (established["bid_basis"], established["bid"]) == ("fixed_margin", 3.2)
    assert (cold["bid_basis"], cold["bid"], cold["expected_value_per_click"]) == ("cold_start", 1.0, 2.0)


def test_keywords_whose_minimum_bid_would_lose_money_get_no_bid():
    policy = BidPolicy(target_margin=0.3, min_bid=0.10)
    bids, unprofitable = compute_bids(_predictions([0.12, 1.0], [0.12, 1.0], [28, 28]), policy)
    assert list(bids["keyword_id"]) == [1]
    assert list(unprofitable["keyword_id"]) == [0]


def test_bids_are_capped_at_max_bid():
    bids, _ = compute_bids(_predictions([1000.0], [1000.0], [28]), BidPolicy(max_bid=20.0))
    assert bids["bid"].iloc[0] == 20.0


@pytest.mark.parametrize("bad", [{"target_margin": 0.0}, {"target_margin": 1.0}, {"min_bid": 5.0, "max_bid": 1.0}])
def test_policy_rejects_margins_and_caps_that_cannot_keep_bids_below_value(bad):
    with pytest.raises(ValidationError):
        BidPolicy(**bad)


def test_ads_editor_csv_layout():
    bids, _ = compute_bids(_predictions([2.0], [2.0], [28]), BidPolicy(target_margin=0.25))
    text = ads_editor_csv(bids).decode()
    assert text.splitlines() == [
        ",".join(f'"{header}"' for header in ADS_EDITOR_COLUMNS),
        '"0","31","c","32","g","k0","Exact","1.50"',
    ]


def test_an_ads_editor_csv_written_in_batches_is_the_whole_sheet():
    bids, _ = compute_bids(_predictions([2.0, 3.0, 4.0, 5.0, 6.0], [2.0] * 5, [28] * 5), BidPolicy())
    pieces = [ads_editor_csv(bids.iloc[start : start + 2], with_header=start == 0) for start in range(0, len(bids), 2)]
    assert b"".join(pieces) == ads_editor_csv(bids)
    assert len(b"".join(pieces).decode().splitlines()) == 1 + len(bids)


def test_cold_start_keywords_bid_from_their_cluster_when_they_have_one():
    policy = BidPolicy(target_margin=0.2, cold_start_margin=0.5, min_history_days=7)
    predictions = _predictions([4.0, 4.0], [2.0, 2.0], [3, 3]).assign(cluster_value_per_click=[3.0, np.nan])
    bids, _ = compute_bids(predictions, policy)
    assert list(bids["expected_value_per_click"]) == [3.0, 2.0]  # the cluster's prior, else the ad group's
    assert list(bids["bid"]) == [1.5, 1.0]


def test_bid_moves_compare_with_the_bids_in_force_the_report_first_then_our_last_published(tmp_path):
    """The first publication moves against the advertiser's bids (the report's max CPC), which we never published;
    a keyword the report does not show is compared with the bid we published last. The money rule cutting the
    advertiser's bids does not count as a large move; cutting our own does."""
    import datetime as dt

    from daily_bids.bidding.moves import bid_moves
    from daily_bids.serving.publishing import bids_in_force_on
    from daily_bids.storage import tables
    from daily_bids.storage.warehouse import Warehouse

    day = dt.date(2025, 3, 1)
    store = Warehouse(str(tmp_path / "warehouse"))
    policy = BidPolicy(max_daily_change=0.5, max_share_large_moves=0.25)
    todays = pd.DataFrame(
        {"keyword_id": [1, 2, 3, 4, 5], "bid": [2.2, 0.9, 1.0, 0.5, 0.3], "lowered_to_ceiling": [False] * 4 + [True]}
    )
    # Nothing known: nothing to compare with.
    in_force, named = bids_in_force_on(store, day)
    assert bid_moves(todays, in_force, policy).compared == 0 and named.startswith("nothing")
    # Day one: the advertiser's bids. Keyword 1 was bid 0.05 and rises 44-fold, 2 falls by more than half; the
    # money rule cut 5 from 3.0, which is not counted.
    report = pd.DataFrame({"date": pd.Timestamp(day), "keyword_id": [1, 2, 3, 5], "max_cpc": [0.05, 2.0, np.nan, 3.0]})
    store.write_partition(tables.VALIDATED_REPORT, day, report)
    in_force, named = bids_in_force_on(store, day)
    moves = bid_moves(todays, in_force, policy)
    assert (moves.compared, list(moves.large["keyword_id"]), moves.share_large) == (3, [1, 2], 2 / 3)
    assert list(moves.advertiser_bids_cut["keyword_id"]) == [5] and moves.implausible(policy)
    assert moves.large["change"].iloc[0] == pytest.approx(43.0) and named == f"the max CPC of the {day} report"
    # Our bids published for the day stand in where the report has no max CPC, and the report still wins; a cut of
    # our own bid (5 was ours: the report shows what we published) counts.
    published = pd.DataFrame({"keyword_id": [1, 3, 4, 5], "bid": [9.9, 1.1, 0.45, 3.0], "previous_bid": np.nan})
    store.write_partition(tables.PUBLISHED_BIDS, day - dt.timedelta(days=1), published)
    in_force, named = bids_in_force_on(store, day)
    assert in_force.set_index("keyword_id")["bid"].to_dict() == {1: 0.05, 2: 2.0, 3: 1.1, 4: 0.45, 5: 3.0}
    assert list(in_force.set_index("keyword_id")["ours"]) == [False, False, True, True, True]
    assert named == f"the max CPC of the {day} report else the bids published for {day}"
    moves = bid_moves(todays, in_force, policy)
    assert moves.compared == 5 and list(moves.large["keyword_id"]) == [1, 5, 2] and moves.share_large == 3 / 5
    assert moves.advertiser_bids_cut.empty


def test_a_keyword_missing_from_todays_report_has_the_bid_we_published_last_in_force():
    """bid_context carries a keyword's last max CPC forward over days without a row; the bid we published since is
    the one the ad platform has, and the change cap must start from it."""
    from daily_bids.bidding.moves import with_todays_bids_in_force

    context = pd.DataFrame({"keyword_id": [1, 2, 3], "bid_in_force": [0.70, 1.00, 2.00], "reference_bid": 0.5})
    reported = pd.DataFrame({"keyword_id": [2], "max_cpc": [1.10]})  # only keyword 2 had a row today
    published = pd.DataFrame({"keyword_id": [1, 2], "bid": [0.26, 0.95]})
    today = with_todays_bids_in_force(context, reported, published)
    assert list(today["bid_in_force"]) == [0.26, 1.10, 2.00]  # ours; the report's; the reports' last, unknown else
    assert list(today["reference_bid"]) == [0.5] * 3  # the landscape's inputs stay as the reports give them
    assert list(with_todays_bids_in_force(context, None, None)["bid_in_force"]) == [0.70, 1.00, 2.00]
