"""Validation on Spark against `validate_report` of the whole range: two hostile days, one in keyword order (read by
ID range) and one shuffled (split into shard files first), in shards of a hundred rows. The validated rows, the
quarantine, the new keywords' IDs and the unreported metrics are the local engine's, exactly, on `local[2]`, with
the warehouse on S3 (moto), and on a standalone cluster (tests/e2e/test_spark_cluster.py's)."""

import shutil
import time

import boto3
import pandas as pd
import pyarrow.fs as pafs
import pytest

# The standalone master and worker of test_spark_cluster.py, started for this module's cluster case.
from test_spark_cluster import cluster  # noqa: F401 (a fixture, used by its name)

from daily_bids.ingest.stored_validation import validate_stored_on_spark
from daily_bids.ingest.validation import Plausibility
from daily_bids.progress import Progress
from daily_bids.settings import S3Options
from daily_bids.spark_tasks import run_tasks
from daily_bids.storage import tables
from daily_bids.storage.warehouse import SPARK_STAGING_FOLDER, Warehouse
from servers.s3_server import REGION, moto_server
from support.hostile_reports import (
    DAYS,
    assert_the_tables_of_the_whole_range,
    seen_pairs,
    store_hostile_range,
    validated_whole,
)
from support.spark_sessions import spark_session

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")


@pytest.fixture(scope="module")
def spark():
    with spark_session("local[2]") as session:
        yield session


def _days_one_in_order_one_shuffled(store: Warehouse) -> None:
    store_hostile_range(store, shuffled=False)
    in_order = store.read_partitions(tables.RAW_REPORT, DAYS[:1])
    store_hostile_range(store, shuffled=True)
    store.write_partition(tables.RAW_REPORT, DAYS[0], in_order)


def check_parity(spark, store: Warehouse) -> list[str]:
    """Spark's validation writes the whole range's tables, and leaves no staging; returns its log lines."""
    _days_one_in_order_one_shuffled(store)
    whole = validated_whole(store)
    lines: list[str] = []
    sharded = validate_stored_on_spark(
        spark,
        store,
        tables.RAW_REPORT,
        DAYS,
        Plausibility.from_contract(),
        tables.VALIDATED_REPORT,
        tables.QUARANTINE,
        log=lines.append,
        rows_per_shard=100,
    )
    assert sharded.shards > 10
    assert_the_tables_of_the_whole_range(store, sharded, whole)
    staging = pafs.FileSelector(store.path(SPARK_STAGING_FOLDER), allow_not_found=True, recursive=True)
    assert [info.path for info in store.fs.get_file_info(staging) if info.type == pafs.FileType.File] == []
    return lines


def test_validation_on_local_spark_gives_the_whole_ranges_tables(spark, tmp_path):
    lines = check_parity(spark, Warehouse(str(tmp_path / "warehouse")))
    assert any(f"validation {DAYS[0]} to {DAYS[-1]} on Spark: " in line for line in lines), lines


def test_validation_on_spark_with_the_warehouse_on_s3(spark):
    """Tasks read the raw days and stage their shards on S3 with pyarrow's S3 filesystem: no Hadoop jars."""
    with moto_server() as endpoint:
        boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
        ).create_bucket(Bucket="bids")
        options = S3Options(endpoint_url=endpoint, region=REGION, access_key="daily-bids", secret_key="secret")
        check_parity(spark, Warehouse("s3://bids/prod", options))


def test_a_shard_that_fails_in_its_task_replaces_nothing(spark, tmp_path):
    """A task's error reaches the caller; the stored tables stay as they were, and the run's staging is gone."""
    store = Warehouse(str(tmp_path / "warehouse"))
    _days_one_in_order_one_shuffled(store)
    before = store.read_partitions(tables.RAW_REPORT, DAYS)
    store.write_partitions(tables.VALIDATED_REPORT, DAYS, pd.DataFrame({"date": pd.to_datetime(DAYS), "x": [1, 2]}))
    broken = seen_pairs()
    broken.loc[0, "keyword_id"] = broken.loc[1, "keyword_id"]  # one ID for two pairs: the tasks that read it refuse
    store.write_table(tables.KEYWORD_KEYS, broken)
    with pytest.raises(Exception, match="more than one pair"):
        validate_stored_on_spark(
            spark, store, tables.RAW_REPORT, DAYS, Plausibility.from_contract(), tables.VALIDATED_REPORT, None
        )
    assert store.read_partitions(tables.VALIDATED_REPORT, DAYS)["x"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(store.read_partitions(tables.RAW_REPORT, DAYS), before)
    staging = pafs.FileSelector(store.path(SPARK_STAGING_FOLDER), allow_not_found=True, recursive=True)
    assert [info.path for info in store.fs.get_file_info(staging) if info.type == pafs.FileType.File] == []


def test_a_failed_jobs_other_tasks_end_before_its_error_reaches_the_caller(spark, tmp_path):
    """Spark fails a job at its first failed task while the others may still run; the caller cleans its staging up
    on the error, so no task may write after it (`run_tasks` cancels the job and waits for its tasks)."""

    def work(items):
        for _, item in items:
            if item == 0:
                time.sleep(0.5)
                raise RuntimeError("task zero broke")
            time.sleep(2)  # still running when the job fails
            (tmp_path / f"written-by-{item}").write_text("late")
            yield item

    with pytest.raises(Exception, match="task zero broke"):
        run_tasks(spark.sparkContext, [0, 1], work, Progress("two tasks", 2, lambda line: None), "one fails")
    at_the_error = sorted(path.name for path in tmp_path.iterdir())
    time.sleep(3)
    assert sorted(path.name for path in tmp_path.iterdir()) == at_the_error


def test_validation_on_a_standalone_cluster(tmp_path, cluster):  # noqa: F811
    """Last in this file: the cluster's session replaces the local one."""
    with spark_session(cluster["url"]) as session:
        assert session.sparkContext.master == cluster["url"]
        check_parity(session, Warehouse(str(tmp_path / "warehouse")))
