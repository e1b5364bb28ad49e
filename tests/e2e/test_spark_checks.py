"""The blocking checks' expectations on Spark against the local engine: the features suite on a passing range and on
a day with broken rows in several row groups, the bid suite on bids written a frame (a row group) at a time, with the
warehouse on S3 (moto), and on a standalone cluster (tests/e2e/test_spark_cluster.py's). Every outcome equals the
local engine's field for field (counts, percent, samples, rows judged), and the verdict is the real one: a passing
suite passes, a broken one fails with the broken rows' counts and samples."""

import datetime as dt
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
import daily_bids.spark_tasks
from daily_bids.features.writer import write_features
from daily_bids.quality import expectations as quality
from daily_bids.quality.spark_expectations import run_expectations_on_spark
from daily_bids.settings import S3Options
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage.warehouse import SPARK_STAGING_FOLDER, MissingPartitionsError, Warehouse
from servers.s3_server import REGION, moto_server
from support.spark_sessions import spark_session

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")

DAYS = [dt.date(2025, 4, 1), dt.date(2025, 4, 2)]
# 300 keywords in shards of 100: three row groups a day. (A task's validation of the features suite costs about a
# second whatever its rows, so a few row groups keep the module fast and still put broken rows in several of them.)
KEYWORDS_PER_SHARD = 100
MIN_BID, MAX_BID = 0.05, 20.0
BID_ROWS = 20  # a bids frame, written as one row group


@pytest.fixture(scope="module")
def spark():
    with spark_session("local[2]") as session:
        yield session


@pytest.fixture(scope="module")
def features_store(tmp_path_factory) -> Warehouse:
    """Two days of features, as the features step writes them: a keyword shard a row group."""
    simulator = AdMarketSimulator(seed=5, keywords=300)
    store = Warehouse(str(tmp_path_factory.mktemp("features") / "warehouse"))
    for day in DAYS:
        store.write_partition("reports", day, simulator.report(day))
    write_features(store, "reports", "features", DAYS, DAYS[0], keywords_per_shard=KEYWORDS_PER_SHARD)
    assert all(store.partition_row_groups("features", day) == 3 for day in DAYS)
    return store


def _row_groups(store: Warehouse, table: str, day: dt.date) -> list[pd.DataFrame]:
    return [
        next(store.iter_partition(table, day, quality.BATCH_ROWS, row_groups=[group]))
        for group in range(store.partition_row_groups(table, day))
    ]


def _rewrite(store: Warehouse, table: str, day: dt.date, frames: list[pd.DataFrame]) -> None:
    with store.partition_writer(table, day) as out:
        for frame in frames:
            out.write(frame)
    assert store.partition_row_groups(table, day) == len(frames)


@pytest.fixture(scope="module")
def broken_features(features_store, tmp_path_factory) -> tuple[Warehouse, dict[str, list[int]]]:
    """The features with the second day's rows broken in each of its row groups: nulls (more than a sample's worth,
    over two row groups), a negative count, a history out of range, and a keyword repeated in the last row group.
    Also returns the broken rows' keyword IDs by rule, in row order."""
    store = Warehouse(str(tmp_path_factory.mktemp("broken") / "warehouse"))
    for day in DAYS:
        _rewrite(store, "features", day, _row_groups(features_store, "features", day))
    first, middle, last = _row_groups(store, "features", DAYS[1])
    first.loc[[2, 7, 11], "ctr_28d"] = np.nan
    last.loc[[0, 4, 9, 30], "ctr_28d"] = np.nan
    middle.loc[5, "cost_sum_28d"] = -3.5
    last.loc[12, "history_days"] = 40.0
    last.loc[20, "keyword_id"] = first.loc[1, "keyword_id"]
    _rewrite(store, "features", DAYS[1], [first, middle, last])
    broken = {
        "ctr_28d is never null": [*first.loc[[2, 7, 11], "keyword_id"], *last.loc[[0, 4], "keyword_id"]],
        "cost_sum_28d ≥ 0": [middle.loc[5, "keyword_id"]],
        "1 ≤ history_days ≤ 28": [last.loc[12, "keyword_id"]],
        "(date, keyword_id) is unique": [first.loc[1, "keyword_id"]] * 2,
    }
    return store, broken


def _bid_frames(day: dt.date, broken: bool) -> list[pd.DataFrame]:
    """Three row groups of bids that obey the rules, some without a known spread (the money rule skips them); the
    broken ones put a bid above the cap and at its value, a cost above the conservative value, a bid under the
    floor, an infinite value and a keyword bid twice in different row groups."""
    frames = []
    for group in range(3):
        ids = np.arange(group * BID_ROWS, (group + 1) * BID_ROWS, dtype="int64")
        frame = pd.DataFrame(
            {
                "date": pd.Timestamp(day),
                "keyword_id": ids,
                "bid": 1.0 + ids / 100,
                "expected_value_per_click": 2.5,
                "expected_cost_per_click": 0.9,
                "conservative_value_per_click": np.where(ids % 7 == 3, np.nan, 2.0),
            }
        )
        frames.append(frame)
    if broken:
        frames[0].loc[4, "bid"] = 25.0  # above the cap, and above its value per click
        frames[1].loc[6, "expected_cost_per_click"] = 2.2  # the money rule
        frames[2].loc[[3, 8], "bid"] = 0.01  # under the floor
        frames[2].loc[11, "expected_value_per_click"] = np.inf
        frames[2].loc[15, "keyword_id"] = frames[0].loc[9, "keyword_id"]
    return frames


def _write_bids(store: Warehouse) -> Warehouse:
    for day in DAYS:
        _rewrite(store, "bids", day, _bid_frames(day, broken=day == DAYS[1]))
    return store


BROKEN_BIDS = {  # the keyword IDs of the broken bids' rows, by rule
    "(date, keyword_id) is unique": [9, 9],
    "expected_value_per_click is finite": [51],
    "bid < expected_value_per_click": [4],
    "expected_cost_per_click ≤ conservative_value_per_click where known": [26],
    "0.05 ≤ bid ≤ 20": [4, 43, 48],
}


@pytest.fixture(scope="module")
def bids_store(tmp_path_factory) -> Warehouse:
    return _write_bids(Warehouse(str(tmp_path_factory.mktemp("bids") / "warehouse")))


def _local(store: Warehouse, table: str, suite, batch_rows: int = quality.BATCH_ROWS, days: list[dt.date] = DAYS):
    return quality.run_expectations_in_batches(store.iter_partitions(table, days, batch_rows), suite, table)


def _on_spark(spark, store: Warehouse, table: str, suite, batch_rows=quality.BATCH_ROWS, log=None, days=DAYS):
    started = time.perf_counter()
    outcomes = run_expectations_on_spark(spark, store, table, days, suite, table, log, batch_rows)
    print(f"\n{table} checked on Spark ({spark.sparkContext.master}): {time.perf_counter() - started:.1f} s")
    staging = pafs.FileSelector(store.path(SPARK_STAGING_FOLDER), allow_not_found=True, recursive=True)
    assert [info.path for info in store.fs.get_file_info(staging) if info.type == pafs.FileType.File] == []
    return outcomes


def _verdicts(outcomes: list[quality.Outcome]) -> dict[str, list[int]]:
    """The failing rules, each with its samples' keyword IDs."""
    return {o.expectation.description: [row["keyword_id"] for row in o.sample] for o in outcomes if not o.success}


def test_a_passing_features_range_passes_as_on_the_local_engine(spark, features_store, monkeypatch):
    monkeypatch.setattr(daily_bids.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(daily_bids.spark_tasks, "PROGRESS_POLL_SECONDS", 0.05)
    suite, lines = quality.features_suite(), []
    outcomes = _on_spark(spark, features_store, "features", suite, log=lines.append)
    assert outcomes == _local(features_store, "features", suite)
    assert all(o.success and o.judged_rows > 0 and not o.error for o in outcomes)
    rows = sum(features_store.partition_rows("features", day) for day in DAYS)
    assert outcomes[0].judged_rows == rows  # the uniqueness judged every row of both days
    # A line a poll while the tasks run: row groups checked of the range's six.
    progress = [line for line in lines if line.startswith("checking features on Spark: ")]
    assert progress and all(" of 6 row groups (" in line and line.endswith(" left") for line in progress), lines


def test_broken_features_fail_with_the_broken_rows_as_on_the_local_engine(spark, broken_features):
    store, broken = broken_features
    suite = quality.features_suite()
    outcomes = _on_spark(spark, store, "features", suite)
    assert outcomes == _local(store, "features", suite)
    assert _verdicts(outcomes) == broken
    by_rule = {o.expectation.description: o for o in outcomes}
    assert by_rule["ctr_28d is never null"].unexpected_count == 7  # over two row groups; the sample holds five
    assert by_rule["(date, keyword_id) is unique"].unexpected_count == 2
    assert [row["history_days"] for row in by_rule["1 ≤ history_days ≤ 28"].sample] == [40.0]


@pytest.mark.parametrize("batch_rows", [quality.BATCH_ROWS, 7], ids=["whole_days", "batches_inside_row_groups"])
def test_bids_breaking_the_caps_or_the_money_rule_fail_as_on_the_local_engine(spark, bids_store, batch_rows):
    """However the rows are cut (a batch of both days on the local engine, or batches of seven rows that straddle
    the row groups and days there and cut each row group in three on Spark), the outcomes are the same."""
    suite = quality.bid_suite(MIN_BID, MAX_BID)
    outcomes = _on_spark(spark, bids_store, "bids", suite, batch_rows)
    assert outcomes == _local(bids_store, "bids", suite, batch_rows) == _local(bids_store, "bids", suite)
    assert _verdicts(outcomes) == BROKEN_BIDS
    money = next(o for o in outcomes if o.expectation.description.startswith("expected_cost_per_click"))
    assert money.judged_rows < 2 * 3 * BID_ROWS  # rows without a known spread are not judged
    assert money.sample == [
        {
            "date": DAYS[1].isoformat(),
            "keyword_id": 26,
            "conservative_value_per_click": 2.0,
            "expected_cost_per_click": 2.2,
        }
    ]


def test_an_empty_day_among_the_days_is_judged_as_on_the_local_engine(spark, tmp_path):
    """A day without rows is a row group of none: it adds nothing to the counts, on either engine."""
    store = _write_bids(Warehouse(str(tmp_path / "warehouse")))
    empty = DAYS[-1] + dt.timedelta(days=1)
    store.write_partition("bids", empty, _bid_frames(empty, broken=False)[0].iloc[0:0])
    suite, days = quality.bid_suite(MIN_BID, MAX_BID), [DAYS[0], empty, DAYS[1]]
    outcomes = _on_spark(spark, store, "bids", suite, days=days)
    assert outcomes == _local(store, "bids", suite, days=days)
    assert _verdicts(outcomes) == BROKEN_BIDS
    assert _on_spark(spark, store, "bids", suite, days=[empty]) == _local(store, "bids", suite, days=[empty])


def test_broken_predictions_fail_as_on_the_local_engine(spark, tmp_path):
    """The predictions contract's suite on predictions a frame a row group, one of them with an unknown and a negative
    click count, a negative conversion count and an infinite value."""
    suite = quality.predictions_suite()
    store = Warehouse(str(tmp_path / "warehouse"))
    for day in DAYS:
        frames = []
        for group in range(3):
            ids = np.arange(group * BID_ROWS, (group + 1) * BID_ROWS, dtype="int64")
            clicks = 1.0 + ids / 10
            frame = pd.DataFrame({"date": pd.Timestamp(day), "keyword_id": ids, "expected_clicks": clicks})
            frame = frame.assign(expected_conversions=clicks / 20, expected_value=clicks * 1.5)
            frames.append(frame.assign(expected_value_per_click=1.5))
        if day == DAYS[0]:
            frames[0].loc[3, "expected_clicks"] = np.nan
            frames[1].loc[[2, 9], "expected_clicks"] = -1.0
            frames[2].loc[5, "expected_conversions"] = -0.5
            frames[2].loc[6, "expected_value"] = np.inf
        _rewrite(store, "predictions", day, frames)
    outcomes = _on_spark(spark, store, "predictions", suite)
    assert outcomes == _local(store, "predictions", suite)
    assert _verdicts(outcomes) == {
        "expected_clicks is never null": [3],
        "expected_clicks ≥ 0": [22, 29],
        "expected_conversions ≥ 0": [45],
        "expected_value is finite": [46],
    }


def test_a_share_rule_is_judged_on_every_row_group_together(spark, bids_store):
    """A seventh of the values per click are null (ids % 7 == 3): over the mostly-0.9 share, within the 0.85 one. Each
    is judged on the counts of every row group of both days, as great-expectations judges the days read whole."""
    shares = [
        quality.Expectation("ExpectColumnValuesToNotBeNull", {"column": column, "mostly": share}, "warn", f"{share}")
        for column in ("conservative_value_per_click",)
        for share in (0.9, 0.85)
    ]
    whole = quality.run_expectations(bids_store.read_partitions("bids", DAYS), shares, "bids")
    assert [o.success for o in whole] == [False, True]
    assert _on_spark(spark, bids_store, "bids", shares, batch_rows=7) == whole
    assert _local(bids_store, "bids", shares, batch_rows=7) == whole


def test_a_raw_report_judged_in_row_groups_gets_the_verdicts_of_the_whole_day_in_memory(spark, tmp_path):
    """The raw report's contract, as its check judges the stored day now, equals what the day read whole into memory
    gave, the way the check judged it before: 8.5% of the impressions null across two row groups (over the 5% share), a
    negative cost, more clicks than impressions, and a keyword repeated in another row group."""
    from daily_bids.schema import conform_raw

    store, day = Warehouse(str(tmp_path / "warehouse")), DAYS[0]
    report = AdMarketSimulator(seed=5, keywords=300).report(day)
    raw = conform_raw(
        report.assign(source_file="report.csv", source_row=np.arange(2, len(report) + 2), parse_errors=pd.NA)
    )
    raw.loc[90:113, "impressions"] = pd.NA  # 24 of 284 rows, in the first and second row groups
    raw.loc[150, "cost"] = -1.0
    raw.loc[220, "clicks"] = raw.loc[220, "impressions"] + 1
    raw.loc[280, ["ad_group_id", "keyword_id"]] = raw.loc[12, ["ad_group_id", "keyword_id"]].to_numpy()
    _rewrite(store, "raw", day, [raw.iloc[start : start + 100] for start in (0, 100, 200)])
    suite = quality.report_suite("raw", [day])
    whole = quality.run_expectations(store.read_partitions("raw", [day]), suite, "raw")
    assert _verdicts(whole) == {
        "at most 5% of impressions is null": raw.loc[90:94, "keyword_id"].tolist(),
        "cost ≥ 0": [raw.loc[150, "keyword_id"]],
        "clicks ≤ impressions": [raw.loc[220, "keyword_id"]],
        "(date, ad_group_id, keyword_id) is unique": [raw.loc[12, "keyword_id"]] * 2,
    }
    assert _on_spark(spark, store, "raw", suite, batch_rows=60, days=[day]) == whole
    assert _local(store, "raw", suite, batch_rows=60, days=[day]) == whole


def test_a_missing_day_is_refused_before_any_task(spark, bids_store):
    with pytest.raises(MissingPartitionsError, match="2025-04-03"):
        run_expectations_on_spark(spark, bids_store, "bids", [*DAYS, dt.date(2025, 4, 3)], [], "bids")


def test_checks_on_spark_with_the_warehouse_on_s3(spark, bids_store):
    """Tasks read the S3 warehouse and stage their kept columns there with pyarrow's S3 filesystem: no Hadoop jars."""
    suite = quality.bid_suite(MIN_BID, MAX_BID)
    with moto_server() as endpoint:
        boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
        ).create_bucket(Bucket="bids")
        options = S3Options(endpoint_url=endpoint, region=REGION, access_key="daily-bids", secret_key="secret")
        store = _write_bids(Warehouse("s3://bids/prod", options))
        outcomes = _on_spark(spark, store, "bids", suite)
    assert outcomes == _local(bids_store, "bids", suite)
    assert _verdicts(outcomes) == BROKEN_BIDS


def test_checks_on_a_standalone_cluster(bids_store, cluster):  # noqa: F811
    """Last in this file: the cluster's session replaces the local one; its one executor runs every task."""
    suite = quality.bid_suite(MIN_BID, MAX_BID)
    with spark_session(cluster["url"]) as session:
        assert session.sparkContext.master == cluster["url"]
        outcomes = _on_spark(session, bids_store, "bids", suite)
    assert outcomes == _local(bids_store, "bids", suite)
    assert _verdicts(outcomes) == BROKEN_BIDS
