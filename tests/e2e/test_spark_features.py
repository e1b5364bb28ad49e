"""The features step on Spark against the local engine: a first run that rebuilds the rolling state from the 28 report
days before it, then an incremental day from the stored state, in shards of a few keywords each. The features and
state partitions are the local engine's, exactly, on `local[2]`, with the warehouse on S3 (moto), and on a standalone
cluster (tests/e2e/test_spark_cluster.py's)."""

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
from daily_bids.features.keyword_features import keyword_shards
from daily_bids.features.spark_features import STAGING_FOLDER, write_features_on_spark
from daily_bids.features.writer import write_features
from daily_bids.settings import S3Options
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse
from servers.s3_server import REGION, moto_server
from support.spark_sessions import spark_session

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")

DAYS = [dt.date(2025, 4, 1) + dt.timedelta(days=i) for i in range(33)]
FIRST_RUN, THEN = DAYS[30:32], DAYS[32:33]  # a 28-day rebuild of the state, then a day from the stored state
KEYWORDS_PER_SHARD = 60  # 300 keywords: several shards, and groups that straddle them


@pytest.fixture(scope="module")
def reports() -> dict[dt.date, pd.DataFrame]:
    simulator = AdMarketSimulator(seed=5, keywords=300)
    return {day: simulator.report(day) for day in DAYS}


def _with_reports(store: Warehouse, reports: dict[dt.date, pd.DataFrame]) -> Warehouse:
    for day, report in reports.items():
        store.write_partition("reports", day, report)
    return store


@pytest.fixture(scope="module")
def local_run(reports, tmp_path_factory):
    """The local engine's partitions, and its runs."""
    store = _with_reports(Warehouse(str(tmp_path_factory.mktemp("local") / "warehouse")), reports)
    started = time.perf_counter()
    runs = [
        write_features(store, "reports", "features", days, DAYS[0], keywords_per_shard=KEYWORDS_PER_SHARD)
        for days in (FIRST_RUN, THEN)
    ]
    print(f"\nfeatures on the local engine: {time.perf_counter() - started:.1f} s")
    assert [run.state_reused for run in runs] == [False, True] and min(run.shards for run in runs) >= 4
    # Ad groups straddle shards, so the priors must pool keywords of other tasks.
    features = store.read_partitions("features", THEN)
    lows = [low for low, _ in keyword_shards(features["keyword_id"].to_numpy(), KEYWORDS_PER_SHARD)[1:]]
    shard = np.searchsorted(lows, features["keyword_id"].to_numpy(), side="right")
    assert (features.assign(shard=shard).groupby(["campaign", "ad_group"])["shard"].nunique() > 1).any()
    return store, runs


@pytest.fixture(scope="module")
def spark():
    with spark_session("local[2]") as session:
        yield session


def check_parity(spark, store: Warehouse, local_run, timing: str) -> list[str]:
    """The Spark engine's runs write the local engine's features and state partitions, and leave no staging; returns
    the runs' log lines."""
    local_store, local_runs = local_run
    lines: list[str] = []
    started = time.perf_counter()
    runs = [
        write_features_on_spark(
            spark, store, "reports", "features", days, DAYS[0], lines.append, keywords_per_shard=KEYWORDS_PER_SHARD
        )
        for days in (FIRST_RUN, THEN)
    ]
    print(f"\nfeatures on Spark, {timing}: {time.perf_counter() - started:.1f} s")
    assert runs == local_runs
    for table in ("features", tables.FEATURE_STATE):
        written = store.read_partitions(table, [*FIRST_RUN, *THEN])
        expected = local_store.read_partitions(table, [*FIRST_RUN, *THEN])
        assert len(written) == len(expected) > 0
        pd.testing.assert_frame_equal(written, expected, check_exact=True)
    assert any(line.startswith(f"features {FIRST_RUN[0]} to {FIRST_RUN[-1]} on Spark") for line in lines), lines
    staging = pafs.FileSelector(store.path(STAGING_FOLDER), allow_not_found=True, recursive=True)
    assert [info.path for info in store.fs.get_file_info(staging) if info.type == pafs.FileType.File] == []
    return lines


def test_features_on_local_spark_equal_the_local_engines(spark, reports, local_run, tmp_path, monkeypatch):
    monkeypatch.setattr(daily_bids.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    store = _with_reports(Warehouse(str(tmp_path / "warehouse")), reports)
    lines = check_parity(spark, store, local_run, "local[2]")
    # The driver's progress: the feature rows written of the range's, as the local engine counts them.
    rows = local_run[1][0].rows
    progress = [line for line in lines if line.startswith(f"features {FIRST_RUN[0]} to {FIRST_RUN[-1]}: ")]
    assert progress and all(f" of {rows:,} rows (" in line and line.endswith(" left") for line in progress), lines
    # The partitions are the same files, byte for byte: a shard a row group, the same schema and options.
    local_store, _ = local_run
    for table in ("features", tables.FEATURE_STATE):
        for day in [*FIRST_RUN, *THEN]:
            assert store.read_bytes(f"{table}/date={day}/data.parquet") == local_store.read_bytes(
                f"{table}/date={day}/data.parquet"
            ), (table, day)


def test_a_range_that_fails_in_a_task_replaces_none_of_its_days(spark, reports, tmp_path):
    """A task's error reaches the caller; nothing of the range is published, and the run's staging is gone."""
    store = _with_reports(Warehouse(str(tmp_path / "warehouse")), reports)
    write_features_on_spark(spark, store, "reports", "features", FIRST_RUN, DAYS[0], keywords_per_shard=60)
    unreported = DAYS[-1] + dt.timedelta(days=1)
    with pytest.raises(Exception, match="have not been materialized"):  # read by the tasks, not the driver
        write_features_on_spark(spark, store, "reports", "features", [DAYS[-1], unreported], DAYS[0])
    assert store.list_partitions("features") == store.list_partitions(tables.FEATURE_STATE) == FIRST_RUN
    staging = pafs.FileSelector(store.path(STAGING_FOLDER), allow_not_found=True, recursive=True)
    assert [info.path for info in store.fs.get_file_info(staging) if info.type == pafs.FileType.File] == []


def test_features_on_spark_with_the_warehouse_on_s3(spark, reports, local_run):
    """Tasks read and write the S3 warehouse with pyarrow's S3 filesystem: no Hadoop jars."""
    with moto_server() as endpoint:
        boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
        ).create_bucket(Bucket="bids")
        options = S3Options(endpoint_url=endpoint, region=REGION, access_key="daily-bids", secret_key="secret")
        store = _with_reports(Warehouse("s3://bids/prod", options), reports)
        check_parity(spark, store, local_run, "local[2], S3")


def test_bids_engine_spark_runs_validation_and_features_on_spark(spark, tmp_path, monkeypatch):
    """`BIDS_ENGINE=spark` takes a real run's validation and features steps to Spark: the partitions the local
    engine's run wrote."""
    import dagster as dg

    from assets import ALL_ASSETS, ALL_CHECKS, HISTORY_ASSETS
    from assets.features import keyword_features
    from assets.reports import validated_keyword_report
    from daily_bids.settings import Settings
    from resources import build_resources
    from support.deployment import materialize_range

    start, day = dt.date(2025, 1, 1), dt.date(2025, 1, 10)
    monkeypatch.setenv("BIDS_WAREHOUSE", str(tmp_path))
    monkeypatch.setenv("BIDS_SIM_KEYWORDS", "300")
    local = build_resources(Settings())
    assert materialize_range(HISTORY_ASSETS, start, day, local).success
    store = local["warehouse"].warehouse()
    made_again = (tables.VALIDATED_REPORT, tables.QUARANTINE, "keyword_features", tables.FEATURE_STATE)
    expected = {table: store.read_partitions(table, [day]) for table in made_again}
    for table in expected:  # forget the day, then have Spark make it again
        (tmp_path / table / f"date={day}" / "data.parquet").unlink()
    monkeypatch.setenv("BIDS_ENGINE", "spark")
    monkeypatch.setenv("BIDS_SPARK_MASTER", "local[2]")
    on_spark = build_resources(Settings())
    assert on_spark["scoring"].on_spark
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=[validated_keyword_report, keyword_features],
        resources=on_spark,
        partition_key=day.isoformat(),
        instance=instance,
    )
    assert result.success
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(f"features {day} on Spark (local[2])" in message for message in logged), logged
    assert any(f"validation {day} on Spark: " in message for message in logged), logged
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(store.read_partitions(table, [day]), frame)


def test_features_on_a_standalone_cluster(reports, local_run, tmp_path, cluster):  # noqa: F811
    """Last in this file: the cluster's session replaces the local one."""
    with spark_session(cluster["url"]) as session:
        assert session.sparkContext.master == cluster["url"]
        store = _with_reports(Warehouse(str(tmp_path / "warehouse")), reports)
        check_parity(session, store, local_run, "standalone cluster")
