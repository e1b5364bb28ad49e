"""The Spark engine on an S3 warehouse (moto's S3 API server on loopback) and on `local[2]`, without any Hadoop jar:
its tasks read and write the warehouse with pyarrow. The same predictions and bids as the local engine on the same S3
warehouse (tests/support/spark_parity.py's check), credentials that reach the tasks without reaching a log line,
and progress lines while the tasks run."""

import shutil

import boto3
import pyarrow.fs as pafs
import pytest

from daily_bids import progress
from daily_bids.bidding.policy import BidPolicy
from daily_bids.serving import spark_scoring
from daily_bids.settings import S3Options
from daily_bids.storage.warehouse import Warehouse
from servers.s3_server import REGION, moto_server
from support.spark_parity import DAY, check_parity
from support.spark_sessions import spark_session

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")
ACCESS_KEY, SECRET_KEY = "daily-bids", "daily-bids-secret-7f3a"


@pytest.fixture(scope="module")
def spark():
    """Started before the S3 server's credentials are set: its Python workers have no AWS credentials of their own,
    so the tasks reach S3 with the keys the driver's broadcast carries."""
    with spark_session("local[2]") as session:  # not an earlier module's session, which may have the credentials
        yield session


@pytest.fixture
def s3_warehouse(spark, warehouse_copy, monkeypatch):
    """The whole-graph warehouse, copied into a bucket of a moto server; the driver's credentials in its
    environment, as a deployment's AWS_* variables."""
    with moto_server() as endpoint:
        for name, value in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bids")
        store = Warehouse("s3://bids/prod", S3Options(endpoint_url=endpoint, region=REGION))
        pafs.copy_files(warehouse_copy.root, store.root, destination_filesystem=store.fs)
        yield store


@pytest.mark.parametrize(
    "kind, policy",
    [("xgboost_model", BidPolicy()), ("deep_model", BidPolicy(campaign_budgets={"Hiking 001": 3.0}))],
    ids=["xgboost_no_budget", "deep_budget"],
)
def test_the_spark_engine_on_an_s3_warehouse_gives_the_local_engines_predictions_and_bids(
    s3_warehouse, spark, kind, policy
):
    lines: list[str] = []
    check_parity(s3_warehouse, spark, kind, policy, log=lines.append)
    assert lines and not [line for line in lines if ACCESS_KEY in line or SECRET_KEY in line]


def test_the_tasks_get_the_drivers_static_keys_and_never_show_them(s3_warehouse, monkeypatch):
    address = spark_scoring.warehouse_address(s3_warehouse)
    assert address.uri == "s3://bids/prod" and address.s3.access_key == ACCESS_KEY  # what the workers lack
    assert SECRET_KEY not in repr(address) and ACCESS_KEY not in repr(address)
    assert address.filesystem().get_file_info(s3_warehouse.path("keyword_features")).type == pafs.FileType.Directory
    monkeypatch.setenv("AWS_SESSION_TOKEN", "temporary")  # temporary credentials stay behind: they would expire
    assert spark_scoring.warehouse_address(s3_warehouse).s3.access_key == ""


def test_spark_scoring_logs_its_progress_while_the_tasks_run(warehouse_copy, spark, monkeypatch):
    monkeypatch.setattr(progress, "PROGRESS_EVERY_SECONDS", 0)
    lines: list[str] = []
    check_parity(warehouse_copy, spark, "xgboost_model", BidPolicy(), log=lines.append)
    (started,) = [line for line in lines if line.startswith(f"scoring {DAY} on Spark")]
    rows = warehouse_copy.partition_rows("keyword_features", DAY)
    assert f"{rows:,} rows" in started
    following = [line for line in lines if line.startswith(f"scoring {DAY}: ")]
    assert following, lines
    assert all(" tasks (" in line and "tasks/s" in line and f"of {rows:,} rows)" in line for line in following)
