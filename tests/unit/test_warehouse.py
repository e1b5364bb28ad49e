import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from daily_bids.storage.warehouse import WHOLE_READ_ATTEMPTS, MissingPartitionsError, Warehouse, read_whole

D1, D2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)


def _frame(day, n):
    return pd.DataFrame({"date": pd.Timestamp(day), "keyword_id": range(n), "clicks": [1.5] * n})


def test_partitions_round_trip_with_their_date(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partitions("t", [D1, D2], pd.concat([_frame(D1, 3), _frame(D2, 2)]))
    assert store.list_partitions("t") == [D1, D2]
    back = store.read_partitions("t", [D1, D2])
    assert list(back.groupby("date").size()) == [3, 2]
    assert (tmp_path / "t" / "date=2025-03-01" / "data.parquet").is_file()


def test_only_days_whose_file_is_there_are_partitions(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 1))
    # A day whose write was killed before its file was renamed into place, and a table's stray subfolder.
    (tmp_path / "t" / "date=2025-03-02").mkdir()
    (tmp_path / "t" / "date=2025-03-02" / ".data.parquet.0123abcd.tmp").write_bytes(b"PAR1 half")
    (tmp_path / "t" / "date=2025-03-03" / "extra").mkdir(parents=True)
    (tmp_path / "t" / "date=2025-03-03" / "extra" / "data.parquet").write_bytes(b"not the day's file")
    assert store.list_partitions("t") == [D1]
    assert store.list_partitions("never_written") == []
    with pytest.raises(MissingPartitionsError, match="2025-03-02"):
        store.read_partitions("t", [D1, D2])


def test_rewriting_a_partition_replaces_it(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 5))
    store.write_partition("t", D1, _frame(D1, 2))
    assert len(store.read_partitions("t", [D1])) == 2
    assert [p.name for p in (tmp_path / "t" / "date=2025-03-01").iterdir()] == ["data.parquet"]


def test_a_failed_write_leaves_the_previous_partition_and_no_partial_file(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 4))

    def explode(sink):
        sink.write(b"PAR1 half a file")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store._write_atomically(store.partition_path("t", D1), explode)
    assert len(store.read_partitions("t", [D1])) == 4
    assert [p.name for p in (tmp_path / "t" / "date=2025-03-01").iterdir()] == ["data.parquet"]


def test_every_day_of_a_range_is_written_even_without_rows(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partitions("t", [D1, D2], _frame(D1, 3))
    assert len(store.read_partitions("t", [D2])) == 0


def test_rows_outside_the_partitions_are_refused(tmp_path):
    with pytest.raises(ValueError, match="outside the partitions"):
        Warehouse(str(tmp_path)).write_partitions("t", [D1], _frame(D2, 1))


def test_reading_missing_days_names_them(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 1))
    with pytest.raises(MissingPartitionsError, match=r"2025-03-02\.\.\.2025-03-03"):
        store.read_partitions("t", [D1, D2, dt.date(2025, 3, 3)])


def test_a_killed_writes_temporary_file_is_removed_by_the_next_write(tmp_path):
    import os
    import time

    store = Warehouse(str(tmp_path / "warehouse"))
    day = dt.date(2025, 1, 1)
    path = store.write_partition("t", day, pd.DataFrame({"x": [1]}))
    folder = os.path.dirname(path)
    stale = os.path.join(folder, ".data.parquet.0123abcd.tmp")  # what a write killed half-way leaves
    fresh = os.path.join(folder, ".data.parquet.4567ef01.tmp")  # a write still under way elsewhere
    for leftover in (stale, fresh):
        with open(leftover, "wb") as handle:
            handle.write(b"half a parquet file")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    store.write_partition("t", day, pd.DataFrame({"x": [2]}))
    assert sorted(os.listdir(folder)) == [".data.parquet.4567ef01.tmp", "data.parquet"]
    assert store.read_partitions("t", [day])["x"].tolist() == [2]


def _stored_files(root) -> dict[str, bytes]:
    """Every file under the warehouse root, hidden ones included, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_range_that_fails_on_a_later_day_leaves_every_stored_day_unchanged(tmp_path, monkeypatch):
    store = Warehouse(str(tmp_path))
    store.write_partitions("t", [D1, D2], pd.concat([_frame(D1, 3), _frame(D2, 2)]))
    before = _stored_files(tmp_path)
    honest = Warehouse._write_parquet_atomically

    def fail_on_the_second_day(self, path, frame):
        if "2025-03-02" in path:
            raise OSError("disk full")
        honest(self, path, frame)

    monkeypatch.setattr(Warehouse, "_write_parquet_atomically", fail_on_the_second_day)
    with pytest.raises(OSError, match="disk full"):
        store.write_partitions("t", [D1, D2], pd.concat([_frame(D1, 7), _frame(D2, 7)]))
    assert _stored_files(tmp_path) == before  # the first day was not replaced, and nothing staged is left


def test_staged_partitions_replace_the_stored_ones_only_when_published(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 1))
    with store.staging() as staged:
        staged.write_partition("t", D1, _frame(D1, 4))
        with staged.partition_writer("u", D2) as writer:
            writer.write(_frame(D2, 2))
        assert staged.days("t") == [D1] and staged.days("u") == [D2]
        assert len(store.read_partitions("t", [D1])) == 1  # readers still see the stored day
        assert store.list_partitions("u") == []
        assert store.list_partitions(".staging") == []  # hidden from listings too
        staged.publish("t")
    assert len(store.read_partitions("t", [D1])) == 4
    assert store.list_partitions("u") == []  # never published: thrown away with the staging folder
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging", "t"]
    assert list((tmp_path / ".staging").iterdir()) == []


def test_a_staged_day_that_fails_half_way_is_not_staged(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 3))
    with store.staging() as staged:
        with pytest.raises(RuntimeError, match="half-way"), staged.partition_writer("t", D1) as writer:
            writer.write(_frame(D1, 9))
            raise RuntimeError("scoring died half-way")
        assert staged.days("t") == []
        staged.publish("t")
    assert len(store.read_partitions("t", [D1])) == 3


@pytest.mark.parametrize("staging", [".staging", ".spark-staging"], ids=["a_step", "a_spark_driver"])
def test_a_killed_steps_staging_folder_is_removed_by_the_next_staging(tmp_path, staging):
    import os
    import time

    store = Warehouse(str(tmp_path))
    stale, fresh = tmp_path / staging / "killed", tmp_path / staging / "running"
    for folder in (stale, fresh):
        (folder / "t" / "date=2025-03-01").mkdir(parents=True)
        (folder / "t" / "date=2025-03-01" / "data.parquet").write_bytes(b"PAR1")
    two_hours_ago = time.time() - 7200
    os.utime(stale / "t" / "date=2025-03-01" / "data.parquet", (two_hours_ago, two_hours_ago))
    with store.staging():
        pass
    assert sorted(p.name for p in (tmp_path / staging).iterdir()) == ["running"]


def test_an_s3_warehouse_keeps_the_options_it_was_opened_with():
    from daily_bids.settings import S3Options

    options = S3Options(endpoint_url="http://127.0.0.1:9", access_key="key", secret_key="secret", max_attempts=2)
    assert Warehouse("s3://bucket/prefix", options).s3 == options  # what the Spark engine's tasks open it with
    assert Warehouse("s3://bucket/prefix").s3 == S3Options()
    assert Warehouse("/tmp/folder").s3 is None


def test_held_partitions_replace_the_stored_ones_once_every_check_on_them_passed(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 1))
    step = store.holding("run-a", {"t": ["t:contract", "t:volume"], "u": []})
    step.write_partition("t", D1, _frame(D1, 5))
    step.write_partitions("u", [D2], _frame(D2, 2))  # a by-product of the step: it waits for every check
    assert len(store.read_partitions("t", [D1])) == 1 and store.list_partitions("u") == []  # what others see
    the_run = store.seen_by_run("run-a")
    assert len(the_run.read_partitions("t", [D1])) == 5 and the_run.partition_rows("u", D2) == 2  # what its checks see
    assert len(store.seen_by_run("run-b").read_partitions("t", [D1])) == 1  # another run's view
    assert the_run.held_tables() == ["t", "u"]

    assert store.seen_by_run("run-a").release_if_checked("t:contract") == []
    assert len(store.read_partitions("t", [D1])) == 1
    assert sorted(store.seen_by_run("run-a").release_if_checked("t:volume")) == ["t", "u"]
    assert len(store.read_partitions("t", [D1])) == 5 and store.list_partitions("u") == [D2]
    assert list((tmp_path / ".staging").iterdir()) == []  # nothing left waiting: the run's folder is gone


def test_a_step_that_fails_throws_away_what_it_held(tmp_path):
    store = Warehouse(str(tmp_path))
    store.write_partition("t", D1, _frame(D1, 1))
    step = store.holding("run-a", {"t": ["t:contract"]})
    with pytest.raises(RuntimeError, match="scoring died"), step.staging() as staged:
        staged.write_partition("t", D1, _frame(D1, 4))
        staged.publish("t")
        assert store.seen_by_run("run-a").partition_rows("t", D1) == 4
        raise RuntimeError("scoring died")
    assert store.seen_by_run("run-a").held_tables() == []
    assert store.seen_by_run("run-a").release_if_checked("t:contract") == []
    assert len(store.read_partitions("t", [D1])) == 1


def test_a_step_without_checks_writes_straight_into_its_tables(tmp_path):
    store = Warehouse(str(tmp_path))
    store.holding("run-a", {"t": []}).write_partition("t", D1, _frame(D1, 3))
    assert len(store.read_partitions("t", [D1])) == 3 and not (tmp_path / ".staging").exists()


class _FlakyS3:
    """A filesystem whose first `failures` reads fail as the AWS SDK fails a small object's GET that S3 answered with
    an error: the XML error body overflows the buffer sized to the object."""

    def __init__(
        self,
        failures: int,
        message: str = "AWS Error INTERNAL_FAILURE during GetObject operation: Failed "
        "to flush response stream (eof: 0, bad: 1)",
    ):
        self.failures, self.message, self.opened = failures, message, 0

    def open_input_stream(self, path):
        self.opened += 1
        if self.opened <= self.failures:
            raise OSError(self.message)
        return pa.BufferReader(b'["a_check"]')


def test_a_small_read_that_s3_answered_with_an_error_is_read_again():
    flaky = _FlakyS3(failures=WHOLE_READ_ATTEMPTS - 1)
    assert read_whole(flaky, "bucket/_tables/t.json") == b'["a_check"]' and flaky.opened == WHOLE_READ_ATTEMPTS
    # A fault on every attempt, or any other error, is not hidden.
    with pytest.raises(OSError, match="Failed to flush response stream"):
        read_whole(_FlakyS3(failures=WHOLE_READ_ATTEMPTS), "bucket/_tables/t.json")
    other = _FlakyS3(failures=1, message="AWS Error ACCESS_DENIED during GetObject operation")
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        read_whole(other, "bucket/_tables/t.json")
    assert other.opened == 1


def test_columns_whose_values_do_not_repeat_are_written_without_a_dictionary(tmp_path, monkeypatch):
    import numpy as np
    import pyarrow.parquet as pq

    from daily_bids.storage import warehouse

    # Plain: values that do not repeat four times (IDs, estimates: 8 KB of distinct values), or values that repeat but
    # outgrow a dictionary page (made 16 KB here: 200 names of 100 characters).
    monkeypatch.setattr(warehouse, "DICTIONARY_PAGE_BYTES", 16 << 10)
    store = Warehouse(str(tmp_path))
    day = dt.date(2025, 3, 1)
    frame = pd.DataFrame(
        {
            "keyword_id": range(1_000),
            "keyword": [f"keyword {n}" for n in range(1_000)],
            "expected_clicks": np.random.default_rng(7).gamma(1.0, 3.0, 1_000),
            "campaign": ["brand", "generic"] * 500,
            "ad_group": [f"{n % 200:0>100}" for n in range(1_000)],
            "bid": np.tile([0.25, 0.5, 1.0, 2.0], 250),
        }
    )
    with store.partition_writer("bids", day) as sink:
        sink.write(frame)
    store.write_partition("predictions", day, frame)
    for table in ("bids", "predictions"):
        row_group = pq.ParquetFile(store.stored_partition_path(table, day)).metadata.row_group(0)
        dictionary = {
            row_group.column(i).path_in_schema: any("DICTIONARY" in e for e in row_group.column(i).encodings)
            for i in range(row_group.num_columns)
        }
        assert dictionary == {
            "keyword_id": False,
            "keyword": False,
            "expected_clicks": False,
            "campaign": True,
            "ad_group": False,
            "bid": True,
        }
        pd.testing.assert_frame_equal(store.read_partitions(table, [day]).drop(columns="date"), frame)


def test_a_partition_is_read_row_group_by_row_group_as_a_spark_task_reads_it(tmp_path):
    store, day = Warehouse(str(tmp_path)), dt.date(2025, 3, 1)
    with store.partition_writer("bids", day) as writer:  # a frame a row group
        for start in (0, 3, 7):
            writer.write(pd.DataFrame({"keyword_id": range(start, start + 3 + (start == 3))}))
    assert store.partition_row_groups("bids", day) == 3
    (later_first,) = store.iter_partition("bids", day, 100, row_groups=[2])
    assert later_first["keyword_id"].tolist() == [7, 8, 9]
    assert (later_first["date"] == pd.Timestamp(day)).all()
    both = pd.concat(store.iter_partition("bids", day, 2, row_groups=[1, 0]), ignore_index=True)
    assert both["keyword_id"].tolist() == [3, 4, 5, 6, 0, 1, 2]


def test_a_frame_that_fails_in_the_writers_thread_fails_the_write_and_leaves_the_old_partition(tmp_path, monkeypatch):
    store, day = Warehouse(str(tmp_path)), dt.date(2025, 3, 1)
    store.write_partition("bids", day, pd.DataFrame({"keyword_id": [1, 2]}))
    write_table = pq.ParquetWriter.write_table

    def disk_full_at_three_rows(writer, table, *args, **kwargs):
        if table.num_rows == 3:
            raise OSError("No space left on device")
        return write_table(writer, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_full_at_three_rows)
    for frames in ([[3, 4, 5]], [[3, 4, 5], [6]], [[6], [3, 4, 5], [7]]):  # failing last, or with frames after it
        with pytest.raises(OSError, match="No space left"), store.partition_writer("bids", day) as writer:
            for keywords in frames:
                writer.write(pd.DataFrame({"keyword_id": keywords}))
        assert store.read_partitions("bids", [day])["keyword_id"].tolist() == [1, 2]
    with store.partition_writer("bids", day) as writer:  # the writer's thread is no worse for it
        for keywords in ([6], [7, 8]):
            writer.write(pd.DataFrame({"keyword_id": keywords}))
    assert store.read_partitions("bids", [day])["keyword_id"].tolist() == [6, 7, 8]


@pytest.mark.parametrize("rows", [3, 600, 1_000, 5_000])
def test_a_sample_of_a_day_is_distinct_rows_of_it_drawn_by_the_seed(tmp_path, rows):
    store, day = Warehouse(str(tmp_path)), dt.date(2025, 3, 1)
    values = np.random.default_rng(1).random(1_000)
    store.write_partition("raw", day, pd.DataFrame({"keyword_id": range(1_000), "clicks": values, "cost": values * 2}))
    sample = store.sample_partition("raw", day, ["keyword_id", "clicks", "cost"], rows, seed=4)
    whole = store.read_partitions("raw", [day], ["keyword_id", "clicks", "cost"])
    assert len(sample) == min(rows, 1_000) and sample["keyword_id"].is_unique
    assert sample["keyword_id"].is_monotonic_increasing  # in the day's order
    pd.testing.assert_frame_equal(sample, whole.iloc[sample["keyword_id"].to_numpy()].reset_index(drop=True))
    pd.testing.assert_frame_equal(sample, store.sample_partition("raw", day, ["keyword_id", "clicks", "cost"], rows, 4))
    other_seed = store.sample_partition("raw", day, ["keyword_id"], rows, seed=5)
    assert (other_seed["keyword_id"].tolist() == sample["keyword_id"].tolist()) == (rows >= 1_000)


def test_small_row_groups_are_read_together_up_to_a_batch_and_a_large_one_is_split(tmp_path):
    store, day = Warehouse(str(tmp_path)), dt.date(2025, 3, 1)
    sizes, start = (3, 4, 3, 10, 2), 0
    with store.partition_writer("bids", day) as writer:  # a frame a row group
        for size in sizes:
            writer.write(pd.DataFrame({"keyword_id": range(start, start + size)}))
            start += size
    frames = list(store.iter_partition("bids", day, 7))
    # 3 + 4 fit a batch of 7; the next 3 would not join them, nor the 10, which comes in 7 and 3; the 2 stands alone
    assert [len(frame) for frame in frames] == [7, 3, 7, 3, 2]
    assert pd.concat(frames)["keyword_id"].tolist() == list(range(sum(sizes)))


def test_an_empty_partition_has_the_types_a_read_of_its_rows_gives(tmp_path):
    """The contract's type check reads a day's footer only: its frame must hold the types a full read does."""
    from daily_bids.schema import empty_raw, raw_dtypes

    store, day = Warehouse(str(tmp_path)), dt.date(2025, 3, 1)
    raw = empty_raw().reindex(range(3))
    raw = raw.assign(date=pd.Timestamp(day), keyword_id=[1.0, None, 3.0], source_file="a.csv", source_row=[2, 3, 4])
    store.write_partition("raw", day, raw.astype(raw_dtypes()))
    empty = store.empty_partition("raw", day)
    assert empty.empty and empty.dtypes.to_dict() == store.read_partitions("raw", [day]).dtypes.to_dict()
    assert {name: str(dtype) for name, dtype in empty.dtypes.items()} == raw_dtypes()
