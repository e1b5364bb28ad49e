"""The keyword join of every scored batch: the same rows as a hash join, whatever the order and the gaps."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daily_bids.keyword_index import NOT_FOUND, KeywordIndex, unique_keyword_ids

keyword_ids = st.lists(st.integers(min_value=-(2**62), max_value=2**62), unique=True, max_size=60)


@given(table=keyword_ids, batch=st.lists(st.integers(min_value=-(2**62), max_value=2**62), max_size=60))
def test_positions_are_a_hash_joins(table, batch):
    batch = batch + table[: len(table) // 2]  # some found, some not, in any order, repeats allowed
    expected = pd.Index(np.asarray(table, dtype="int64")).get_indexer(np.asarray(batch, dtype="int64"))
    assert KeywordIndex(table).positions(batch).tolist() == expected.tolist()


def test_take_fills_keywords_without_a_row():
    index = KeywordIndex([30, 10, 20])
    values = np.array([3.0, 1.0, 2.0])
    assert index.take(values, [10, 15, 30, 99]).tolist() == pytest.approx([1.0, np.nan, 3.0, np.nan], nan_ok=True)
    assert index.positions([]).tolist() == []
    assert KeywordIndex([]).positions([5]).tolist() == [NOT_FOUND]


def test_a_keyword_with_two_rows_is_refused():
    with pytest.raises(ValueError, match="keyword 7 has more than one row"):
        KeywordIndex([7, 3, 7])


@given(ids=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=80))
def test_unique_keyword_ids_are_numpys_unique(ids):
    assert (
        unique_keyword_ids(np.asarray(ids, dtype="int64")).tolist()
        == np.unique(np.asarray(ids, dtype="int64")).tolist()
    )
