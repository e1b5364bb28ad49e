"""Stored raw reports as hostile as validation meets: to hold validation in keyword shards, on either engine, to the
tables `validate_report` gives for the whole range."""

import datetime as dt

import numpy as np
import pandas as pd

from daily_bids.ingest.stored_validation import StoredValidation, trailing_totals
from daily_bids.ingest.validation import (
    FIRST_NEW_KEYWORD_ID,
    Plausibility,
    ValidatedReport,
    add_to_key_registry,
    validate_report,
)
from daily_bids.schema import METRIC_COLUMNS, conform_raw
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

DAYS = [dt.date(2026, 5, 1), dt.date(2026, 5, 2)]


def hostile_day(day: dt.date, rows: int, seed: int, shuffled: bool) -> pd.DataFrame:
    """A day with every kind of row validation has to judge: criteria shared by ad groups, rows without an ad
    group, restatements, missing and impossible numbers, criterion IDs past 2**62, and no cost reported at all."""
    rng = np.random.default_rng(seed)
    criteria = rng.integers(1, 400, rows).astype("float64")
    past_2_62 = rng.random(rows) < 0.03  # a float holds these IDs in steps of 1024
    criteria[past_2_62] = FIRST_NEW_KEYWORD_ID + 1024.0 * rng.integers(0, 5, int(past_2_62.sum()))
    ad_groups = pd.array(rng.integers(1, 4, rows).astype(str), dtype="string")
    ad_groups[rng.random(rows) < 0.1] = pd.NA
    impressions = rng.integers(0, 500, rows).astype("float64")
    clicks = np.minimum(impressions, rng.integers(0, 40, rows)).astype("float64")
    frame = pd.DataFrame(
        {
            "keyword_id": pd.array(criteria, dtype="Float64"),
            "keyword": "kw",
            "campaign": "c",
            "ad_group": pd.array(np.where(rng.random(rows) < 0.05, None, "g"), dtype="string"),
            "ad_group_id": ad_groups,
            "match_type": rng.choice(["Exact", "exact match", "PHRASE", "Broadish"], rows, p=[0.5, 0.3, 0.18, 0.02]),
            "status": rng.choice(["ENABLED", "Paused", None], rows),
            "impressions": impressions,
            "clicks": clicks,
            "conversions": np.minimum(clicks, rng.integers(0, 3, rows)).astype("float64"),
            "conversion_value": rng.gamma(2.0, 30.0, rows),
            "max_cpc": rng.uniform(0.1, 2.0, rows),
            "source_file": f"{day}.csv",
            "source_row": np.arange(2, rows + 2),
            "parse_errors": None,
        }
    )
    broken = rng.choice(rows, 12, replace=False)
    frame.loc[broken[0:2], "keyword_id"] = pd.NA
    frame.loc[broken[2], "keyword_id"] = np.inf
    frame.loc[broken[3], "keyword_id"] = -4.0
    frame.loc[broken[4], "clicks"] = 1e12
    frame.loc[broken[5], "impressions"] = pd.NA
    frame.loc[broken[6], "parse_errors"] = "clicks: 'many'"
    frame.loc[broken[7], "conversion_value"] = -1.0
    frame.loc[broken[8:], "clicks"] = frame.loc[broken[8:], "impressions"] + 1
    if day == DAYS[0]:  # cost reported on the second day only: not reported, so not missing, on the first
        frame["cost"] = np.nan
    else:
        frame["cost"] = rng.uniform(0, 20, rows)
        frame.loc[broken[5:7], "cost"] = np.nan  # missing where the day reports cost
    frame = pd.concat([frame, frame.sample(rows // 10, random_state=seed)], ignore_index=True)  # restatements
    if shuffled:
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    else:
        frame = frame.sort_values("keyword_id", kind="stable", na_position="last").reset_index(drop=True)
        frame = frame[frame["keyword_id"].notna() & np.isfinite(frame["keyword_id"].astype("float64"))]
    return conform_raw(frame.assign(date=pd.Timestamp(day)))


def seen_pairs() -> pd.DataFrame:
    """Pairs met before: some of the shared criteria's ad groups, one with an ID of 2**62 and up."""
    rows = pd.DataFrame(
        {
            "ad_group_id": pd.array(["1", "2", "3", "2"], dtype="string"),
            "criterion_id": [7, 7, 300, FIRST_NEW_KEYWORD_ID + 1024],
            "keyword_id": [7, FIRST_NEW_KEYWORD_ID + 10, 300, FIRST_NEW_KEYWORD_ID + 1024],
            "first_day": pd.Timestamp("2026-04-01"),
        }
    )
    return add_to_key_registry(None, rows)


def store_hostile_range(store: Warehouse, shuffled: bool, rows: int = 900) -> None:
    """`DAYS` of hostile raw rows in `store`, the key registry's pairs met before (`seen_pairs`), and the features'
    rolling state of the day before: the outlier rule's history, as the step reads it."""
    store.write_table(tables.KEYWORD_KEYS, seen_pairs())
    raw = pd.concat([hostile_day(day, rows, n, shuffled) for n, day in enumerate(DAYS)], ignore_index=True)
    store.write_partitions(tables.RAW_REPORT, DAYS, raw)
    state = pd.DataFrame({"keyword_id": np.arange(1, 400), **{f"{m}_sum_28d": 40.0 for m in METRIC_COLUMNS}})
    store.write_partition(tables.FEATURE_STATE, DAYS[0] - dt.timedelta(days=1), state)


def validated_whole(store: Warehouse) -> ValidatedReport:
    """`validate_report` of the stored range, read whole, with the stored registry and history."""
    history = trailing_totals(store, DAYS[0] - dt.timedelta(days=1))
    raw = store.read_partitions(tables.RAW_REPORT, DAYS)
    return validate_report(raw, DAYS, Plausibility.from_contract(), history, store.read_table(tables.KEYWORD_KEYS))


def assert_the_tables_of_the_whole_range(store: Warehouse, sharded: StoredValidation, whole: ValidatedReport) -> None:
    pd.testing.assert_frame_equal(store.read_partitions(tables.VALIDATED_REPORT, DAYS), whole.valid)
    pd.testing.assert_frame_equal(store.read_partitions(tables.QUARANTINE, DAYS), whole.quarantine)
    pd.testing.assert_frame_equal(sharded.new_keys, whole.new_keys)
    assert sharded.unreported_metrics == whole.unreported_metrics
    assert sharded.reasons == whole.quarantine["reason"].value_counts().to_dict()
    assert (sharded.valid_rows, sharded.keywords) == (len(whole.valid), whole.valid["keyword_id"].nunique())
    # The range is as hostile as it means to be: rows of many reasons, and new keywords numbered past 2**62.
    assert set(whole.quarantine["reason"]) >= {"missing_value", "out_of_range", "duplicate_superseded"}
    assert (whole.new_keys["keyword_id"] >= FIRST_NEW_KEYWORD_ID).sum() >= 3
