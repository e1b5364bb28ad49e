"""Landing files as users drop them, written by the tests themselves."""

import gzip
from pathlib import Path

GOOGLE_ADS_HEADER = "Day,Keyword ID,Keyword,Campaign,Ad group,Match type,Impr.,Clicks,Cost,Conversions,Conv. value"


def google_ads_export(path: Path, rows: list[str], title: str = "Keyword report", total: str | None = None) -> Path:
    """A Google Ads UI export: a title and a date-range line above the header, a total line below the rows (pass
    `total` as the impressions and clicks cells, e.g. '"1,234",56', for the totals the rows add up to)."""
    lines = [title, "April 1, 2025 - April 30, 2025", GOOGLE_ADS_HEADER, *rows,
             f'Total: Account,--,--,--,--,--,{total or "--,--"},"$9,999.00",99,"$99,999.00"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def snake_case_rows(days, keywords=range(1, 41), clicks=3) -> list[str]:
    header = "date,keyword_id,keyword,campaign,ad_group,match_type,impressions,clicks,cost,conversions,conversion_value"
    rows = [header]
    for day in days:
        for k in keywords:
            impressions = 50 + (k * 7 + day.toordinal()) % 40
            rows.append(f"{day.isoformat()},{k},kw {k},Camp {k % 3},Group {k % 6},Exact,{impressions},{clicks},"
                        f"{clicks * 0.8:.2f},{1 if k % 4 == 0 else 0},{40.0 if k % 4 == 0 else 0.0}")
    return rows


def write_csv(path: Path, rows: list[str], gz: bool = False) -> Path:
    text = "\n".join(rows) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path
