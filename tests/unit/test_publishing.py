"""Which partitions may be published, and what a publication changes (plain functions, no Dagster)."""

import csv
import datetime as dt
import io

import numpy as np
import pandas as pd

from daily_bids.serving.publishing import (
    change_summary,
    decide_publication,
    keyword_names,
    ledger,
    write_ads_editor_csv,
)
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

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
    names = pd.DataFrame({"keyword": ["red boots", "tent", "map", "rope"]}, index=[1, 2, 3, 4])
    summary = change_summary(published, names)
    assert (summary["bids_changed"], summary["bids_unchanged"], summary["bids_new"]) == (2, 1, 1)
    assert summary["largest_increase"] == 0.10 and "red boots" in summary["largest_increase_keyword"]
    assert summary["largest_decrease"] == -0.30 and "0.80 → 0.50" in summary["largest_decrease_keyword"]


def test_change_summary_of_a_first_publication_has_no_moves():
    published = pd.DataFrame({"keyword_id": [1, 2], "bid": [1.0, 2.0], "previous_bid": [np.nan, np.nan]})
    summary = change_summary(published)
    assert summary["bids_new"] == 2 and summary["bids_changed"] == 0
    assert summary["largest_increase_keyword"] == "none" and summary["largest_decrease_keyword"] == "none"


# A criterion in two ad groups: the second keyword's platform ID is 2**62 and up (above 2**53, so a float rounds it).
CRITERION, SECOND = 777_000_111, 2**62 + 1


def _bids(**extra) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "keyword_id": np.array([CRITERION, SECOND], dtype="int64"),
            "campaign_id": ["7", "7"],
            "campaign": ["Shoes", "Shoes"],
            "ad_group_id": ["500", "501"],
            "ad_group": ["group 0", "group 1"],
            "keyword": ["red shoes", "red shoes"],
            "match_type": ["Exact", "Exact"],
            "bid": [0.42, 0.91],
            **extra,
        }
    ).astype({"campaign_id": "string", "campaign": "string", "ad_group_id": "string", "ad_group": "string"})


def test_change_summary_names_the_criterion_and_ad_group_not_the_platforms_id(tmp_path):
    store = Warehouse(str(tmp_path / "warehouse"))
    store.write_partition(tables.BIDS, DAY, _bids(criterion_id=pd.array([str(CRITERION)] * 2, dtype="string")))
    published = ledger(_bids(), pd.DataFrame({"keyword_id": [CRITERION, SECOND], "bid": [0.50, 0.61]}))
    summary = change_summary(published, keyword_names(store, tables.BIDS, DAY))
    assert (
        summary["largest_increase_keyword"] == f"keyword {CRITERION} (red shoes) in ad group 501 (group 1): 0.61 → 0.91"
    )
    assert (
        summary["largest_decrease_keyword"] == f"keyword {CRITERION} (red shoes) in ad group 500 (group 0): 0.50 → 0.42"
    )
    # Keyword text alone (no criterion ID to name): the platform's ID, exact.
    text_only = change_summary(published, pd.DataFrame({"keyword": ["red shoes"] * 2}, index=[CRITERION, SECOND]))
    assert text_only["largest_increase_keyword"].startswith(f"keyword {SECOND} (red shoes): ")


def test_bids_written_before_criterion_id_was_kept_still_make_an_ads_editor_file(tmp_path):
    """An old bids partition has no criterion_id (nor status): its keyword_id was Google's criterion ID then."""
    store = Warehouse(str(tmp_path / "warehouse"))
    store.write_partition(tables.BIDS, DAY, _bids())
    write_ads_editor_csv(store, tables.BIDS, DAY, "exports/old.csv", batch_rows=1)
    rows = list(csv.DictReader(io.StringIO(store.read_bytes("exports/old.csv").decode(), newline="")))
    assert [(r["Keyword ID"], r["Ad group ID"], r["Max CPC"]) for r in rows] == [
        (str(CRITERION), "500", "0.42"),
        (str(SECOND), "501", "0.91"),
    ]
    assert keyword_names(store, tables.BIDS, DAY)["criterion_id"].tolist() == [str(CRITERION), str(SECOND)]
    # A partition with criterion_id: Google's ID for both, told apart by their ad group.
    store.write_partition(tables.BIDS, DAY, _bids(criterion_id=pd.array([str(CRITERION)] * 2, dtype="string")))
    write_ads_editor_csv(store, tables.BIDS, DAY, "exports/new.csv")
    rows = list(csv.DictReader(io.StringIO(store.read_bytes("exports/new.csv").decode(), newline="")))
    assert [(r["Keyword ID"], r["Ad group ID"]) for r in rows] == [(str(CRITERION), "500"), (str(CRITERION), "501")]
