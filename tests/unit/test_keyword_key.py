"""The keyword key: (ad group ID, criterion ID) where a report has ad group IDs, and the keyword's status."""

import csv
import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daily_bids.bidding.decision import decide_bids
from daily_bids.bidding.policy import BidPolicy
from daily_bids.ingest.validation import (
    FIRST_NEW_KEYWORD_ID,
    KeyRegistryError,
    add_to_key_registry,
    assign_keyword_ids,
    check_key_registry,
    empty_key_registry,
    normalize_status,
    validate_report,
)
from daily_bids.quality import expectations as quality
from daily_bids.schema import NOT_REPORTED, conform_raw, empty_raw
from daily_bids.serving.ads_editor import ads_editor_csv
from daily_bids.storage.warehouse import Warehouse

DAY = dt.date(2026, 3, 2)
SHARED = 777_000_111  # one criterion ID in two ad groups


def _assign(groups, criteria, day=DAY, registry=None):
    ids, new = assign_keyword_ids(
        pd.Series(groups, dtype="string"), pd.Series(criteria, dtype="Int64"), pd.Series([day] * len(groups)), registry
    )
    return ids.tolist(), new


def test_one_criterion_in_two_ad_groups_is_two_keywords_and_the_first_keeps_its_id():
    ids, new = _assign(["502", "501", "501"], [SHARED, SHARED, 12])
    # New pairs are taken by ad group ID: 501 keeps the criterion ID, 502 gets the first new ID.
    assert ids == [FIRST_NEW_KEYWORD_ID, SHARED, 12]
    assert sorted(new["keyword_id"]) == [12, SHARED, FIRST_NEW_KEYWORD_ID]
    assert new["keyword_id"].is_unique and not new.duplicated(["ad_group_id", "criterion_id"]).any()


def test_keys_are_stable_across_days_and_never_reused():
    _, day_one = _assign(["501", "502"], [SHARED, SHARED])
    registry = add_to_key_registry(None, day_one)
    # Day two: the same two keywords in the other order, a third ad group with the criterion, and a new keyword
    # whose criterion ID is the first new ID given on day one (it must not take it).
    ids, day_two = _assign(
        ["502", "503", "501", "504"],
        [SHARED, SHARED, SHARED, FIRST_NEW_KEYWORD_ID],
        DAY + dt.timedelta(days=1),
        registry,
    )
    assert ids[0] == FIRST_NEW_KEYWORD_ID and ids[2] == SHARED  # as on day one
    assert ids[1] == FIRST_NEW_KEYWORD_ID + 1 and ids[3] == FIRST_NEW_KEYWORD_ID + 2  # new, never given before
    registry = add_to_key_registry(registry, day_two)
    assert registry["keyword_id"].is_unique and len(registry) == 4
    # A day with only known keywords adds nothing.
    again, none_new = _assign(["504", "501"], [FIRST_NEW_KEYWORD_ID, SHARED], DAY + dt.timedelta(days=2), registry)
    assert again == [FIRST_NEW_KEYWORD_ID + 2, SHARED] and none_new.empty


def test_keys_are_the_same_in_every_run_and_survive_the_warehouse(tmp_path):
    groups, criteria = ["9", "3", "3", "7"], [SHARED, SHARED, 5, SHARED]
    first, new = _assign(groups, criteria)
    assert _assign(groups[::-1], criteria[::-1])[0] == first[::-1]  # row order does not matter
    store = Warehouse(str(tmp_path / "warehouse"))
    store.write_table("_keyword_keys", add_to_key_registry(None, new))
    reread = store.read_table("_keyword_keys")
    again, none_new = _assign(groups, criteria, DAY + dt.timedelta(days=9), reread)
    assert again == first and none_new.empty


def test_a_report_without_ad_group_ids_keeps_the_criterion_id_and_registers_nothing():
    ids, new = _assign([None, None], [SHARED, 5])
    assert ids == [SHARED, 5] and new.empty


def test_a_registry_that_would_give_one_id_twice_is_refused_naming_the_rows():
    _, new = _assign(["1", "2"], [SHARED, SHARED])
    registry = add_to_key_registry(None, new)
    broken = pd.concat([registry, registry.assign(ad_group_id="3").iloc[:1]], ignore_index=True)
    with pytest.raises(KeyRegistryError, match="keyword_id more than one pair"):
        check_key_registry(broken)
    # Another run gave the same pair an ID meanwhile: refused rather than silently written twice.
    with pytest.raises(KeyRegistryError, match="another run"):
        add_to_key_registry(registry, new)


# Small ranges, so that drawn registries often repeat a pair or an ID, and as often do not.
_REGISTRY_ROWS = st.lists(
    st.tuples(st.sampled_from(["1", "2", "3"]), st.integers(1, 6), st.integers(1, 12)), min_size=0, max_size=12
)


def _registry(rows) -> pd.DataFrame:
    groups, criteria, ids = zip(*rows) if rows else ((), (), ())
    return pd.DataFrame(
        {"ad_group_id": list(groups), "criterion_id": list(criteria), "keyword_id": list(ids), "first_day": DAY}
    ).astype(empty_key_registry().dtypes.to_dict())


@settings(max_examples=300, deadline=None)
@given(_REGISTRY_ROWS)
def test_the_registry_check_refuses_exactly_the_registries_that_repeat_a_pair_or_an_id(rows):
    registry = _registry(rows)
    repeats = registry.duplicated(["ad_group_id", "criterion_id"]).any() or registry["keyword_id"].duplicated().any()
    if repeats:
        with pytest.raises(KeyRegistryError, match="more than one"):
            check_key_registry(registry)
    else:
        pd.testing.assert_frame_equal(check_key_registry(registry), registry)


@settings(max_examples=300, deadline=None)
@given(_REGISTRY_ROWS, _REGISTRY_ROWS)
def test_new_keys_are_added_exactly_when_the_whole_would_pass_the_check(old_rows, new_rows):
    current, new_keys = _registry(old_rows), _registry(new_rows)
    try:
        current = check_key_registry(current)
    except KeyRegistryError:
        return  # the registry is read checked: only a valid one is ever added to
    whole = pd.concat([current, new_keys], ignore_index=True)
    whole_repeats = whole.duplicated(["ad_group_id", "criterion_id"]).any() or whole["keyword_id"].duplicated().any()
    if whole_repeats:
        with pytest.raises(KeyRegistryError):
            add_to_key_registry(current, new_keys)
    else:
        pd.testing.assert_frame_equal(add_to_key_registry(current, new_keys), whole)


def test_statuses_of_the_api_and_the_ui_read_as_three():
    spellings = ["ENABLED", "Enabled", "Eligible", "Below first page bid", "PAUSED", "Paused", "Campaign paused",
                 "Ad group paused", "REMOVED", "Removed", "Campaign removed", None]  # fmt: skip
    expected = ["Enabled"] * 4 + ["Paused"] * 4 + ["Removed"] * 3 + [None]
    got = normalize_status(pd.Series(spellings, dtype="string"))
    assert [None if v is pd.NA else v for v in got] == expected


def _raw(rows: list[dict]) -> pd.DataFrame:
    base = {"date": pd.Timestamp(DAY), "keyword": "kw", "campaign": "c", "ad_group": "g", "campaign_id": "1",
            "match_type": "Exact", "impressions": 100.0, "clicks": 5.0, "cost": 2.0, "conversions": 1.0,
            "conversion_value": 40.0, "source_file": "export.csv", "parse_errors": pd.NA}  # fmt: skip
    frame = pd.DataFrame([{**base, "source_row": n, **row} for n, row in enumerate(rows, start=2)])
    return pd.concat([empty_raw(), frame], ignore_index=True)


def test_validation_keeps_a_row_per_ad_group_and_still_quarantines_a_true_duplicate():
    raw = _raw(
        [
            {"keyword_id": SHARED, "ad_group_id": "501", "ad_group": "a", "clicks": 3.0, "status": "Enabled"},
            {"keyword_id": SHARED, "ad_group_id": "502", "ad_group": "b", "clicks": 4.0, "status": "Campaign paused"},
            {"keyword_id": SHARED, "ad_group_id": "502", "ad_group": "b", "clicks": 5.0, "status": "Paused"},
            {"keyword_id": 5, "ad_group_id": pd.NA, "status": pd.NA},
        ]
    )
    result = validate_report(raw, [DAY])
    assert list(result.quarantine["reason"]) == ["duplicate_superseded"]
    assert result.quarantine["source_row"].tolist() == [3]  # the earlier row of ad group 502; the later one is kept
    valid = result.valid.set_index("keyword_id")
    assert valid.loc[SHARED, ["ad_group_id", "criterion_id", "clicks", "status"]].tolist() == ["501", str(SHARED), 3,
                                                                                                "Enabled"]  # fmt: skip
    other = valid.loc[FIRST_NEW_KEYWORD_ID]
    assert (other["ad_group_id"], other["criterion_id"], other["clicks"], other["status"]) == (
        "502",
        str(SHARED),
        5,
        "Paused",
    )
    assert (valid.loc[5, "criterion_id"], valid.loc[5, "status"]) == ("5", NOT_REPORTED)
    assert sorted(result.new_keys["keyword_id"]) == [SHARED, FIRST_NEW_KEYWORD_ID]
    # The outlier rule reads each keyword's own history, by its keyword ID.
    history = pd.DataFrame({"keyword_id": [SHARED, FIRST_NEW_KEYWORD_ID], "impressions": [1e6] * 2, "clicks": [1.0, 1e6],
                            "cost": [1e6] * 2, "conversions": [1e6] * 2, "conversion_value": [1e6] * 2})  # fmt: skip
    registry = add_to_key_registry(None, result.new_keys)
    raw.loc[0, "clicks"] = raw.loc[1, "clicks"] = raw.loc[2, "clicks"] = 20_000.0
    raw[["impressions"]] = 50_000.0
    judged = validate_report(raw, [DAY], trailing_totals=history, key_registry=registry)
    assert judged.quarantine.set_index("source_row")["reason"].to_dict() == {
        2: "outlier_vs_history",  # ad group 501's keyword had 1 click in 28 days
        3: "duplicate_superseded",
    }
    assert judged.new_keys.empty


def _predictions(statuses: list[str]) -> pd.DataFrame:
    n = len(statuses)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(DAY),
            "effective_date": pd.Timestamp(DAY + dt.timedelta(days=1)),
            "keyword_id": np.arange(1, n + 1),
            "criterion_id": [str(SHARED)] * n,
            "campaign": "c",
            "ad_group": [f"group {i}" for i in range(n)],
            "campaign_id": "31",
            "ad_group_id": [str(500 + i) for i in range(n)],
            "keyword": "red shoes",
            "match_type": "Exact",
            "status": statuses,
            "expected_clicks": 2.0,
            "expected_value_per_click": 1.0,
            "prior_value_per_click": 1.0,
            "history_days": 28,
            "model_version": "xgb-test",
        }
    )


def test_paused_and_removed_keywords_are_neither_bid_nor_explored():
    statuses = ["Enabled", "Paused", "Removed", NOT_REPORTED] * 10
    predictions = _predictions(statuses)
    in_force = pd.DataFrame({"keyword_id": predictions["keyword_id"], "bid_in_force": 0.5})
    decision = decide_bids(predictions, BidPolicy(policy="fixed_margin", exploration_share=0.5), context=in_force)
    biddable = predictions.loc[~predictions["status"].isin(["Paused", "Removed"]), "keyword_id"]
    assert decision.bids["keyword_id"].tolist() == biddable.tolist()
    assert decision.bids["exploration"].any()  # exploring is on, for the keywords that are bid
    assert decision.unprofitable.empty  # not "unprofitable": not bid at all


def test_the_ads_editor_file_names_googles_keyword_and_its_ad_group():
    bids = decide_bids(_predictions(["Enabled", "Enabled"]), BidPolicy(policy="fixed_margin")).bids
    rows = list(csv.DictReader(io.StringIO(ads_editor_csv(bids).decode(), newline="")))
    assert [(r["Keyword ID"], r["Ad group ID"], r["Ad group"]) for r in rows] == [
        (str(SHARED), "500", "group 0"),
        (str(SHARED), "501", "group 1"),
    ]


def test_the_raw_report_is_unique_per_ad_group_and_criterion_and_the_validated_one_per_keyword_id():
    rows = [
        {"keyword_id": SHARED, "ad_group_id": "501", "status": "Enabled"},
        {"keyword_id": SHARED, "ad_group_id": "502", "status": "Enabled"},
        {"keyword_id": 5, "ad_group_id": pd.NA, "status": pd.NA},
    ]

    def unique_rule(layer: str, frame: pd.DataFrame):
        (rule,) = [e for e in quality.report_suite(layer, [DAY]) if e.kind == "ExpectCompoundColumnsToBeUnique"]
        return quality.run_expectations(frame, [rule], f"{layer}_unique")[0]

    # One criterion in two ad groups is two keywords, not a duplicate.
    assert unique_rule("raw", conform_raw(_raw(rows))).success
    # The same ad group's criterion twice is; so is a criterion twice among rows without an ad group ID.
    repeated = unique_rule("raw", conform_raw(_raw([*rows, rows[1], rows[2]])))
    assert not repeated.success and repeated.unexpected_count == 4
    # The validated report has criterion_id and status in the contract's types, and one row per keyword_id.
    valid = validate_report(_raw(rows), [DAY]).valid
    assert quality.dtype_mismatches(valid, quality.layer_dtypes("validated")) == {}
    assert unique_rule("validated", valid).success
