"""Reading users' report files: every malformed input gives a clear error naming the file, or a kept row that
validation quarantines with a reason."""

import datetime as dt
import gzip

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from daily_bids.ingest.landing import LandingFileError, read_landing_file, refresh_index, unreadable_files
from daily_bids.ingest.validation import validate_report
from support.landing_files import google_ads_export, snake_case_rows, write_csv

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
