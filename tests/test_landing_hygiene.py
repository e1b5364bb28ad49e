"""A landing zone that a careless or hostile user fills: huge files, gzip bombs, links out of the zone, garbled files
beside good ones, files still being written, exports cut short."""

import datetime as dt
import gzip
import os
import time
import tracemalloc

import dagster as dg
import pyarrow.fs as pafs
import pytest

from assets import ALL_ASSETS, ALL_CHECKS
from daily_bids.landing import (
    MB, LandingFileError, ReadLimits, files_covering, read_landing_file, refresh_index, unreadable_files,
)
from landing_files import google_ads_export, snake_case_rows, write_csv
from resources import build_resources

LOCAL = pafs.LocalFileSystem()
DAY = dt.date(2025, 4, 1)
ROWS = ['2025-04-01,101,red boots,Camp,Group,Exact match,"1,200",30,$12.00,2,$80.00',
        '2025-04-01,102,blue tent,Camp,Group,Broad match,800,20,$8.00,0,$0.00']


def _read(path, **kwargs):
    return read_landing_file(LOCAL, str(path), **kwargs)


def _index(root, settle_seconds=0.0):
    return refresh_index(LOCAL, str(root), None, lambda path: _read(path), settle_seconds)


def test_a_gzip_bomb_is_stopped_while_it_decompresses(tmp_path):
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"date,keyword_id,impressions,clicks\n" + b"0" * (200 * MB), compresslevel=9))
    assert bomb.stat().st_size < MB
    tracemalloc.start()
    with pytest.raises(LandingFileError, match="decompresses to more than 16 MB.*BIDS_LANDING_MAX_UNCOMPRESSED_MB"):
        _read(bomb, limits=ReadLimits(max_uncompressed_bytes=16 * MB))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * MB  # stopped at the cap, not after inflating 200 MB


def test_an_oversized_file_is_refused_while_it_streams(tmp_path):
    big = write_csv(tmp_path / "big.csv", snake_case_rows([DAY], keywords=range(1, 40_001)))
    assert big.stat().st_size > 2 * MB
    with pytest.raises(LandingFileError, match=r"big.csv: larger than 1 MB \(BIDS_LANDING_MAX_FILE_MB\)"):
        _read(big, limits=ReadLimits(max_file_bytes=MB))


def test_links_and_paths_out_of_the_landing_zone_are_refused(tmp_path):
    secret = tmp_path / "secret.csv"
    write_csv(secret, snake_case_rows([DAY]))
    root = tmp_path / "landing"
    root.mkdir()
    write_csv(root / "good.csv", snake_case_rows([DAY]))
    (root / "leak.csv").symlink_to(secret)
    index, _ = _index(root)
    refused = unreadable_files(index)
    assert list(refused) == [str(root / "leak.csv")] and "symbolic link" in refused[str(root / "leak.csv")]
    assert files_covering(index, [DAY]) == [str(root / "good.csv")]


def test_a_bad_file_fails_no_other_files_days(tmp_path):
    write_csv(tmp_path / "good.csv", snake_case_rows([DAY]))
    (tmp_path / "garbled.csv.gz").write_bytes(b"\x1f\x8b this is not gzip")
    index, changed = _index(tmp_path)  # no error raised for everyone
    assert len(changed) == 2
    assert "garbled.csv.gz: not a readable gzip file" in unreadable_files(index)[str(tmp_path / "garbled.csv.gz")]
    assert files_covering(index, [DAY]) == [str(tmp_path / "good.csv")]


def test_a_file_still_being_written_waits_until_it_settles_and_a_change_is_read_again(tmp_path):
    path = write_csv(tmp_path / "today.csv", snake_case_rows([DAY]))
    index, changed = _index(tmp_path, settle_seconds=60)
    assert index.empty and changed == []  # modified just now: not read yet
    settled = time.time() - 120
    os.utime(path, (settled, settled))
    index, changed = _index(tmp_path, settle_seconds=60)
    assert [f.path for f in changed] == [str(path)] and int(index["rows"].sum()) == 40
    write_csv(path, snake_case_rows([DAY, DAY + dt.timedelta(days=1)]))  # the file grows after it was read
    os.utime(path, (settled + 1, settled + 1))
    again, changed = refresh_index(LOCAL, str(tmp_path), index, _read, 60)
    assert [f.path for f in changed] == [str(path)] and int(again["rows"].sum()) == 80


def test_an_export_states_whether_it_is_complete(tmp_path):
    complete = google_ads_export(tmp_path / "complete.csv", ROWS, total='"2,000",50')
    assert _read(complete).attrs["completeness"] == ""
    wrong = google_ads_export(tmp_path / "wrong.csv", ROWS, total='"2,000",49')
    assert _read(wrong).attrs["completeness"] == "its Total line states 49 clicks but its rows sum to 50"
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join(complete.read_text().splitlines()[:4]) + "\n")  # cut at a line end, before the Total
    assert "without its Total line" in _read(cut).attrs["completeness"]
    plain = write_csv(tmp_path / "plain.csv", snake_case_rows([DAY]))
    assert _read(plain).attrs["completeness"] == ""  # plain files state no totals


def test_a_day_whose_export_was_cut_short_is_blocked(tmp_path, landing):
    export = google_ads_export(tmp_path / "full.csv", ROWS, total='"2,000",50')
    (landing / "april.csv").write_text("\n".join(export.read_text().splitlines()[:4]) + "\n")
    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=[ALL_ASSETS[0], ALL_ASSETS[1]],
                            resources=build_resources(), partition_key=DAY.isoformat(), raise_on_error=False)
    (verdict,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_report_complete"]
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR
    assert "april.csv: a Google Ads export without its Total line" in verdict.description
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == {"raw_keyword_report"}
