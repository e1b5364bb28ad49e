"""The warehouse on S3: the same graph against a real S3 API server (moto in server mode) on loopback."""

import datetime as dt

import boto3
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from assets import HISTORY_ASSETS
from daily_bids.settings import Settings
from resources import build_resources
from servers.s3_server import REGION, moto_server
from support.deployment import materialize_range

DAYS = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(5)]


@pytest.fixture
def s3_server(monkeypatch):
    with moto_server() as endpoint:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "daily-bids",
            "AWS_SECRET_ACCESS_KEY": "daily-bids-secret",
            "AWS_DEFAULT_REGION": REGION,
            "BIDS_S3_ENDPOINT_URL": endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        yield endpoint


def test_history_round_trips_through_an_s3_warehouse(s3_server, monkeypatch):
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="bids")
    monkeypatch.setenv("BIDS_WAREHOUSE", "s3://bids/prod")
    monkeypatch.setenv("BIDS_SIM_KEYWORDS", "300")
    resources = build_resources(Settings())
    result = materialize_range(HISTORY_ASSETS, DAYS[0], DAYS[-1], resources)
    assert result.success

    store = resources["warehouse"].warehouse()
    assert store.list_partitions("keyword_features") == DAYS
    # A shard's columns, read from S3 (each small file in one request) as from a local disk.
    shard = store.read_partitions(
        "keyword_features", DAYS[:2], columns=["keyword_id", "clicks_sum_7d"], keyword_range=(100_100, 100_200)
    )
    whole = store.read_partitions("keyword_features", DAYS[:2])
    expected = whole[whole["keyword_id"].between(100_100, 100_199)][["keyword_id", "clicks_sum_7d", "date"]]
    assert len(shard) > 0 and sorted(shard.columns) == sorted(expected.columns)
    pd.testing.assert_frame_equal(shard[expected.columns].reset_index(drop=True), expected.reset_index(drop=True))
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket="bids")["Contents"]}
    assert "prod/validated_keyword_report/date=2025-01-03/data.parquet" in keys
    filesystem = pafs.S3FileSystem(endpoint_override=s3_server, scheme="http", region="us-east-1")
    table = ds.dataset("bids/prod/raw_keyword_report", filesystem=filesystem, partitioning="hive").to_table()
    assert table.num_rows == len(store.read_partitions("raw_keyword_report", DAYS))
    metadata = result.asset_materializations_for_node("raw_keyword_report")[0].metadata
    assert metadata["path"].value == "s3://bids/prod/raw_keyword_report"


def test_a_missing_bucket_is_named(s3_server, monkeypatch):
    monkeypatch.setenv("BIDS_WAREHOUSE", "s3://no-such-bucket/x")
    with pytest.raises(ValueError, match="'no-such-bucket'.*does not exist"):
        build_resources(Settings())["warehouse"].warehouse()


def test_a_streamed_partition_that_fails_half_way_leaves_the_old_object(s3_server, monkeypatch):
    import pandas as pd

    from daily_bids.storage.warehouse import S3Options, Warehouse

    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="bids")
    store = Warehouse(
        "s3://bids/stream", S3Options(endpoint_url=s3_server, access_key="daily-bids", secret_key="daily-bids-secret")
    )
    day = DAYS[0]
    store.write_partition("bids", day, pd.DataFrame({"keyword_id": [1, 2], "bid": [0.5, 0.6]}))
    with pytest.raises(RuntimeError, match="half-way"), store.partition_writer("bids", day) as writer:
        writer.write(pd.DataFrame({"keyword_id": [3], "bid": [0.7]}))
        raise RuntimeError("the scoring broke half-way")
    assert store.read_partitions("bids", [day])["keyword_id"].tolist() == [1, 2]
    with store.partition_writer("bids", day) as writer:  # a streamed write that completes replaces it
        for keyword in (3, 4):
            writer.write(pd.DataFrame({"keyword_id": [keyword], "bid": [0.7]}))
    assert store.read_partitions("bids", [day])["keyword_id"].tolist() == [3, 4]
    assert list(store.iter_partition("bids", day, 1))[1]["keyword_id"].tolist() == [4]


def test_bounded_retries_ride_out_errors_and_stalls_then_give_up_leaving_the_old_object(s3_server, monkeypatch):
    import pandas as pd

    from servers.fault_proxy import FaultProxy

    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="bids")
    attempts = 4
    with FaultProxy(s3_server, seed=3, shares={"500": 0.15, "503": 0.15}, stall_seconds=3) as proxy:
        for name, value in {
            "BIDS_S3_ENDPOINT_URL": proxy.endpoint,
            "BIDS_WAREHOUSE": "s3://bids/faults",
            "BIDS_S3_TIMEOUT_SECONDS": "1",
            "BIDS_S3_MAX_ATTEMPTS": str(attempts),
        }.items():
            monkeypatch.setenv(name, value)
        store = build_resources(Settings())["warehouse"].warehouse()  # boto3's HeadBucket, then pyarrow: both retry
        frame = pd.DataFrame({"keyword_id": [1, 2], "bid": [0.5, 0.6]})
        for day in DAYS[:3]:
            store.write_partition("bids", day, frame)
            pd.testing.assert_frame_equal(store.read_partitions("bids", [day]).drop(columns="date"), frame)
        assert proxy.faults["500"] and proxy.faults["503"], proxy.faults
        proxy.set_faults({"stall": 0.3})  # a stalled request is abandoned after the timeout and sent again
        for day in DAYS[:3]:
            assert store.read_partitions("bids", [day])["keyword_id"].tolist() == [1, 2]
        assert proxy.faults["stall"], proxy.faults
        proxy.set_faults({})
        proxy.fail_writes()
        with pytest.raises(OSError):
            store.write_partition("bids", DAYS[0], frame.assign(bid=9.0))
        assert proxy.faults["write_failure"] == attempts  # bounded: the first attempt and its retries, no more
        proxy.allow_writes()
        assert store.read_partitions("bids", [DAYS[0]])["bid"].tolist() == [0.5, 0.6]


def test_the_landscapes_samples_are_kept_on_s3_and_derived_again_once_a_day_changed(s3_server):
    """S3 gives each object's modification time, so a kept sample day is recognised as the report day's it was derived
    from, and a restated report day is derived again (one object per day stays)."""
    from daily_bids.bidding.landscape import in_training_sample
    from daily_bids.bidding.report_history import HISTORY_COLUMNS, sampled_history
    from daily_bids.simulator.market import AdMarketSimulator
    from daily_bids.storage import tables
    from daily_bids.storage.warehouse import S3Options, Warehouse

    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="bids")
    store = Warehouse(
        "s3://bids/kept", S3Options(endpoint_url=s3_server, access_key="daily-bids", secret_key="daily-bids-secret")
    )
    simulator = AdMarketSimulator(seed=3, keywords=400)
    reports = {day: simulator.report(day)[["date", *HISTORY_COLUMNS]] for day in DAYS}
    for day, report in reports.items():
        store.write_partition(tables.VALIDATED_REPORT, day, report)

    def expected() -> pd.DataFrame:
        whole = store.read_partitions(tables.VALIDATED_REPORT, DAYS, HISTORY_COLUMNS)
        return whole[in_training_sample(whole["keyword_id"].to_numpy(), 2)].reset_index(drop=True)

    first = sampled_history(store, DAYS[-1], 64, max_keywords=100)  # 400 keywords: one in four
    assert first.halvings == 2 and first.read_whole == DAYS
    again = sampled_history(store, DAYS[-1], 64, max_keywords=100)
    assert again.read_whole == []
    pd.testing.assert_frame_equal(again.reports, expected())

    store.write_partition(tables.VALIDATED_REPORT, DAYS[2], reports[DAYS[2]].iloc[:-40])  # restated: 40 rows fewer
    restated = sampled_history(store, DAYS[-1], 64, max_keywords=100)
    assert restated.read_whole == [DAYS[2]]
    pd.testing.assert_frame_equal(restated.reports, expected())
    kept = client.list_objects_v2(Bucket="bids", Prefix=f"kept/{tables.LANDSCAPE_SAMPLE}/date={DAYS[2]}/")
    assert len([item for item in kept["Contents"] if not item["Key"].endswith("/")]) == 1  # beside a folder marker
