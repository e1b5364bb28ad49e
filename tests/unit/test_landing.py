"""Reading users' report files: every malformed input gives a clear error naming the file, or a kept row that
validation quarantines with a reason."""

import datetime as dt
import gzip

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

import daily_bids.progress
from daily_bids.ingest import landing
from daily_bids.ingest.landing import (
    MB,
    LandingFileError,
    ReadLimits,
    read_landing_file,
    refresh_index,
    unreadable_files,
)
from daily_bids.ingest.validation import validate_report
from daily_bids.schema import conform_raw
from support.landing_files import (
    bigquery_export,
    bigquery_keyword_stats,
    bigquery_keywords,
    google_ads_export,
    long_export,
    peak_rss_reading,
    reference_rows,
    snake_case_rows,
    write_csv,
)

FS = pafs.LocalFileSystem()
D1, D2 = dt.date(2025, 4, 1), dt.date(2025, 4, 2)


def read(path, **kwargs):
    return read_landing_file(FS, str(path), **kwargs)


# Three keyword rows of a Google Ads export: 3,244 impressions and 117 clicks.
EXPORT_ROWS = [
    '2025-04-01,123,hiking boots,Hiking,Boots,Exact match,"1,234",56,$78.90,2,"$1,200.00"',
    "2025-04-01,124,tent,Camping,Tents,Phrase match,10,1,€ 0.50,0,--",
    '2025-04-02,123,hiking boots,Hiking,Boots,Exact match,"2,000",60,$80.10,1,$99.00',
]


def test_google_ads_ui_export_with_preamble_and_formatted_numbers_round_trips(tmp_path):
    path = google_ads_export(tmp_path / "export.csv", EXPORT_ROWS)
    raw = read(path)
    assert list(raw["keyword_id"]) == [123, 124, 123]  # the "Total: Account" line is not a row
    first = raw.iloc[0]
    assert (first["impressions"], first["clicks"], first["cost"], first["conversion_value"]) == (1234, 56, 78.9, 1200.0)
    assert raw.iloc[1]["cost"] == 0.5 and pd.isna(raw.iloc[1]["conversion_value"])
    assert list(raw["source_row"]) == [4, 5, 6]  # file line numbers, after the two preamble lines and the header
    assert (raw["source_file"] == str(path)).all()
    assert list(as_dates(raw)) == [D1, D1, D2]

    result = validate_report(raw, [D1, D2])
    assert list(result.valid["match_type"]) == ["Exact", "Exact"]  # "Exact match" normalized
    # "--" in a column the export fills on other rows is a missing value, not a zero: quarantined, with its line.
    assert result.quarantine[["keyword_id", "reason", "source_row"]].values.tolist() == [[124, "missing_value", 5]]


def as_dates(raw):
    return raw["date"].dt.date


def test_utf16_tab_separated_export_reads(tmp_path):
    text = "Keyword report\n" + "\n".join(
        ["Day\tKeyword ID\tImpr.\tClicks", "2025-04-01\t7\t1,000\t12", "2025-04-02\t7\t900\t9"]
    )
    path = tmp_path / "excel.csv"
    path.write_bytes(text.encode("utf-16"))
    raw = read(path)
    assert list(raw["impressions"]) == [1000, 900] and list(raw["clicks"]) == [12, 9]


def test_a_gzipped_multi_day_file_is_split_by_date(tmp_path):
    days = [D1 + dt.timedelta(days=i) for i in range(5)]
    raw = read(write_csv(tmp_path / "month.csv.gz", snake_case_rows(days), gz=True))
    assert raw.groupby(raw["date"].dt.date).size().to_dict() == {d: 40 for d in days}


def test_parquet_files_read(tmp_path):
    frame = pd.DataFrame(
        {
            "Day": pd.to_datetime(["2025-04-01", "2025-04-01"]),
            "Keyword ID": [1, 2],
            "Impressions": [10, 20],
            "Clicks": [1, 2],
        }
    )
    frame.to_parquet(tmp_path / "r.parquet")
    raw = read(tmp_path / "r.parquet")
    assert list(raw["impressions"]) == [10, 20] and raw["cost"].isna().all()


def test_configured_column_mapping(tmp_path):
    path = write_csv(tmp_path / "custom.csv", ["When,KW,Impressions (all),Taps", "2025-04-01,5,10,2"])
    raw = read(
        path, extra_aliases={"When": "date", "KW": "keyword_id", "Impressions (all)": "impressions", "Taps": "clicks"}
    )
    assert (raw.iloc[0]["keyword_id"], raw.iloc[0]["clicks"]) == (5, 2)


def test_missing_required_column_names_the_file_column_and_expected_schema(tmp_path):
    path = write_csv(tmp_path / "no_clicks.csv", ["Day,Keyword ID,Impr.", "2025-04-01,1,10"])
    with pytest.raises(LandingFileError) as error:
        read(path)
    message = str(error.value)
    assert str(path) in message and "['clicks']" in message
    assert "| `impressions` | count | yes |" in message  # the expected schema is listed


@pytest.mark.parametrize(
    "name, content",
    [
        ("garbage.csv", bytes(range(256)) * 20),
        ("garbage.csv.gz", b"\x1f\x8b not really gzip"),
        ("garbage.parquet", b"PAR1 definitely not parquet"),
        ("garbage.xlsx", b"PK\x03\x04 not really a workbook"),
        ("prose.csv", b"Dear team,\nplease find attached the numbers.\nBest\n"),
    ],
)
def test_an_unreadable_or_garbled_file_is_named(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LandingFileError, match=str(path)):
        read(path)


def test_an_empty_file_covers_no_day(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    assert len(read(tmp_path / "empty.csv")) == 0


def test_mixed_date_formats_in_one_file_are_an_error_naming_rows(tmp_path):
    path = write_csv(
        tmp_path / "mixed.csv",
        ["date,keyword_id,impressions,clicks", "2025-04-13,1,10,1", "04/14/2025,1,10,1", "2025-04-15,1,10,1"],
    )
    with pytest.raises(LandingFileError, match=r"mixes formats.*row 3 '04/14/2025'"):
        read(path)


def test_ambiguous_day_month_dates_need_a_configured_format(tmp_path):
    path = write_csv(tmp_path / "ambiguous.csv", ["date,keyword_id,impressions,clicks", "04/03/2025,1,10,1"])
    with pytest.raises(LandingFileError, match="more than one format"):
        read(path)
    assert read(path, date_format="%d/%m/%Y")["date"].dt.date.tolist() == [dt.date(2025, 3, 4)]


def test_an_unparseable_number_keeps_the_row_for_quarantine(tmp_path):
    path = write_csv(
        tmp_path / "typo.csv",
        [
            "date,keyword_id,impressions,clicks,cost",
            "2025-04-01,1,10,1,0.5",
            "2025-04-01,2,1O,1,0.5",
            "2025-04-01,3,10,2.5,0.5",
        ],
    )
    raw = read(path)
    assert list(raw["parse_errors"].fillna("")) == ["", "impressions='1O'", "clicks='2.5'"]
    result = validate_report(raw, [D1])
    assert list(result.valid["keyword_id"]) == [1]
    assert list(result.quarantine["reason"]) == ["unparseable_value"] * 2
    assert list(result.quarantine["source_row"]) == [3, 4]


def test_injected_bad_rows_are_quarantined_and_counts_reconcile(tmp_path):
    rows = snake_case_rows([D1], keywords=range(1, 11))
    rows += [
        "2025-04-01,11,x,c,g,Exact,10,20,1.0,0,0",  # clicks > impressions
        "2025-04-01,12,x,c,g,Exact,10,2,-1.0,0,0",  # negative cost
        "2025-04-01,13,x,c,g,Exact,10,2,1.0,3,50",  # conversions > clicks
        "2025-04-01,14,x,c,g,Sideways,10,2,1.0,0,0",  # unknown match type
        "2025-04-01,1,kw 1,Camp 1,Group 1,Exact,99,9,7.2,0,0",  # restates keyword 1: the later row wins
        "2025-04-01,,x,c,g,Exact,10,2,1.0,0,0",  # no keyword id
    ]
    raw = read(write_csv(tmp_path / "bad.csv", rows))
    result = validate_report(raw, [D1])
    assert len(raw) == len(result.valid) + len(result.quarantine)
    reasons = dict(zip(result.quarantine["source_row"], result.quarantine["reason"]))
    assert reasons == {
        12: "clicks_above_impressions",
        13: "negative_value",
        14: "conversions_above_clicks",
        15: "invalid_match_type",
        2: "duplicate_superseded",
        17: "missing_value",
    }
    kept = result.valid.set_index("keyword_id").loc[1]
    assert (kept["impressions"], kept["clicks"]) == (99, 9)


def test_a_metric_missing_from_the_whole_day_is_unreported_not_quarantined(tmp_path):
    path = write_csv(
        tmp_path / "clicks_only.csv", ["date,keyword_id,impressions,clicks", "2025-04-01,1,10,1", "2025-04-01,2,20,0"]
    )
    result = validate_report(read(path), [D1])
    assert len(result.quarantine) == 0
    assert result.unreported_metrics == [
        "conversion_value",
        "conversions",
        "cost",
        "max_cpc",
        "search_impression_share",
    ]
    assert result.valid["cost"].isna().all() and (result.valid["keyword"] == "(not reported)").all()


def test_reading_never_changes_the_input_file(tmp_path):
    path = write_csv(tmp_path / "r.csv.gz", snake_case_rows([D1]), gz=True)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    read(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert gzip.decompress(before[0]).startswith(b"date,")
    assert np.all(read(path)["clicks"] == 3)


@pytest.mark.parametrize(
    "totals",
    [
        # A real download: the keywords' total, then campaign types and the account, which hold more than these rows
        # (display and shopping campaigns, removed keywords).
        {"Total: Keywords": '"3,244",117', "Total: Search": '"5,000",150', "Total: Account": '"9,000",400'},
        # A filtered view: its own total matches the rows; the unfiltered keywords' total is larger.
        {"Total: Filtered keywords": '"3,244",117', "Total: Keywords": '"4,000",130', "Total: Account": '"9,000",400'},
        # The account's total alone may be larger; a campaign type's total may be smaller (it totals other rows).
        {"Total: Display": "100,2", "Total: Account": '"9,000",400'},
        {"Total: Account": '"3,244",117'},
    ],
)
def test_an_export_is_whole_when_its_keyword_total_matches_and_the_account_holds_more(tmp_path, totals):
    raw = read(google_ads_export(tmp_path / "whole.csv", EXPORT_ROWS, totals=totals))
    assert len(raw) == 3 and raw.attrs["completeness"] == ""


@pytest.mark.parametrize(
    "totals, problem",
    [
        # The keywords' total disagrees with the rows, though the account's is larger: rows are missing.
        (
            {"Total: Keywords": '"3,244",120', "Total: Account": '"9,000",400'},
            "its Total line states 120 clicks but its rows sum to 117",
        ),
        (
            {"Total: Filtered keywords": '"3,000",117'},
            "its Total line states 3,000 impressions but its rows sum to 3,244",
        ),
        # No keywords' total, and rows above the account's: impossible (a row counted twice, or another account's).
        ({"Total: Account": '"3,000",400'}, "its Total line states 3,000 impressions but its rows sum to 3,244"),
        ({}, "a Google Ads export without its Total line: cut short, or still being written"),
    ],
)
def test_an_export_whose_keyword_total_disagrees_or_that_is_cut_short_is_incomplete(tmp_path, totals, problem):
    path = google_ads_export(tmp_path / "partial.csv", EXPORT_ROWS, totals=totals or {"Total: Account": "--,--"})
    if not totals:  # cut short before its Total lines
        path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    assert read(path).attrs["completeness"] == problem


def test_an_excel_download_reads_to_the_same_rows_as_the_csv_download(tmp_path):
    totals = {"Total: Keywords": '"3,244",117', "Total: Account": '"9,000",400'}
    from_csv = read(google_ads_export(tmp_path / "export.csv", EXPORT_ROWS, totals=totals))
    from_excel = read(google_ads_export(tmp_path / "export.xlsx", EXPORT_ROWS, totals=totals))
    pd.testing.assert_frame_equal(from_excel.drop(columns="source_file"), from_csv.drop(columns="source_file"))
    assert list(from_excel["source_row"]) == [4, 5, 6]  # rows of the sheet, as lines of the CSV
    assert from_excel.attrs["completeness"] == ""
    short = read(google_ads_export(tmp_path / "short.xlsx", EXPORT_ROWS[:2], totals=totals))
    assert short.attrs["completeness"] == "its Total line states 3,244 impressions but its rows sum to 1,244"


def test_a_file_the_landing_zone_cannot_read_is_named_not_skipped(tmp_path):
    write_csv(tmp_path / "good.csv", snake_case_rows([D1]))
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7 a keyword report, printed")
    (tmp_path / "notes").write_text("no extension")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")  # hidden files are not reports
    index, _ = refresh_index(FS, str(tmp_path), None, lambda path: read(path))
    refused = unreadable_files(index)
    assert sorted(refused) == [str(tmp_path / "notes"), str(tmp_path / "report.pdf")]
    assert refused[str(tmp_path / "report.pdf")] == (
        f"{tmp_path / 'report.pdf'}: not a format the landing zone reads (.pdf); "
        "drop reports as .csv, .csv.gz, .parquet, .xlsx"
    )
    assert "(no extension)" in refused[str(tmp_path / "notes")]
    assert int(index.loc[index["path"] == str(tmp_path / "good.csv"), "rows"].sum()) == 40


# Streaming: a file is read a chunk at a time; what it reads must not depend on where the chunks fall.
LONG_ROWS = 600  # about 50 KB: with 512-byte chunks, a hundred chunk boundaries


@pytest.mark.parametrize(
    "name, eol, delimiter, encode",
    [
        ("lf.csv", "\n", ",", lambda text: text.encode()),
        ("crlf.csv.gz", "\r\n", ",", lambda text: gzip.compress(text.encode())),
        ("cr.csv", "\r", ",", lambda text: text.encode()),
        ("bom.csv", "\r\n", ",", lambda text: b"\xef\xbb\xbf" + text.encode()),
        ("excel_utf16.csv", "\r\n", "\t", lambda text: text.encode("utf-16")),
        # Members one after another (as `cat a.gz b.gz` writes them), then zero padding.
        (
            "members.csv.gz",
            "\n",
            ",",
            lambda t: gzip.compress(t[:999].encode()) + gzip.compress(t[999:].encode()) + bytes(9),
        ),
    ],
)
def test_a_file_longer_than_a_chunk_reads_exactly_as_one_read_would(tmp_path, name, eol, delimiter, encode):
    text, impressions, clicks = long_export(LONG_ROWS, eol=eol, delimiter=delimiter)
    path = tmp_path / name
    path.write_bytes(encode(text))
    expected = reference_rows(text, header_line=3, delimiter=delimiter)[:-2]  # the two Total lines are not rows
    whole = read(path)
    for chunk_bytes in (512, 4099):
        raw = read(path, chunk_bytes=chunk_bytes)
        pd.testing.assert_frame_equal(raw, whole)
    assert list(whole["source_row"]) == [line for line, _ in expected]
    assert list(whole["keyword"].fillna("")) == [fields[2] for _, fields in expected]
    # The typo'd rows keep their file lines, wherever the chunks fell.
    typos = whole[whole["parse_errors"].notna()]
    assert len(typos) == LONG_ROWS // 97 and set(typos["parse_errors"]) == {"impressions='1O'"}
    assert list(typos["source_row"]) == [line for line, fields in expected if fields[6] == "1O"]
    assert whole.attrs["completeness"] == ""  # the keyword total matches rows read across every chunk
    assert (whole["impressions"].sum(), whole["clicks"].sum()) == (impressions, clicks)
    pd.testing.assert_frame_equal(conform_raw(whole), whole)  # the raw contract's dtypes and column order


def test_a_total_cut_from_the_last_chunk_is_noticed(tmp_path):
    text, impressions, _ = long_export(LONG_ROWS)
    lines = text.splitlines(keepends=True)
    short = tmp_path / "short.csv"
    short.write_text("".join(lines[:-40] + lines[-2:]), newline="")  # rows lost before the Total lines
    assert (
        read(short, chunk_bytes=512)
        .attrs["completeness"]
        .startswith(f"its Total line states {impressions:,} impressions but its rows sum to")
    )
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[:-2]), newline="")
    assert "without its Total line" in read(cut, chunk_bytes=512).attrs["completeness"]


@pytest.mark.parametrize(
    "odd_row",
    [
        '2025-04-01,9001,27" monitor,Camp,Group,Exact match,10,1,$1.00,0,--',  # a quote inside an unquoted field
        "2025-04-01,9001,short row",  # fewer fields than the header: padded
        '2025-04-01,9001,"unclosed ""quote, then more",Camp,Group,Exact match,10,1,$1.00,0,--',
        '2025-04-01,9001,"closed"then text,Camp,Group,Exact match,10,1,$1.00,0,--',
        "   ",  # blank but not empty
    ],
)
def test_a_row_that_is_not_plain_csv_mid_file_reads_as_pythons_csv_module_reads_it(tmp_path, odd_row):
    text, _, _ = long_export(LONG_ROWS)
    lines = text.splitlines(keepends=True)
    text = "".join(lines[:300] + [odd_row + "\n"] + lines[300:])
    path = tmp_path / "odd.csv"
    path.write_text(text, newline="")
    expected = reference_rows(text, header_line=3)[:-2]
    for chunk_bytes in (512, 64 * 1024 * 1024):
        raw = read(path, chunk_bytes=chunk_bytes)
        assert list(raw["source_row"]) == [line for line, _ in expected]
        assert list(raw["keyword"].fillna("")) == [fields[2] for _, fields in expected]


def test_a_row_wider_than_the_header_deep_in_a_file_is_named_by_its_line(tmp_path):
    text, _, _ = long_export(LONG_ROWS)
    lines = text.splitlines(keepends=True)
    path = tmp_path / "wide.csv"
    path.write_text("".join(lines[:500] + ["2025-04-01,1,a,b,c,Exact,1,1,$1,0,--,extra\n"] + lines[500:]), newline="")
    (line,) = [n for n, fields in reference_rows(path.open(newline="").read(), 3) if len(fields) == 12]
    with pytest.raises(LandingFileError, match=rf"wide.csv: line {line}: 12 fields where the header on line 3 has 11"):
        read(path, chunk_bytes=512)


def test_a_files_date_format_is_decided_over_all_its_chunks(tmp_path):
    rows = ["date,keyword_id,impressions,clicks"] + [f"04/03/2025,{k},10,1" for k in range(200)]
    path = write_csv(tmp_path / "us.csv", rows + ["04/13/2025,1,10,1"])  # only the last row says month first
    assert set(read(path, chunk_bytes=256)["date"].dt.date) == {dt.date(2025, 4, 3), dt.date(2025, 4, 13)}
    # The examples are of the two formats most rows are in, each at its first row, whichever chunk that was in.
    iso = ["date,keyword_id,impressions,clicks"] + [f"2025-04-13,{k},10,1" for k in range(200)]
    with pytest.raises(
        LandingFileError, match=r"mixes formats, e\.g\. row 2 '2025-04-13' \(%Y-%m-%d\) and row 202 '04/14/2025'"
    ):
        read(write_csv(tmp_path / "mixed.csv", iso + ["04/14/2025,1,10,1"]), chunk_bytes=256)


def test_parquet_is_read_a_batch_at_a_time(tmp_path, monkeypatch):
    frame = pd.DataFrame(
        {"Day": pd.to_datetime(["2025-04-01"] * 50), "Keyword ID": range(50), "Impr.": range(50), "Clicks": 1}
    )
    frame.to_parquet(tmp_path / "r.parquet", row_group_size=8)
    whole = read(tmp_path / "r.parquet")
    monkeypatch.setattr(landing, "PARQUET_BATCH_ROWS", 3)
    pd.testing.assert_frame_equal(read(tmp_path / "r.parquet"), whole)
    assert list(whole["source_row"]) == list(range(1, 51)) and list(whole["impressions"]) == list(range(50))


@pytest.mark.parametrize(
    "unit, limits, refusal",
    [
        # Far more out than any report gzips to: refused once 16 MB are out, whatever the cap.
        (b"0", ReadLimits(), r"inflates more than 100 times over \(\d+ MB from 0\.\d\d MB\)"),
        (b"2025-04-01,1,10,1\n", ReadLimits(), "inflates more than 100 times over"),
        # The decompression cap, checked as the text streams out.
        (b"0", ReadLimits(max_uncompressed_bytes=8 * MB, max_gzip_ratio=10**6), "decompresses to more than 8 MB"),
    ],
)
def test_a_gzip_bomb_is_refused_naming_the_file(tmp_path, unit, limits, refusal):
    bomb = tmp_path / "bomb.csv.gz"
    member = gzip.compress(unit * (64 * MB // len(unit)), compresslevel=9)
    bomb.write_bytes(gzip.compress(b"date,keyword_id,impressions,clicks\n") + member * 16)  # 1 GB out
    with pytest.raises(LandingFileError, match=f"{bomb}: {refusal}"):
        read(bomb, limits=limits)


def test_a_report_that_gzips_well_is_not_taken_for_a_bomb(tmp_path):
    rows = snake_case_rows([D1 + dt.timedelta(days=i) for i in range(30)], keywords=range(1, 10_001))
    path = write_csv(tmp_path / "month.csv.gz", rows, gz=True)
    assert len(gzip.decompress(path.read_bytes())) > 16 * MB  # past the floor where the ratio is checked
    assert len(read(path)) == 300_000


def test_a_csv_read_logs_the_mb_read_of_the_file_and_the_time_left(tmp_path, monkeypatch):
    monkeypatch.setattr(daily_bids.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(landing, "READ_BYTES", MB // 4)
    path = write_csv(tmp_path / "days.csv", snake_case_rows([D1, D2, D2 + dt.timedelta(days=1)], range(1, 40_001)))
    size = path.stat().st_size
    assert size > 3 * MB
    lines = []
    logged = read(path, chunk_bytes=MB, log=lines.append)
    assert len(lines) == -(-size // (MB // 4)) - 1  # a line a block read, but for the last
    assert all(line.startswith("reading days.csv: ") and f" of {size / MB:,.0f} MB (" in line for line in lines)
    assert all(line.endswith(" left") for line in lines)
    pd.testing.assert_frame_equal(logged, read(path, chunk_bytes=MB))
    assert len(logged) == 120_000


def test_memory_is_bounded_by_a_chunk_not_by_the_file(tmp_path):
    # 200 MB of rows whose bulk is a column the contract does not read: what is kept is small (about 20 MB), so the
    # peak is what a chunk costs. The reader that held the file (as bytes, text, lines and cells) took 2 GB more RSS
    # for this file; the streaming one about 60 MB with 4 MB chunks.
    row = "2025-04-01,{},10,1," + "x" * 2000 + "\n"
    path = tmp_path / "wide_notes.csv"
    with path.open("w") as out:
        out.write("date,keyword_id,impressions,clicks,notes\n")
        for start in range(0, 100_000, 1000):
            out.write("".join(row.format(k) for k in range(start, start + 1000)))
    size_mb = path.stat().st_size / MB
    measured = peak_rss_reading(path, chunk_bytes=4 * MB)
    assert measured["rows"] == 100_000
    assert measured["peak_mb"] - measured["before_mb"] < size_mb / 2, (measured, size_mb)


# BigQuery Data Transfer Service tables: ads_KeywordBasicStats_<customer_id> has a row per segment (device, network,
# slot) of each keyword-day. Keyword 501 in ad group 11 on D1: three segment rows.
BQ_STATS = [
    ("2025-04-01", 11, 501, "MOBILE", "SEARCH", "SEARCH_TOP", 100, 5, 1_230_000, 1.0, 10.5),
    ("2025-04-01", 11, 501, "DESKTOP", "SEARCH", "SEARCH_TOP", 50, 2, 770_001, 0.5, 2.25),
    ("2025-04-01", 11, 501, "DESKTOP", "SEARCH_PARTNERS", "SEARCH_OTHER", 10, 1, 100_000, 0.5, 0.0),
    ("2025-04-01", 22, 501, "MOBILE", "SEARCH", "SEARCH_TOP", 7, 0, 0, 0.0, 0.0),  # the same criterion, another group
    ("2025-04-02", 11, 501, "TABLET", "SEARCH", "SEARCH_OTHER", 30, 3, 333_333, 0.0, 0.0),
    ("2025-04-02", 11, 501, "MOBILE", "SEARCH", "SEARCH_TOP", 20, 1, 500_000, 1.0, 40.0),
]


def bq_expected(path, source_rows, **columns):
    """The raw rows BQ_STATS reads to (a row per keyword-day), with `columns` set."""
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-04-01", "2025-04-01", "2025-04-02"]),
            "keyword_id": [501.0, 501.0, 501.0],
            "campaign_id": ["77", "77", "77"],
            "ad_group_id": ["11", "22", "11"],
            "impressions": [160.0, 7.0, 50.0],
            "clicks": [8.0, 0.0, 4.0],
            "cost": [2.100001, 0.0, 0.833333],
            "conversions": [2.0, 0.0, 1.0],
            "conversion_value": [12.75, 0.0, 40.0],
            "source_file": str(path),
            "source_row": source_rows,
            "parse_errors": None,
            **columns,
        }
    )
    return conform_raw(frame)


@pytest.mark.parametrize("name, source_rows", [("stats.parquet", [1, 4, 5]), ("stats.csv.gz", [2, 5, 6])])
def test_a_bigquery_stats_table_sums_its_segment_rows_into_keyword_days(tmp_path, name, source_rows):
    path = bigquery_export(bigquery_keyword_stats(BQ_STATS), tmp_path / name)
    raw = read(path)
    # source_row: the keyword-day's first segment row (Parquet counts rows from 1; a CSV's lines count its header).
    pd.testing.assert_frame_equal(raw, bq_expected(path, source_rows))
    assert raw.attrs["completeness"] == ""
    result = validate_report(raw, [D1, D2])
    assert len(result.quarantine) == 0 and len(result.valid) == 3  # segment rows are summed, not duplicates


def test_a_bigquery_csv_sums_the_same_wherever_its_chunks_fall(tmp_path):
    rows = [
        (f"2025-04-0{1 + n % 2}", 11 + n % 3, 500 + n % 7, "MOBILE", "SEARCH", "SEARCH_TOP", n, n % 5, n * 10_001, 0, 0)
        for n in range(2000)
    ]
    path = bigquery_export(bigquery_keyword_stats(rows), tmp_path / "big.csv.gz")
    whole = read(path)
    chunked = read(path, chunk_bytes=4096)  # tens of chunks, and their partial sums summed again
    pd.testing.assert_frame_equal(chunked, whole)
    assert len(whole) == 2 * 3 * 7 and whole["impressions"].sum() == sum(range(2000))
    assert whole["cost"].sum() == pytest.approx(sum(range(2000)) * 0.010001)


def test_bigquery_micros_convert_exactly(tmp_path):
    from decimal import Decimal

    # A cent a click a thousand times: 10.00 exactly, where adding 0.01 a thousand times gives 9.999999999999831.
    rows = [("2025-04-01", 11, 501, "MOBILE", "SEARCH", "SEARCH_TOP", 1, 1, 10_000, 0, 0)] * 1000
    rows += [
        ("2025-04-01", 11, 502, device, "SEARCH", "SEARCH_TOP", 1, 1, micros, 0, 0)
        for device, micros in [
            ("MOBILE", 100_000),
            ("DESKTOP", 200_000),
        ]
    ]
    rows += [("2025-04-01", 11, 503, "MOBILE", "SEARCH", "SEARCH_TOP", 1, 1, 123_456_789_012_345, 0, 0)]
    for name in ("exact.parquet", "exact.csv"):
        raw = read(bigquery_export(bigquery_keyword_stats(rows), tmp_path / name)).set_index("keyword_id")
        assert sum([0.01] * 1000) != 10.0 and raw.loc[501, "cost"] == 10.0
        assert 0.1 + 0.2 != 0.3 and raw.loc[502, "cost"] == 0.3
        assert raw.loc[503, "cost"] == float(Decimal(123_456_789_012_345) / 10**6) == 123456789.012345


def test_bigquery_keyword_attributes_beside_the_stats_join_by_ad_group_and_criterion(tmp_path):
    stats = bigquery_export(bigquery_keyword_stats(BQ_STATS), tmp_path / "ads_KeywordBasicStats_9.parquet")
    keywords = bigquery_keywords(
        [
            # The snapshot of D1, then of D2: the latest names the keyword; each day's gives that day's bid.
            ("2025-04-01", 11, 501, "red boots", "PHRASE", "ENABLED", 1_500_000),
            ("2025-04-02", 11, 501, "red boots", "EXACT", "PAUSED", 1_750_000),
            ("2025-04-01", 22, 501, "red boots", "BROAD", "UNKNOWN", None),
            ("2025-04-01", 33, 999, "not in the stats", "EXACT", "REMOVED", 10_000),
        ]
    )
    attributes = bigquery_export(keywords, tmp_path / "ads_Keyword_9.csv")
    raw = read(stats)
    expected = bq_expected(
        stats,
        [1, 4, 5],
        keyword=["red boots"] * 3,
        match_type=["Exact", "Broad", "Exact"],  # Google's EXACT, BROAD as the contract spells them
        status=["Paused", None, "Paused"],  # UNKNOWN says nothing
        # The bid in the snapshot of the row's day; none on D1, where a keyword has none (it would be quarantined).
        max_cpc=[None, None, 1.75],
    )
    pd.testing.assert_frame_equal(raw, expected)
    assert len(read(attributes)) == 0  # attributes cover no day: they are not a report
    index, _ = refresh_index(FS, str(tmp_path), None, lambda p: read_landing_file(FS, p))
    assert unreadable_files(index) == {} and sorted(index.dropna(subset=["date"])["path"].unique()) == [str(stats)]
    result = validate_report(raw, [D1, D2])
    assert len(result.quarantine) == 0
    assert sorted(result.valid["status"]) == ["(not reported)", "Paused", "Paused"]

    # Without the attributes file the stats still load, without text.
    attributes.unlink()
    pd.testing.assert_frame_equal(read(stats), bq_expected(stats, [1, 4, 5]))


def test_a_malformed_bigquery_value_is_named_by_file_column_and_row(tmp_path):
    frame = bigquery_keyword_stats(BQ_STATS).astype({"metrics_cost_micros": object})
    frame.loc[1, "metrics_cost_micros"] = "77O001"  # a letter O, on the file's line 3
    path = bigquery_export(frame, tmp_path / "typo.csv")
    raw = read(path)
    errors = raw.set_index(["ad_group_id", "date"])["parse_errors"]
    assert errors[("11", pd.Timestamp(D1))] == "cost: metrics_cost_micros='77O001' on row 3"
    assert errors.drop(("11", pd.Timestamp(D1))).isna().all()
    assert pd.isna(raw.loc[0, "cost"]) and raw.loc[0, "impressions"] == 160  # the other sums stand
    result = validate_report(raw, [D1, D2])
    quarantined = result.quarantine.iloc[0]
    assert (quarantined["reason"], quarantined["source_file"], quarantined["source_row"]) == (
        "unparseable_value",
        str(path),
        2,
    )
    assert "metrics_cost_micros='77O001' on row 3" in quarantined["detail"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"segments_date": "2025-13-01"}, r"row 2: column segments_date: '2025-13-01' is not a date"),
        ({"segments_click_type": "URL_CLICKS"}, r"segmented by segments_click_type .* ads_KeywordBasicStats"),
    ],
)
def test_a_bigquery_table_that_cannot_be_read_is_named(tmp_path, change, message):
    frame = bigquery_keyword_stats(BQ_STATS).astype({"segments_date": object})
    for column, value in change.items():
        frame.loc[0, column] = value
    path = bigquery_export(frame, tmp_path / "bad.csv")
    with pytest.raises(LandingFileError, match=message) as error:
        read(path)
    assert str(path) in str(error.value)


def test_a_bigquery_table_without_clicks_is_refused_naming_them(tmp_path):
    path = bigquery_export(bigquery_keyword_stats(BQ_STATS).drop(columns="metrics_clicks"), tmp_path / "x.parquet")
    with pytest.raises(LandingFileError, match=r"without \['metrics_clicks'\]"):
        read(path)


def test_a_broken_keyword_attributes_file_is_named_by_its_own_read_and_the_stats_load_without_it(tmp_path):
    stats = bigquery_export(bigquery_keyword_stats(BQ_STATS), tmp_path / "stats.parquet")
    keywords = bigquery_keywords([("2025-04-01", 11, 501, "red boots", "EXACT", "ENABLED", 1)]).astype(object)
    keywords.loc[0, "ad_group_criterion_effective_cpc_bid_micros"] = "1.5"
    attributes = bigquery_export(keywords, tmp_path / "ads_Keyword_9.csv")
    with pytest.raises(LandingFileError, match=r"row 2: column ad_group_criterion_effective_cpc_bid_micros: '1.5'"):
        read(attributes)
    # The stats file's index entry is kept while it is unchanged: it must not carry another file's error.
    pd.testing.assert_frame_equal(read(stats), bq_expected(stats, [1, 4, 5]))
    index, _ = refresh_index(FS, str(tmp_path), None, lambda p: read_landing_file(FS, p))
    assert list(unreadable_files(index)) == [str(attributes)]


def test_bigquery_conversions_keep_their_fractions_and_sum_exactly(tmp_path):
    rows = [
        ("2025-04-01", 11, 501, "MOBILE", "SEARCH", "SEARCH_TOP", 10, 3, 0, 0.1, 1.0),
        ("2025-04-01", 11, 501, "DESKTOP", "SEARCH", "SEARCH_TOP", 10, 3, 0, 0.2, 1.0),
        ("2025-04-01", 11, 501, "TABLET", "SEARCH", "SEARCH_TOP", 10, 3, 0, 0.7, 1.0),  # 0.1 + 0.2 + 0.7: one
        ("2025-04-01", 11, 502, "MOBILE", "SEARCH", "SEARCH_TOP", 10, 3, 0, 0.37, 1.0),  # data-driven attribution
    ]
    raw = read(bigquery_export(bigquery_keyword_stats(rows), tmp_path / "dda.parquet")).set_index("keyword_id")
    assert raw.loc[501, "conversions"] == 1 and pd.isna(raw.loc[501, "parse_errors"])
    assert raw.loc[502, "conversions"] == 0.37 and pd.isna(raw.loc[502, "parse_errors"])
    validated = validate_report(raw.reset_index(), [D1])
    assert validated.quarantine.empty
    assert sorted(validated.valid["conversions"].astype(float)) == [0.37, 1.0]
