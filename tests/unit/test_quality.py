"""The great-expectations adapter judges a table batch by batch exactly as it judges it whole; volume and drift read
each trailing day once for a whole range and judge each day as they would alone."""

import datetime as dt
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import daily_bids.progress
from daily_bids.quality import expectations as quality
from daily_bids.quality.quarantine_share import quarantined_share
from daily_bids.storage.warehouse import Warehouse

SUITE = [
    quality.unique_keys(),
    quality.not_null("clicks"),
    quality.at_least("clicks", 0),
    quality.between("history_days", 1, 28),
]


def _table() -> pd.DataFrame:
    rows = 1_000
    table = pd.DataFrame(
        {
            "date": pd.Timestamp("2025-03-01"),
            "keyword_id": np.arange(rows),
            "clicks": np.arange(rows, dtype="float64"),
            "history_days": 7,
        }
    )
    table.loc[[10, 620], "clicks"] = np.nan  # a null in two different batches
    table.loc[[400, 401, 999], "clicks"] = -1.0
    table.loc[5, "history_days"] = 40
    table.loc[900, "keyword_id"] = 3  # a duplicate of a row in the first batch: only the batches together show it
    return table


def test_batches_give_the_outcomes_of_the_whole_table():
    table = _table()
    whole = quality.run_expectations(table, SUITE, "whole")
    batched = quality.run_expectations_in_batches(
        (table.iloc[i : i + 300] for i in range(0, len(table), 300)), SUITE, "batched"
    )
    assert [o.success for o in batched] == [o.success for o in whole] == [False, False, False, False]
    assert [o.unexpected_count for o in batched] == [o.unexpected_count for o in whole] == [2, 2, 3, 1]
    assert batched == whole  # field for field: percents, samples and rows judged too
    # Samples name the failing rows, from whichever batch they were in.
    assert sorted(row["keyword_id"] for row in batched[2].sample) == [400, 401, 999]
    assert sorted(row["keyword_id"] for row in batched[0].sample) == [3, 3]


def test_a_batch_is_judged_without_hashing_its_rows(monkeypatch):
    """great-expectations fingerprints a frame by hashing every row, a quarter of a large check's time: not here."""

    def refuse(*args, **kwargs):
        raise AssertionError("a batch's rows were hashed")

    monkeypatch.setattr(pd.util, "hash_pandas_object", refuse)
    table = _table()
    batched = quality.run_expectations_in_batches((table.iloc[:500], table.iloc[500:]), SUITE, "unhashed")
    assert [o.unexpected_count for o in batched] == [2, 2, 3, 1]
    assert not any(o.error for o in batched)


def test_a_percent_over_batches_is_the_float_of_the_table_judged_whole():
    """1 of 3 rows: 1 / 3 * 100 (great-expectations' arithmetic) and 100 / 3 differ in the last bit."""
    table = pd.DataFrame({"date": pd.Timestamp("2025-03-01"), "keyword_id": [1, 2, 3], "clicks": [-1.0, 1.0, 2.0]})
    rule = [quality.at_least("clicks", 0)]
    whole = quality.run_expectations(table, rule, "whole")
    batched = quality.run_expectations_in_batches([table.iloc[:1], table.iloc[1:]], rule, "batched")
    assert whole[0].unexpected_percent == 1 / 3 * 100 != 100 / 3
    assert batched == whole


def test_batches_log_the_rows_checked_of_the_whole_and_the_time_left(monkeypatch):
    monkeypatch.setattr(daily_bids.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    table, lines = _table(), []
    quiet = quality.run_expectations_in_batches(
        (table.iloc[i : i + 300] for i in range(0, len(table), 300)), SUITE, "quiet"
    )
    logged = quality.run_expectations_in_batches(
        (table.iloc[i : i + 300] for i in range(0, len(table), 300)), SUITE, "raw", lines.append, len(table)
    )
    assert len(lines) == -(-len(table) // 300) - 1  # a line a batch, but for the last
    assert all(line.startswith("checking raw: ") and f" of {len(table):,} rows (" in line for line in lines)
    assert all(line.endswith(" left") for line in lines)
    assert [(o.success, o.unexpected_count, o.sample) for o in logged] == [
        (o.success, o.unexpected_count, o.sample) for o in quiet
    ]


@pytest.mark.parametrize("nulls", [0, 99, 100, 101, 1000])
def test_a_share_rule_over_batches_is_judged_as_on_the_whole_table(nulls):
    """The nulls sit in the first batch, which fails alone where the table passes: 99 and 100 nulls of 1,000 are
    within `mostly` 0.9 (100 exactly at it), 101 are not. The second rule's share is of the rows not null: 150 rows
    below 150 fail it, fewer pass, and no row at all passes it."""
    clicks = np.arange(1000, dtype="float64")
    clicks[:nulls] = np.nan
    table = pd.DataFrame({"date": pd.Timestamp("2025-03-01"), "keyword_id": np.arange(1000), "clicks": clicks})
    rule = [
        quality.Expectation(
            "ExpectColumnValuesToNotBeNull", {"column": "clicks", "mostly": 0.9}, quality.WARN, "clicks mostly known"
        ),
        quality.Expectation(
            "ExpectColumnValuesToBeBetween", {"column": "clicks", "min_value": 150, "mostly": 0.9}, "warn", "≥ 150"
        ),
    ]
    whole = quality.run_expectations(table, rule, "whole")
    batched = quality.run_expectations_in_batches((table.iloc[i : i + 250] for i in range(0, 1000, 250)), rule, "b")
    assert [o.success for o in batched] == [o.success for o in whole] == [nulls <= 100, nulls > 0]
    assert batched == whole


class CountingWarehouse(Warehouse):
    """A warehouse that counts the partitions it reads, by day."""

    def __init__(self, uri: str):
        super().__init__(uri)
        self.footers, self.reads = Counter(), Counter()

    def partition_rows(self, table, day):
        self.footers[day] += 1
        return super().partition_rows(table, day)

    def read_partitions(self, table, days, *args, **kwargs):
        self.reads.update(days)
        return super().read_partitions(table, days, *args, **kwargs)

    def sample_partition(self, table, day, *args, **kwargs):
        self.reads[day] += 1
        return super().sample_partition(table, day, *args, **kwargs)


def test_a_range_reads_each_trailing_day_once_and_judges_each_day_as_alone(tmp_path):
    first = dt.date(2025, 5, 1)
    days = [first + dt.timedelta(days=n) for n in range(20)]
    rng = np.random.default_rng(3)
    store = CountingWarehouse(str(tmp_path))
    for n, day in enumerate(days):
        count = 50 + 5 * n
        store.write_partition(
            "raw",
            day,
            pd.DataFrame(
                {
                    "date": pd.Timestamp(day),
                    "keyword_id": np.arange(count),
                    **{column: rng.poisson(2 + n, count).astype("float64") for column in quality.DRIFT_COLUMNS},
                }
            ),
        )
    judged = days[8:]
    frames = {day: store.read_partitions("raw", [day]) for day in judged}
    store.footers.clear()
    store.reads.clear()
    trailing = quality.TrailingDays(store, "raw")
    together = {day: (trailing.row_counts(day), trailing.drift_scores(frames[day], day)) for day in judged}
    # Each trailing day was read once: the 7 before the first judged day, then one more for each later day.
    assert set(store.footers.values()) == {1} and len(store.footers) == 7 + len(judged) - 1
    assert set(store.reads.values()) == {1} and len(store.reads) == 7 + len(judged) - 1
    assert len(trailing._samples) <= quality.TRAILING_DAYS  # samples no later day can use were let go
    alone = {
        day: (
            quality.TrailingDays(store, "raw").row_counts(day),
            quality.TrailingDays(store, "raw").drift_scores(frames[day], day),
        )
        for day in judged
    }
    assert together == alone
    assert together[days[-1]][0] == [50 + 5 * n for n in range(18, 11, -1)]  # newest first
    assert together[days[-1]][1][1] == days[-2:-9:-1]


def test_the_bid_suite_holds_each_bid_to_the_money_rule_where_the_value_has_a_spread():
    bids = pd.DataFrame(
        {
            "date": pd.Timestamp("2025-03-01"),
            "keyword_id": [1, 2, 3],
            "bid": [0.50, 0.50, 0.50],
            "expected_value_per_click": [1.00, 1.00, 1.00],
            # The second keyword's value has no known spread (a configured value): only the first rule judges it.
            "conservative_value_per_click": [0.60, np.nan, 0.30],
            "expected_cost_per_click": [0.50, 0.90, 0.40],
        }
    )
    outcomes = {o.expectation.description: o for o in quality.run_expectations(bids, quality.bid_suite(0.05, 20), "b")}
    money_rule = outcomes["expected_cost_per_click ≤ conservative_value_per_click where known"]
    assert not money_rule.success and money_rule.unexpected_count == 1 and money_rule.judged_rows == 2
    assert money_rule.sample[0]["keyword_id"] == 3
    assert all(outcome.success for name, outcome in outcomes.items() if outcome is not money_rule)


def test_the_quarantined_share_of_a_day_leaves_superseded_rows_aside_and_names_the_top_reasons():
    reasons = ["clicks_above_impressions"] * 6 + ["missing_value"] * 2 + ["duplicate_superseded"] * 5
    quarantine = pd.DataFrame(
        {
            "reason": reasons,
            "detail": ["clicks > impressions"] * 6 + ["cost is empty"] * 2 + ["a later row"] * 5,
            "source_file": "swapped.csv",
            "source_row": range(2, 2 + len(reasons)),
        }
    )
    day = quarantined_share(quarantine, validated_rows=2)
    assert (day.rows, day.quarantined, day.superseded) == (10, 8, 5)  # 2 validated + 8 lost; restatements aside
    assert day.share == 0.8 and day.exceeds(0.2) and not day.exceeds(0.8)
    assert day.top_reasons == {"clicks_above_impressions": 6, "missing_value": 2}
    assert day.examples.to_dict("records") == [
        {
            "reason": "clicks_above_impressions",
            "detail": "clicks > impressions",
            "source_file": "swapped.csv",
            "source_row": 2,
        },
        {"reason": "missing_value", "detail": "cost is empty", "source_file": "swapped.csv", "source_row": 8},
    ]
    assert list(quarantined_share(quarantine, 0, top=1).top_reasons) == ["clicks_above_impressions"]


def test_a_day_restated_in_full_or_without_quarantine_is_not_quarantined():
    restated = pd.DataFrame({"reason": ["duplicate_superseded"] * 40})
    assert quarantined_share(restated, validated_rows=40).share == 0.0  # a whole day exported twice
    empty = pd.DataFrame({"reason": pd.Series(dtype="string")})
    day = quarantined_share(empty, validated_rows=0)
    assert (day.share, day.top_reasons, len(day.examples)) == (0.0, {}, 0)
