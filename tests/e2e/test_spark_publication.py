"""The Ads Editor CSV on Spark against the local engine: the same file, byte for byte, from a bids partition of several
row groups with text a spreadsheet would run, quotes, commas, other scripts, null bids, IDs near 2**62 and a currency
without decimals; from an empty partition; from an older one without criterion_id; from a run's held partition; with
the warehouse on S3 (moto); and on a standalone cluster (tests/e2e/test_spark_cluster.py's)."""

import csv
import datetime as dt
import io
import shutil
import time

import boto3
import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

# The standalone master and worker of test_spark_cluster.py, started for this module's cluster case.
from test_spark_cluster import cluster  # noqa: F401 (a fixture, used by its name)

import daily_bids.progress
from daily_bids import currency as currencies
from daily_bids.schema import NOT_REPORTED
from daily_bids.serving.ads_editor import HEADER
from daily_bids.serving.publishing import write_ads_editor_csv
from daily_bids.serving.spark_publishing import write_ads_editor_csv_on_spark
from daily_bids.settings import S3Options
from daily_bids.storage import tables
from daily_bids.storage.warehouse import SPARK_STAGING_FOLDER, Warehouse
from servers.s3_server import REGION, moto_server
from support.spark_sessions import spark_session

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")

DAY, EMPTY, OLD = dt.date(2025, 4, 1), dt.date(2025, 4, 2), dt.date(2025, 4, 3)
ROW_GROUPS, ROWS_PER_GROUP = 5, 13
BATCH_ROWS = 5  # batches that end inside a row group
TEXT_COLUMNS = ("campaign_id", "campaign", "ad_group_id", "ad_group", "keyword", "match_type")
TRICKY_TEXT = [
    "red shoes",
    "shoes, red",
    'say "hi"',
    '"',
    "=1+1",
    "+49 boots",
    "-20% off",
    "@home",
    "\t=cmd",
    "line\r\nbreak",
    "sep\u2028here",
    "מגפיים אדומים",
    "boots 🥾",
    "ünïcödé",
    "",
    NOT_REPORTED,
    None,
]
BIDS = [1.005, 0.1 + 0.2, 2.675, 0.125, 12.5, 0.5, float("nan"), 0.0, 1234567.891, 99.995, 7.0]


def bids_frames() -> list[pd.DataFrame]:
    """The day's bids, a frame a row group. Keyword IDs are 2**62 and up (a criterion's later ad groups); criterion
    IDs are unique too, some with leading zeros, some empty, missing or not reported (keyword_id is then the Keyword
    ID), so every line names its row. One row group has no criterion ID at all, and one no name of any kind."""
    rows = ROW_GROUPS * ROWS_PER_GROUP
    n = len(TRICKY_TEXT)

    def criterion(i: int) -> str | None:
        return [str(2**62 - 1 - i), f"00{1000 + i}", "", None, NOT_REPORTED, str(10**17 + i)][i % 6]

    frame = pd.DataFrame(
        {
            "keyword_id": np.array([2**62 + i for i in range(rows)], dtype="int64"),
            "criterion_id": pd.array([criterion(i) for i in range(rows)], dtype="string"),
            **{
                column: pd.array([TRICKY_TEXT[(i + 3 * shift) % n] for i in range(rows)], dtype="string")
                for shift, column in enumerate(TEXT_COLUMNS)
            },
            "bid": [BIDS[i % len(BIDS)] for i in range(rows)],
            "status": pd.array(["changed"] * rows, dtype="string"),  # a column the sheet does not read
        }
    )
    frames = [frame.iloc[i : i + ROWS_PER_GROUP].reset_index(drop=True) for i in range(0, rows, ROWS_PER_GROUP)]
    frames[1]["criterion_id"] = pd.array([None] * ROWS_PER_GROUP, dtype="string")
    for column in TEXT_COLUMNS:
        frames[3][column] = pd.array([None] * ROWS_PER_GROUP, dtype="string")
    return frames


def write_bids(store: Warehouse, day: dt.date, frames: list[pd.DataFrame]) -> None:
    with store.partition_writer(tables.BIDS, day) as writer:
        for frame in frames:
            writer.write(frame)


def with_bids(store: Warehouse) -> Warehouse:
    """The day's bids in row groups, an empty partition, and an older one written before criterion_id was kept."""
    frames = bids_frames()
    write_bids(store, DAY, frames)
    write_bids(store, EMPTY, [frames[0].iloc[0:0]])
    write_bids(store, OLD, [frame.drop(columns=["criterion_id", "status"]) for frame in frames[:3]])
    assert store.partition_row_groups(tables.BIDS, DAY) == ROW_GROUPS
    return store


def expected_ids(frames: list[pd.DataFrame]) -> list[str]:
    """Each row's Keyword ID, in order: its criterion ID as a number, else its keyword_id."""
    ids = []
    for frame in frames:
        criteria = frame["criterion_id"] if "criterion_id" in frame else [None] * len(frame)
        for criterion, keyword_id in zip(criteria, frame["keyword_id"]):
            usable = criterion is not None and criterion is not pd.NA and criterion not in ("", NOT_REPORTED)
            ids.append(str(int(criterion)) if usable else str(keyword_id))
    return ids


def keyword_ids_in(sheet: bytes) -> list[str]:
    return [row["Keyword ID"] for row in csv.DictReader(io.StringIO(sheet.decode("utf-8"), newline=""))]


def staged_files(store: Warehouse) -> list[str]:
    staging = pafs.FileSelector(store.path(SPARK_STAGING_FOLDER), allow_not_found=True, recursive=True)
    return [info.path for info in store.fs.get_file_info(staging) if info.type == pafs.FileType.File]


@pytest.fixture(scope="module")
def spark():
    with spark_session("local[2]") as session:
        yield session


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Warehouse:
    return with_bids(Warehouse(str(tmp_path_factory.mktemp("publication") / "warehouse")))


def check_parity(spark, store: Warehouse, day: dt.date, currency: str = "USD", timing: str = "local[2]") -> bytes:
    """The Spark engine's file is the local engine's, byte for byte, and leaves no staging; returns its bytes."""
    name = f"{day}-{currency}-{time.monotonic_ns()}"
    write_ads_editor_csv(store, tables.BIDS, day, f"exports/{name}-local.csv", BATCH_ROWS, currency)
    started = time.perf_counter()
    write_ads_editor_csv_on_spark(spark, store, tables.BIDS, day, f"exports/{name}-spark.csv", BATCH_ROWS, currency)
    print(f"\nAds Editor CSV for {day} on Spark, {timing}: {time.perf_counter() - started:.1f} s")
    sheet = store.read_bytes(f"exports/{name}-spark.csv")
    assert sheet == store.read_bytes(f"exports/{name}-local.csv")
    assert sheet.startswith(HEADER)
    assert staged_files(store) == []
    return sheet


@pytest.mark.parametrize("currency", ["USD", "JPY"])
def test_a_sheet_of_several_row_groups_is_the_local_engines_byte_for_byte(spark, store, currency, monkeypatch):
    monkeypatch.setattr(daily_bids.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    lines: list[str] = []
    relative = f"exports/progress-{currency}.csv"
    write_ads_editor_csv_on_spark(spark, store, tables.BIDS, DAY, relative, BATCH_ROWS, currency, lines.append)
    sheet = check_parity(spark, store, DAY, currency)
    assert store.read_bytes(relative) == sheet
    # Every row once, in order: the Keyword IDs are unique, and the sheet has the header and a line per row.
    assert keyword_ids_in(sheet) == expected_ids(bids_frames())
    assert len(set(keyword_ids_in(sheet))) == ROW_GROUPS * ROWS_PER_GROUP
    assert any(
        line.startswith(f"Ads Editor CSV for {DAY} on Spark (local[2]): {ROW_GROUPS} row group") for line in lines
    )
    copied = [line for line in lines if line.startswith(f"writing the Ads Editor CSV for {DAY}: ")]
    assert copied and all(f" of {ROW_GROUPS * ROWS_PER_GROUP:,} rows (" in line for line in copied), lines


def test_an_empty_partition_gives_the_header_alone(spark, store):
    assert check_parity(spark, store, EMPTY) == HEADER


def test_an_older_partition_without_criterion_id_takes_keyword_id(spark, store):
    sheet = check_parity(spark, store, OLD, "JPY")
    assert keyword_ids_in(sheet) == [str(2**62 + i) for i in range(3 * ROWS_PER_GROUP)]


def test_a_runs_held_partition_is_the_one_read(spark, tmp_path):
    """Bids held for their checks are what the run publishes: the tasks read them as the driver does."""
    store = with_bids(Warehouse(str(tmp_path / "warehouse")))
    held = store.holding("run-1", {tables.BIDS: ["bids_checked"]})
    write_bids(held, DAY, bids_frames()[2:4])
    sheet = check_parity(spark, held, DAY)
    assert keyword_ids_in(sheet) == expected_ids(bids_frames()[2:4])


def test_a_sheet_that_fails_in_a_task_never_appears(spark, tmp_path):
    """A task's error reaches the caller; no file is written, and the run's staging is gone."""
    store = Warehouse(str(tmp_path / "warehouse"))
    frames = bids_frames()
    frames[-1]["criterion_id"] = pd.array(["not an ID"] * ROWS_PER_GROUP, dtype="string")
    write_bids(store, DAY, frames)
    with pytest.raises(Exception, match="not an ID"):  # formatted by a task, not the driver
        write_ads_editor_csv_on_spark(spark, store, tables.BIDS, DAY, "exports/bids.csv")
    assert not store.exists("exports/bids.csv")
    assert staged_files(store) == []


def test_bids_without_a_column_the_sheet_needs_are_refused_as_the_local_engine_refuses_them(spark, tmp_path):
    """Before any task starts, with the local engine's error; and an unknown currency likewise."""
    store = Warehouse(str(tmp_path / "warehouse"))
    write_bids(store, DAY, [frame.drop(columns="match_type") for frame in bids_frames()])
    with pytest.raises(KeyError) as local:
        write_ads_editor_csv(store, tables.BIDS, DAY, "exports/bids.csv")
    with pytest.raises(KeyError) as on_spark:
        write_ads_editor_csv_on_spark(spark, store, tables.BIDS, DAY, "exports/bids.csv")
    assert str(on_spark.value) == str(local.value)
    with pytest.raises(currencies.UnknownCurrencyError):
        write_ads_editor_csv_on_spark(spark, with_bids(store), tables.BIDS, DAY, "exports/bids.csv", currency="XYZ")
    assert not store.exists("exports/bids.csv") and staged_files(store) == []


def test_a_sheet_with_the_warehouse_on_s3(spark, store):
    """Tasks read the bids and write their parts with pyarrow's S3 filesystem: no Hadoop jars."""
    with moto_server() as endpoint:
        boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
        ).create_bucket(Bucket="bids")
        options = S3Options(endpoint_url=endpoint, region=REGION, access_key="daily-bids", secret_key="secret")
        on_s3 = with_bids(Warehouse("s3://bids/prod", options))
        assert check_parity(spark, on_s3, DAY, "JPY", "local[2], S3") == check_parity(spark, store, DAY, "JPY")


def test_a_sheet_on_a_standalone_cluster(store, cluster):  # noqa: F811
    """Last in this file: the cluster's session replaces the local one."""
    with spark_session(cluster["url"]) as session:
        assert session.sparkContext.master == cluster["url"]
        check_parity(session, store, DAY, "JPY", "standalone cluster")
