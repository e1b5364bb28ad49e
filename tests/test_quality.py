"""The great-expectations adapter judges a table batch by batch exactly as it judges it whole."""

import numpy as np
import pandas as pd
import pytest

from daily_bids import quality

SUITE = [quality.unique_keys(), quality.not_null("clicks"), quality.at_least("clicks", 0),
         quality.between("history_days", 1, 28)]


def _table() -> pd.DataFrame:
    rows = 1_000
    table = pd.DataFrame({"date": pd.Timestamp("2025-03-01"), "keyword_id": np.arange(rows),
                          "clicks": np.arange(rows, dtype="float64"), "history_days": 7})
    table.loc[[10, 620], "clicks"] = np.nan  # a null in two different batches
    table.loc[[400, 401, 999], "clicks"] = -1.0
    table.loc[5, "history_days"] = 40
    table.loc[900, "keyword_id"] = 3  # a duplicate of a row in the first batch: only the batches together show it
    return table


def test_batches_give_the_outcomes_of_the_whole_table():
    table = _table()
    whole = quality.run_expectations(table, SUITE, "whole")
    batched = quality.run_expectations_in_batches((table.iloc[i:i + 300] for i in range(0, len(table), 300)),
                                                  SUITE, "batched")
    assert [o.success for o in batched] == [o.success for o in whole] == [False, False, False, False]
    assert [o.unexpected_count for o in batched] == [o.unexpected_count for o in whole] == [2, 2, 3, 1]
    for ours, theirs in zip(batched, whole):
        assert ours.unexpected_percent == pytest.approx(theirs.unexpected_percent)
    # Samples name the failing rows, from whichever batch they were in.
    assert sorted(row["keyword_id"] for row in batched[2].sample) == [400, 401, 999]
    assert sorted(row["keyword_id"] for row in batched[0].sample) == [3, 3]


def test_a_share_rule_is_not_judged_in_batches():
    mostly = quality.Expectation("ExpectColumnValuesToNotBeNull", {"column": "clicks", "mostly": 0.9}, quality.WARN,
                                 "clicks mostly known")
    with pytest.raises(ValueError, match="mostly"):
        quality.run_expectations_in_batches((_table().iloc[i:i + 500] for i in (0, 500)), [mostly], "shares")
