"""A landing zone that a careless or hostile user fills: huge files, gzip bombs, links out of the zone, garbled files
beside good ones, files still being written, exports cut short. Each rule holds on a local folder and on an S3
prefix (moto's S3 server on loopback, read through the platform's own S3 settings)."""

import datetime as dt
import gzip
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
import pytest

from assets import ALL_ASSETS, ALL_CHECKS
from daily_bids.ingest.landing import (
    MB,
    LandingFileError,
    ReadLimits,
    files_covering,
    read_landing_file,
    refresh_index,
    unreadable_files,
)
from daily_bids.settings import Settings
from daily_bids.storage.warehouse import S3Options, filesystem_for
from resources import build_resources
from servers.s3_server import REGION, moto_server
from support.landing_files import google_ads_export, snake_case_rows, write_csv

DAY = dt.date(2025, 4, 1)
ROWS = [
    '2025-04-01,101,red boots,Camp,Group,Exact match,"1,200",30,$12.00,2,$80.00',
    "2025-04-01,102,blue tent,Camp,Group,Broad match,800,20,$8.00,0,$0.00",
]
S3_KEYS = {"AWS_ACCESS_KEY_ID": "landing-test", "AWS_SECRET_ACCESS_KEY": "landing-test-secret"}


@dataclass
class Zone:
    """A landing zone the tests drop files into, as the landing source reads it: `uri` (a folder or s3://bucket/
    prefix), its filesystem and root, and the settings that point a deployment at it."""

    uri: str
    settings: dict[str, str]

    def __post_init__(self):
        self.fs, self.root = filesystem_for(
            self.uri, S3Options(endpoint_url=self.settings.get("BIDS_S3_ENDPOINT_URL", ""))
        )

    def drop(self, file: Path, name: str | None = None) -> str:
        """Copies a file the test wrote into the zone; returns its path there."""
        path = f"{self.root}/{name or file.name}"
        with self.fs.open_output_stream(path, compression=None) as out:  # the bytes as they are, .gz included
            out.write(file.read_bytes())
        return path

    def read(self, path: str, **kwargs):
        return read_landing_file(self.fs, path, **kwargs)

    def index(self, previous=None, settle_seconds: float = 0.0):
        return refresh_index(self.fs, self.root, previous, self.read, settle_seconds)


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def zone(request, tmp_path, monkeypatch) -> Zone:
    if request.param == "local":
        (tmp_path / "zone").mkdir()
        return Zone(str(tmp_path / "zone"), {})
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    for name, value in S3_KEYS.items():  # credentials come from the environment only
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=bucket)
    return Zone(f"s3://{bucket}/exports", {"BIDS_S3_ENDPOINT_URL": endpoint})


def test_a_gzip_bomb_is_stopped_while_it_decompresses(tmp_path, zone):
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"date,keyword_id,impressions,clicks\n" + b"0" * (200 * MB), compresslevel=9))
    assert bomb.stat().st_size < MB
    path = zone.drop(bomb)
    tracemalloc.start()
    with pytest.raises(LandingFileError, match="decompresses to more than 16 MB.*BIDS_LANDING_MAX_UNCOMPRESSED_MB"):
        zone.read(path, limits=ReadLimits(max_uncompressed_bytes=16 * MB))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * MB  # stopped at the cap, not after inflating 200 MB


def test_a_gzip_bomb_of_valid_rows_is_stopped_before_its_rows_pile_up(tmp_path, zone):
    # Under the decompression cap, 12M rows would be parsed into a frame before the cap stopped them; a report
    # never gzips 100:1, so the ratio stops it once 16 MB are out, on a folder and an object store alike.
    bomb = tmp_path / "rows.csv.gz"
    rows = b"date,keyword_id,impressions,clicks\n" + b"2025-04-01,1,10,1\n" * (12 * 1024 * 1024)
    bomb.write_bytes(gzip.compress(rows, compresslevel=9))
    path = zone.drop(bomb)
    with pytest.raises(LandingFileError, match=r"rows.csv.gz: inflates more than 100 times over \(\d+ MB from"):
        zone.read(path)
    index, _ = zone.index()
    assert "inflates more than 100 times over" in unreadable_files(index)[path]  # named, and no day is covered


def test_an_oversized_file_is_refused_while_it_streams(tmp_path, zone):
    big = write_csv(tmp_path / "big.csv", snake_case_rows([DAY], keywords=range(1, 40_001)))
    assert big.stat().st_size > 2 * MB
    path = zone.drop(big)
    with pytest.raises(LandingFileError, match=r"big.csv: larger than 1 MB \(BIDS_LANDING_MAX_FILE_MB\)"):
        zone.read(path, limits=ReadLimits(max_file_bytes=MB))


def test_links_and_paths_out_of_the_landing_zone_are_refused(tmp_path):  # object stores have no links
    secret = tmp_path / "secret.csv"
    write_csv(secret, snake_case_rows([DAY]))
    root = tmp_path / "landing"
    root.mkdir()
    write_csv(root / "good.csv", snake_case_rows([DAY]))
    (root / "leak.csv").symlink_to(secret)
    index, _ = Zone(str(root), {}).index()
    refused = unreadable_files(index)
    assert list(refused) == [str(root / "leak.csv")] and "symbolic link" in refused[str(root / "leak.csv")]
    assert files_covering(index, [DAY]) == [str(root / "good.csv")]


def test_a_bad_file_fails_no_other_files_days(tmp_path, zone):
    good = zone.drop(write_csv(tmp_path / "good.csv", snake_case_rows([DAY])))
    (tmp_path / "garbled.csv.gz").write_bytes(b"\x1f\x8b this is not gzip")
    garbled = zone.drop(tmp_path / "garbled.csv.gz")
    index, changed = zone.index()  # no error raised for everyone
    assert len(changed) == 2
    assert "garbled.csv.gz: not a readable gzip file" in unreadable_files(index)[garbled]
    assert files_covering(index, [DAY]) == [good]


def test_a_file_still_being_written_waits_until_it_settles_and_a_change_is_read_again(tmp_path, zone):
    settle = 2  # seconds; an object store's modification times are whole seconds
    path = zone.drop(write_csv(tmp_path / "today.csv", snake_case_rows([DAY])))
    index, changed = zone.index(settle_seconds=settle)
    assert index.empty and changed == []  # modified just now: not read yet
    time.sleep(settle + 1)
    index, changed = zone.index(settle_seconds=settle)
    assert [f.path for f in changed] == [path] and int(index["rows"].sum()) == 40
    # The file grows after it was read (the tool exporting it appends a day): read again once it has settled.
    zone.drop(write_csv(tmp_path / "today.csv", snake_case_rows([DAY, DAY + dt.timedelta(days=1)])))
    again, changed = zone.index(index, settle_seconds=settle)
    assert changed == []  # not settled yet: not read
    time.sleep(settle + 1)
    again, changed = zone.index(index, settle_seconds=settle)
    assert [f.path for f in changed] == [path] and int(again["rows"].sum()) == 80


def test_an_export_states_whether_it_is_complete(tmp_path, zone):
    complete = zone.drop(google_ads_export(tmp_path / "complete.csv", ROWS, total='"2,000",50'))
    assert zone.read(complete).attrs["completeness"] == ""
    wrong = zone.drop(google_ads_export(tmp_path / "wrong.csv", ROWS, total='"2,000",49'))
    assert zone.read(wrong).attrs["completeness"] == "its Total line states 49 clicks but its rows sum to 50"
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join((tmp_path / "complete.csv").read_text().splitlines()[:4]) + "\n")  # before the Total
    assert "without its Total line" in zone.read(zone.drop(cut)).attrs["completeness"]
    plain = zone.drop(write_csv(tmp_path / "plain.csv", snake_case_rows([DAY])))
    assert zone.read(plain).attrs["completeness"] == ""  # plain files state no totals


def test_a_day_whose_export_was_cut_short_is_blocked(tmp_path, zone, monkeypatch):
    export = google_ads_export(tmp_path / "full.csv", ROWS, total='"2,000",50')
    (tmp_path / "april.csv").write_text("\n".join(export.read_text().splitlines()[:4]) + "\n")
    zone.drop(tmp_path / "april.csv")
    for name, value in {
        "BIDS_SOURCE": "landing",
        "BIDS_LANDING_URI": zone.uri,
        "BIDS_LANDING_SETTLE_SECONDS": "0",
        "BIDS_WAREHOUSE": str(tmp_path / "warehouse"),
        **zone.settings,
    }.items():
        monkeypatch.setenv(name, value)
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=[ALL_ASSETS[0], ALL_ASSETS[1]],
        resources=build_resources(Settings()),
        partition_key=DAY.isoformat(),
        raise_on_error=False,
    )
    (verdict,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_report_complete"]
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR
    assert "april.csv: a Google Ads export without its Total line" in verdict.description
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == {"raw_keyword_report"}
