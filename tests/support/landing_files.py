"""Landing files as users drop them, written by the tests themselves."""

import csv
import gzip
import io
import re
import zlib
from pathlib import Path

# Keyword text that attacks spreadsheets, breaks lines or looks like a null: it must come through exactly.
HOSTILE_KEYWORDS = [
    "shoes, red",
    'say "hi"',
    "line\r\nbreak",
    "cr\ronly",
    "tab\tinside",
    "sep\u2028here",
    "nel\u0085here",
    "מגפיים אדומים",
    "boots 🥾",
    "none",
    "NA",
    "-",
    "  padded  ",
    '=HYPERLINK("http://evil","click")',
    "\t=1+1",
    "+1",
    "@SUM(A1)",
]


def ads_editor_keyword(keyword: str) -> str:
    """How the Ads Editor file must show a keyword: a leading quote defuses what a spreadsheet would run."""
    formula = keyword.startswith(("=", "+", "-", "@", "\t", "\r"))
    return "'" + keyword if formula else keyword


GOOGLE_ADS_HEADER = "Day,Keyword ID,Keyword,Campaign,Ad group,Match type,Impr.,Clicks,Cost,Conversions,Conv. value"


def google_ads_export(
    path: Path,
    rows: list[str],
    title: str = "Keyword report",
    total: str | None = None,
    totals: dict[str, str] | None = None,
) -> Path:
    """A Google Ads UI export: a title and a date-range line above the header, total lines below the rows (pass
    `total` as the impressions and clicks cells of the "Total: Account" line, e.g. '"1,234",56'; or `totals` as
    label → those cells, in order, for the lines a real download has: "Total: Keywords", "Total: Search", …).
    A path ending in .xlsx gets the same export as Google's Excel download."""
    totals = totals or {"Total: Account": total or "--,--"}
    lines = [
        title,
        "April 1, 2025 - April 30, 2025",
        GOOGLE_ADS_HEADER,
        *rows,
        *(f'{label},--,--,--,--,--,{cells},"$9,999.00",99,"$99,999.00"' for label, cells in totals.items()),
    ]
    if path.suffix == ".xlsx":
        return _xlsx(path, lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _xlsx(path: Path, lines: list[str]) -> Path:
    """The lines of a CSV export as an Excel download holds them: numbers as numbers, days as dates, "--" as text."""
    import datetime as dt

    from openpyxl import Workbook

    def cell(text: str):
        plain = text.replace(",", "").replace("$", "").strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", plain):
            return dt.date.fromisoformat(plain)
        if re.fullmatch(r"-?\d+", plain):
            return int(plain)
        if re.fullmatch(r"-?\d*\.\d+", plain):
            return float(plain)
        return text

    workbook = Workbook()
    sheet = workbook.active
    for number, record in enumerate(csv.reader(lines)):
        sheet.append([cell(text) if number > 2 else text for text in record])  # the title lines stay text
    workbook.save(path)
    return path


def snake_case_rows(days, keywords=range(1, 41), clicks=3) -> list[str]:
    header = "date,keyword_id,keyword,campaign,ad_group,match_type,impressions,clicks,cost,conversions,conversion_value"
    rows = [header]
    for day in days:
        for k in keywords:
            impressions = 50 + (k * 7 + day.toordinal()) % 40
            rows.append(
                f"{day.isoformat()},{k},kw {k},Camp {k % 3},Group {k % 6},Exact,{impressions},{clicks},"
                f"{clicks * 0.8:.2f},{1 if k % 4 == 0 else 0},{40.0 if k % 4 == 0 else 0.0}"
            )
    return rows


def write_csv(path: Path, rows: list[str], gz: bool = False) -> Path:
    text = "\n".join(rows) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


GOOGLE_ADS_ACCOUNT_HEADER = (
    "Day,Campaign ID,Campaign,Ad group ID,Ad group,Keyword ID,Keyword,Match type,Impr.,"
    "Clicks,Cost,Conversions,Conv. value"
)


def google_ads_account_export(path: Path, days, keywords: int = 50, seed: int = 3) -> Path:
    """A Google Ads UI keyword report of a whole account, as the UI's "Download → CSV" writes it: title and date-range
    lines, IDs of campaign, ad group and keyword, "Exact match" spelled out, currency and thousands separators, and
    the Total line at the bottom. The numbers come from the simulator (its first
    `keywords` keywords, under their manual bids), so they behave like an account's."""
    from daily_bids.simulator.market import AdMarketSimulator

    market = AdMarketSimulator(seed=seed, keywords=300)
    account = market.keyword_dimensions["keyword_id"].to_numpy()[:keywords]
    rows = [report[report["keyword_id"].isin(account)] for report in map(market.report, days)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(f"Keyword report\n{days[0]:%B %-d, %Y} - {days[-1]:%B %-d, %Y}\n{GOOGLE_ADS_ACCOUNT_HEADER}\n")
    totals = {"impressions": 0, "clicks": 0}
    for report in rows:
        for row in report.itertuples():
            campaign_id = 7_000_000 + zlib.crc32(str(row.campaign).encode()) % 1_000_000
            ad_group_id = 90_000_000 + zlib.crc32(f"{row.campaign}|{row.ad_group}".encode()) % 10_000_000
            totals["impressions"] += int(row.impressions)
            totals["clicks"] += int(row.clicks)
            writer.writerow(
                [
                    f"{row.date:%Y-%m-%d}",
                    campaign_id,
                    row.campaign,
                    ad_group_id,
                    row.ad_group,
                    int(row.keyword_id) + 400_000_000,
                    row.keyword,
                    f"{row.match_type} match",
                    f"{int(row.impressions):,}",
                    f"{int(row.clicks):,}",
                    f"${float(row.cost):,.2f}",
                    f"{float(row.conversions):.2f}",
                    f"${float(row.conversion_value):,.2f}",
                ]
            )
    writer.writerow(
        [
            "Total: Account",
            "--",
            "--",
            "--",
            "--",
            "--",
            "--",
            "--",
            f"{totals['impressions']:,}",
            f"{totals['clicks']:,}",
            "--",
            "--",
            "--",
        ]
    )
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def reference_rows(text: str, header_line: int, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """(line, fields) of each non-blank record below the header on `header_line`, as Python's csv module reads the
    whole text at once: how the landing zone read files before it streamed them, to hold a chunked read to."""
    lines = io.StringIO(text, newline="").readlines()  # ends at CR, LF or CRLF, as the reader's lines do
    reader = csv.reader(io.StringIO("".join(lines[header_line:]), newline=""), delimiter=delimiter)
    rows, line = [], 0
    for record in reader:
        if any(field.strip() for field in record):
            rows.append((header_line + 1 + line, record))
        line = reader.line_num
    return rows


def long_export(rows: int, seed: int = 5, eol: str = "\n", delimiter: str = ",") -> tuple[str, int, int]:
    """A Google Ads UI export far longer than a small chunk, with what makes chunking hard: hostile keywords
    (quoted line breaks, CR alone, quotes, separators), blank lines and blank records, and a "1O" typo in the
    impressions of every 97th row. Returns (text, impressions, clicks) as its rows sum them; its "Total: Keywords"
    line states them."""
    import random

    rng = random.Random(seed)
    out = io.StringIO(newline="")

    class writer:  # csv.writer leaves a CR unquoted when lines end in LF; a real export quotes it
        @staticmethod
        def writerow(fields):
            quoted = [
                f'"{text}"' if any(c in text for c in (delimiter, "\r", "\n")) or '"' in text else text
                for text in (str(field).replace('"', '""') for field in fields)
            ]
            out.write(delimiter.join(quoted) + eol)

    out.write(f"Keyword report{eol}April 1, 2025 - April 30, 2025{eol}")
    writer.writerow(next(csv.reader([GOOGLE_ADS_HEADER])))
    impressions = clicks = 0
    for number in range(rows):
        if number % 41 == 7:
            out.write(eol)  # a blank line: skipped, still counted
        if number % 53 == 11:
            writer.writerow([""] * 11)  # a record of blank fields: skipped like a blank line
        shown, taken = rng.randint(0, 5000), rng.randint(0, 40)
        typo = number % 97 == 50
        impressions, clicks = impressions + (0 if typo else shown), clicks + taken
        writer.writerow(
            [
                "2025-04-01",
                100 + number,
                rng.choice(HOSTILE_KEYWORDS + [f"plain keyword {number}"]),
                "Camp",
                "Group",
                "Exact match",
                "1O" if typo else f"{shown:,}",
                taken,
                f"${taken * 0.37:,.2f}",
                0,
                "--",
            ]
        )
    writer.writerow(["Total: Keywords", *["--"] * 5, f"{impressions:,}", clicks, "--", "--", "--"])
    writer.writerow(["Total: Account", *["--"] * 5, f"{impressions * 3:,}", clicks * 3, "--", "--", "--"])
    return out.getvalue(), impressions, clicks


# The columns of the BigQuery Data Transfer Service's `ads_KeywordBasicStats_<customer_id>` table (Google Ads API
# field names with `.` as `_`), and the `_DATA_DATE` and `_LATEST_DATE` its views add.
BIGQUERY_STATS_COLUMNS = (
    "ad_group_base_ad_group",
    "ad_group_criterion_criterion_id",
    "ad_group_id",
    "campaign_base_campaign",
    "campaign_id",
    "customer_id",
    "metrics_clicks",
    "metrics_conversions",
    "metrics_conversions_value",
    "metrics_cost_micros",
    "metrics_impressions",
    "metrics_interaction_event_types",
    "metrics_interactions",
    "metrics_view_through_conversions",
    "segments_ad_network_type",
    "segments_date",
    "segments_device",
    "segments_slot",
    "_DATA_DATE",
    "_LATEST_DATE",
)


def bigquery_keyword_stats(rows: list[tuple]):
    """An `ads_KeywordBasicStats_<customer_id>` table, one row per segment: each of `rows` is (day, ad group ID,
    criterion ID, device, network, slot, impressions, clicks, cost micros, conversions, conversion value), typed as
    BigQuery holds them (DATE, INT64, FLOAT64)."""
    import datetime as dt

    import pandas as pd

    days = [dt.date.fromisoformat(r[0]) for r in rows]
    frame = pd.DataFrame(
        {
            "ad_group_base_ad_group": [f"customers/9/adGroups/{r[1]}" for r in rows],
            "ad_group_criterion_criterion_id": pd.array([r[2] for r in rows], dtype="int64"),
            "ad_group_id": pd.array([r[1] for r in rows], dtype="int64"),
            "campaign_base_campaign": "customers/9/campaigns/77",
            "campaign_id": 77,
            "customer_id": 9,
            "metrics_clicks": pd.array([r[7] for r in rows], dtype="int64"),
            "metrics_conversions": [float(r[9]) for r in rows],
            "metrics_conversions_value": [float(r[10]) for r in rows],
            "metrics_cost_micros": pd.array([r[8] for r in rows], dtype="int64"),
            "metrics_impressions": pd.array([r[6] for r in rows], dtype="int64"),
            "metrics_interaction_event_types": "InteractionEventType.CLICK",
            "metrics_interactions": pd.array([r[7] for r in rows], dtype="int64"),
            "metrics_view_through_conversions": 0,
            "segments_ad_network_type": [r[4] for r in rows],
            "segments_date": days,
            "segments_device": [r[3] for r in rows],
            "segments_slot": [r[5] for r in rows],
            "_DATA_DATE": days,
            "_LATEST_DATE": max(days),
        }
    )
    return frame.loc[:, list(BIGQUERY_STATS_COLUMNS)]


def bigquery_keywords(rows: list[tuple]):
    """An `ads_Keyword_<customer_id>` table (a snapshot of each keyword per `_DATA_DATE`): each of `rows` is
    (snapshot day, ad group ID, criterion ID, text, match type, status, effective CPC bid micros)."""
    import datetime as dt

    import pandas as pd

    days = [dt.date.fromisoformat(r[0]) for r in rows]
    return pd.DataFrame(
        {
            "ad_group_criterion_approval_status": "APPROVED",
            "ad_group_criterion_criterion_id": pd.array([r[2] for r in rows], dtype="int64"),
            "ad_group_criterion_effective_cpc_bid_micros": pd.array([r[6] for r in rows], dtype="Int64"),
            "ad_group_criterion_keyword_match_type": [r[4] for r in rows],
            "ad_group_criterion_keyword_text": [r[3] for r in rows],
            "ad_group_criterion_negative": False,
            "ad_group_criterion_status": [r[5] for r in rows],
            "ad_group_id": pd.array([r[1] for r in rows], dtype="int64"),
            "campaign_id": 77,
            "customer_id": 9,
            "_DATA_DATE": days,
            "_LATEST_DATE": max(days),
        }
    )


def bigquery_export(frame, path: Path) -> Path:
    """`frame` as BigQuery's EXPORT DATA writes it: Parquet (DATE as date32, INT64 as int64), or CSV with a header
    line, ISO dates, NULL as an empty field, gzipped when the path ends in .gz."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    else:
        frame.to_csv(path, index=False, compression="gzip" if path.suffix == ".gz" else None)
    return path


def peak_rss_reading(path: Path, chunk_bytes: int) -> dict:
    """Reads `path` in a fresh interpreter (this file run as a script); returns its RSS before the read and at its
    peak (`ru_maxrss`), in MB, and the rows read."""
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "tests")])}
    process = subprocess.run(
        [sys.executable, __file__, str(path), str(chunk_bytes)], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(process.stdout)


if __name__ == "__main__":  # the child of `peak_rss_reading`
    import json
    import resource
    import sys

    import pyarrow.fs as pafs

    from daily_bids.ingest.landing import read_landing_file

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frame = read_landing_file(pafs.LocalFileSystem(), sys.argv[1], chunk_bytes=int(sys.argv[2]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"before_mb": before, "peak_mb": peak, "rows": len(frame)}))
