"""Landing files as users drop them, written by the tests themselves."""

import gzip
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
    import csv
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
    import csv
    import io

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
