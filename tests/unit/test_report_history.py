"""The landscape's sample of keywords, and its rows of each report day kept in the warehouse (`_landscape_sample`):
the same rows as sampling the whole reports, each report day read whole once, and again only when it changed."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daily_bids.bidding.landscape import in_training_sample, sample_halvings, training_keywords, training_rows
from daily_bids.bidding.report_history import HISTORY_COLUMNS, sampled_history
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from daily_bids.storage.derived_days import DerivedDays
from daily_bids.storage.warehouse import Warehouse

START = dt.date(2025, 3, 1)
DAYS = 30
LAST = START + dt.timedelta(days=DAYS - 1)
MAX_KEYWORDS = 150  # 600 keywords: halved twice, one keyword in four


@pytest.fixture(scope="module")
def reports() -> dict[dt.date, pd.DataFrame]:
    """600 keywords' reports: 16 days at the manual bids, then two weeks of bids moved by up to ±20%."""
    return AdMarketSimulator(seed=11, keywords=600).reports_with_varied_bids(START, DAYS, 14)


@pytest.fixture
def store(tmp_path: Path, reports) -> Warehouse:
    store = Warehouse(str(tmp_path / "warehouse"))
    for day, frame in reports.items():
        store.write_partition(tables.VALIDATED_REPORT, day, frame[["date", *HISTORY_COLUMNS]])
    return store


def _sampled_from_whole(store: Warehouse, days: list[dt.date], halvings: int) -> pd.DataFrame:
    whole = store.read_partitions(tables.VALIDATED_REPORT, days, HISTORY_COLUMNS)
    return whole[in_training_sample(whole["keyword_id"].to_numpy(), halvings)].reset_index(drop=True)


def _kept_files(store: Warehouse, day: dt.date) -> list[str]:
    return sorted(path.name for path in (Path(store.root) / tables.LANDSCAPE_SAMPLE / f"date={day}").iterdir())


@pytest.mark.parametrize(
    ("keywords", "halvings"),
    [(0, 0), (150, 0), (151, 1), (300, 1), (301, 2), (600, 2), (601, 3), (150 << 20, 20), ((150 << 20) + 1, 21)],
)
def test_an_account_is_halved_until_at_most_the_maximum_is_expected(keywords, halvings):
    assert sample_halvings(keywords, MAX_KEYWORDS) == halvings


def test_the_sample_is_a_share_of_keywords_chosen_by_their_ids_alone():
    ids = np.unique(np.random.default_rng(3).integers(0, 2**62, 1 << 18))
    for halvings in range(1, 7):
        inside = in_training_sample(ids, halvings)
        share, expected = inside.mean(), 0.5**halvings
        assert abs(share - expected) < 5 * np.sqrt(expected * (1 - expected) / len(ids)), halvings
        # Each smaller sample lies within the larger one.
        assert not (in_training_sample(ids, halvings + 1) & ~inside).any()
        # A keyword is in or out whatever else is asked with it, and in whatever order.
        order = np.random.default_rng(halvings).permutation(len(ids))
        assert (in_training_sample(ids[order], halvings) == inside[order]).all()
        assert (in_training_sample(ids[:1000], halvings) == inside[:1000]).all()
    assert in_training_sample(ids, 0).all()


def test_a_sample_sampled_again_stays_whole():
    ids = np.arange(100_000, 700_000, dtype="int64")
    sample = training_keywords(ids, max_keywords=150_000)  # 600,000 keywords: one in four
    assert abs(len(sample) - 150_000) < 2_000
    assert (training_keywords(sample, max_keywords=150_000) == sample).all()


def test_the_sampled_history_is_the_sample_of_the_whole_reports(store, reports):
    history = sampled_history(store, LAST, 64, max_keywords=MAX_KEYWORDS)
    assert history.halvings == 2 and history.days == sorted(reports) and history.read_whole == sorted(reports)
    expected = _sampled_from_whole(store, sorted(reports), 2)
    assert 100 < expected["keyword_id"].nunique() < 200
    pd.testing.assert_frame_equal(history.reports, expected)
    # What the landscape learns from is what it would learn from the whole reports.
    first = START + dt.timedelta(days=7)
    whole = store.read_partitions(tables.VALIDATED_REPORT, sorted(reports), HISTORY_COLUMNS)
    pd.testing.assert_frame_equal(
        training_rows(history.reports, first, LAST, MAX_KEYWORDS), training_rows(whole, first, LAST, MAX_KEYWORDS)
    )


def test_a_kept_day_is_read_again_only_once_its_report_day_changed(store, reports):
    first = sampled_history(store, LAST, 64, max_keywords=MAX_KEYWORDS)
    again = sampled_history(store, LAST, 64, max_keywords=MAX_KEYWORDS)
    assert again.read_whole == []
    pd.testing.assert_frame_equal(again.reports, first.reports)

    # A restated day: its sample is derived again, from the new rows, and replaces the old one.
    restated_day = START + dt.timedelta(days=20)
    restated = reports[restated_day].assign(clicks=reports[restated_day]["clicks"] + 1)
    store.write_partition(tables.VALIDATED_REPORT, restated_day, restated[["date", *HISTORY_COLUMNS]])
    before = _kept_files(store, restated_day)
    after_restating = sampled_history(store, LAST, 64, max_keywords=MAX_KEYWORDS)
    assert after_restating.read_whole == [restated_day]
    pd.testing.assert_frame_equal(after_restating.reports, _sampled_from_whole(store, sorted(reports), 2))
    assert (
        len(before) == 1 and len(_kept_files(store, restated_day)) == 1 and _kept_files(store, restated_day) != before
    )

    # Another sample (the account doubled): every day is derived again, beside the first sample's days, so an account
    # whose size moves back and forth across the halving keeps both.
    doubled = sampled_history(store, LAST, 64, max_keywords=MAX_KEYWORDS // 2)
    assert doubled.halvings == 3 and doubled.read_whole == sorted(reports)
    pd.testing.assert_frame_equal(doubled.reports, _sampled_from_whole(store, sorted(reports), 3))
    assert all(len(_kept_files(store, day)) == 2 for day in reports)
    assert sampled_history(store, LAST, 64, max_keywords=MAX_KEYWORDS).read_whole == []
    # A day restated again: both samples' files of the older report day go as the new one is kept.
    store.write_partition(tables.VALIDATED_REPORT, restated_day, reports[restated_day][["date", *HISTORY_COLUMNS]])
    assert sampled_history(store, LAST, 64, max_keywords=MAX_KEYWORDS).read_whole == [restated_day]
    assert len(_kept_files(store, restated_day)) == 1


def test_missing_days_are_skipped_and_missing_columns_stay_missing(store, reports):
    gone = START + dt.timedelta(days=10)
    (Path(store.partition_path(tables.VALIDATED_REPORT, gone))).unlink()
    without_share = START + dt.timedelta(days=12)
    columns = ["date", *[name for name in HISTORY_COLUMNS if name != "search_impression_share"]]
    store.write_partition(tables.VALIDATED_REPORT, without_share, reports[without_share][columns])
    history = sampled_history(store, LAST, 21, max_keywords=MAX_KEYWORDS)
    window = [day for day in sorted(reports) if day > LAST - dt.timedelta(days=21) and day != gone]
    assert history.days == window
    assert "one keyword in 4 of 20 report days (0 kept from earlier runs, 20 read whole)" == history.describe()
    on_the_day = history.reports[history.reports["date"] == pd.Timestamp(without_share)]
    assert len(on_the_day) and on_the_day["search_impression_share"].isna().all()
    assert history.reports["search_impression_share"].notna().any()


def test_the_last_day_must_exist(store):
    from daily_bids.storage.warehouse import MissingPartitionsError

    with pytest.raises(MissingPartitionsError, match="2025-04-30"):
        sampled_history(store, dt.date(2025, 4, 30), 64)


def test_a_small_account_is_learnt_from_every_keyword(store, reports):
    history = sampled_history(store, LAST, 64)  # 600 keywords: no sample
    assert history.halvings == 0 and history.describe().startswith(f"every keyword of {len(reports)} report days")
    pd.testing.assert_frame_equal(history.reports, _sampled_from_whole(store, sorted(reports), 0))


def test_a_recipe_is_a_plain_name(store):
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        DerivedDays(store, tables.VALIDATED_REPORT, tables.LANDSCAPE_SAMPLE, "one-in/4")
