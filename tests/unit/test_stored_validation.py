"""Validation of stored reports in keyword shards gives the tables `validate_report` gives for the whole range."""

import pandas as pd
import pyarrow.fs as pafs
import pytest

from daily_bids.ingest import stored_validation
from daily_bids.ingest.stored_validation import validate_stored
from daily_bids.ingest.validation import Plausibility
from daily_bids.storage import tables
from daily_bids.storage.warehouse import SPARK_STAGING_FOLDER, Warehouse
from support.hostile_reports import (
    DAYS,
    assert_the_tables_of_the_whole_range,
    store_hostile_range,
    validated_whole,
)

RAW, VALID, QUARANTINE = tables.RAW_REPORT, tables.VALIDATED_REPORT, tables.QUARANTINE


@pytest.mark.parametrize("shuffled", [False, True], ids=["in keyword order", "shuffled"])
@pytest.mark.parametrize("rows_per_shard", [10**9, 400, 97], ids=["one shard", "a few shards", "many shards"])
def test_shards_give_the_tables_of_the_whole_range(tmp_path, shuffled, rows_per_shard):
    store = Warehouse(str(tmp_path / "warehouse"))
    store_hostile_range(store, shuffled)
    whole = validated_whole(store)
    sharded = validate_stored(
        store, RAW, DAYS, Plausibility.from_contract(), VALID, QUARANTINE, rows_per_shard=rows_per_shard
    )
    assert_the_tables_of_the_whole_range(store, sharded, whole)
    assert sharded.shards > 2 if rows_per_shard < 1000 else sharded.shards == 2


def test_a_shard_is_judged_with_its_rows_only(tmp_path, monkeypatch):
    """Memory holds a shard: no judgement sees much more than `rows_per_shard` rows, whatever the range's size."""
    store = Warehouse(str(tmp_path / "warehouse"))
    store_hostile_range(store, shuffled=True)
    judged: list[int] = []
    real = stored_validation.validate_shard
    monkeypatch.setattr(
        stored_validation, "validate_shard", lambda raw, *rest: judged.append(len(raw)) or real(raw, *rest)
    )
    validate_stored(store, RAW, DAYS, Plausibility.from_contract(), VALID, QUARANTINE, rows_per_shard=200)
    assert sum(judged) == sum(store.partition_rows(RAW, day) for day in DAYS) > 1900
    # Quantiles of a sample bound the shards: a criterion's rows stay together, so a shard may run a little over.
    assert len(judged) >= 10 and max(judged) < 400


def test_a_failing_shard_replaces_nothing_and_new_keys_are_recorded_before_any_table(tmp_path, monkeypatch):
    store = Warehouse(str(tmp_path / "warehouse"))
    store_hostile_range(store, shuffled=True)
    plausibility = Plausibility.from_contract()
    seen: list[bool] = []

    def record(result):  # what the step does with the new keys: they are recorded before either table is published
        seen.append(any(store.partition_exists(table, day) for table in (VALID, QUARANTINE) for day in DAYS))
        assert len(result.new_keys) > 0

    validate_stored(store, RAW, DAYS, plausibility, VALID, QUARANTINE, record, rows_per_shard=300)
    assert seen == [False]
    before = {table: store.read_partitions(table, DAYS) for table in (VALID, QUARANTINE)}
    real, calls = stored_validation.validate_shard, []

    def fails_on_the_fourth_shard(raw, *rest):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("shard four broke")
        return real(raw, *rest)

    monkeypatch.setattr(stored_validation, "validate_shard", fails_on_the_fourth_shard)
    with pytest.raises(RuntimeError, match="shard four broke"):
        validate_stored(store, RAW, DAYS, plausibility, VALID, QUARANTINE, record, rows_per_shard=300)
    assert seen == [False]  # the failed range recorded no keys
    for table, frame in before.items():
        pd.testing.assert_frame_equal(store.read_partitions(table, DAYS), frame)
    leftovers = pafs.FileSelector(store.path(SPARK_STAGING_FOLDER), allow_not_found=True, recursive=True)
    assert [info.path for info in store.fs.get_file_info(leftovers) if info.type == pafs.FileType.File] == []
