"""Which partitions may be published, and what a publication changes (plain functions, no Dagster)."""

import datetime as dt

import numpy as np
import pandas as pd

from daily_bids.serving.publishing import change_summary, decide_publication, ledger

DAY = dt.date(2026, 11, 21)


def test_a_new_day_after_the_published_ones_is_published():
    decision = decide_publication(DAY, [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1)], republish=False)
    assert decision.publish and decision.reason == "published"


def test_a_past_day_is_never_published_even_when_asked():
    for republish in (False, True):
        decision = decide_publication(DAY - dt.timedelta(days=3), [DAY], republish=republish)
        assert not decision.publish
        assert str(DAY) in decision.reason and "never republished" in decision.reason


def test_a_day_already_published_needs_an_explicit_republish():
    assert not decide_publication(DAY, [DAY], republish=False).publish
    again = decide_publication(DAY, [DAY], republish=True)
    assert again.publish and again.reason == "republished on request"


def test_ledger_keeps_the_bid_each_keyword_replaced():
    bids = pd.DataFrame({"keyword_id": [1, 2, 3], "bid": [1.10, 0.50, 2.00]})
    previous = pd.DataFrame({"keyword_id": [1, 2, 9], "bid": [1.00, 0.80, 4.00]})
    published = ledger(bids, previous)
    assert published["previous_bid"].tolist()[:2] == [1.00, 0.80]
    assert np.isnan(published["previous_bid"].iloc[2])  # keyword 3 was never bid before
    assert ledger(bids, None)["previous_bid"].isna().all()


def test_change_summary_counts_and_names_the_largest_moves():
    published = pd.DataFrame(
        {"keyword_id": [1, 2, 3, 4], "bid": [1.10, 0.50, 2.00, 0.70], "previous_bid": [1.00, 0.80, np.nan, 0.70]}
    )
    summary = change_summary(published, pd.Series({1: "red boots", 2: "tent", 3: "map", 4: "rope"}))
    assert (summary["bids_changed"], summary["bids_unchanged"], summary["bids_new"]) == (2, 1, 1)
    assert summary["largest_increase"] == 0.10 and "red boots" in summary["largest_increase_keyword"]
    assert summary["largest_decrease"] == -0.30 and "0.80 → 0.50" in summary["largest_decrease_keyword"]


def test_change_summary_of_a_first_publication_has_no_moves():
    published = pd.DataFrame({"keyword_id": [1, 2], "bid": [1.0, 2.0], "previous_bid": [np.nan, np.nan]})
    summary = change_summary(published)
    assert summary["bids_new"] == 2 and summary["bids_changed"] == 0
    assert summary["largest_increase_keyword"] == "none" and summary["largest_decrease_keyword"] == "none"
