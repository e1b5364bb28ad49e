"""The Ads Editor file: the day's bids in the layout Google Ads Editor imports, safe to open in a spreadsheet."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd

from daily_bids import currency as currencies
from daily_bids.schema import DIMENSION_COLUMNS, NOT_REPORTED

# Google Ads Editor's columns for a keyword bid change, and the bid table's column each one is taken from. The IDs
# are what match the change to the keyword (a report without names is still applied by them): Google's criterion ID
# with its ad group ID, since one criterion ID names a keyword in each ad group holding it. The names are there for
# people reading the file, and empty where the report had none.
ADS_EDITOR_COLUMNS: dict[str, str] = {
    "Keyword ID": "criterion_id",
    "Campaign ID": "campaign_id",
    "Campaign": "campaign",
    "Ad group ID": "ad_group_id",
    "Ad group": "ad_group",
    "Keyword": "keyword",
    "Match type": "match_type",
    "Max CPC": "bid",
}
# A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV-injection list, tab and CR included,
# since spreadsheets strip them and then read what follows).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def ads_editor_csv(bids: pd.DataFrame, with_header: bool = True, currency: str = currencies.DEFAULT_CURRENCY) -> bytes:
    """The bids in the layout Google Ads Editor imports as keyword bid changes (without the header line, for the
    batches after the first). Max CPC is written with the account `currency`'s decimals: `1.20` in USD, `120` in JPY.

    Text is written as reported, every field quoted (so commas, quotes, line breaks and Unicode line separators stay
    inside their field), except that text a spreadsheet would run as a formula gets a leading apostrophe, the way
    spreadsheet tools mark a cell as text. A name the report did not carry is an empty field, never a marker."""
    sheet = pd.DataFrame(
        {header: bids[column].to_numpy() for header, column in ADS_EDITOR_COLUMNS.items() if column in bids}
    )
    for header, column in ADS_EDITOR_COLUMNS.items():
        if column in DIMENSION_COLUMNS and header in sheet:  # text as the report had it
            sheet[header] = sheet[header].map(neutralize_formula)
    # Bids made before the criterion ID was kept apart have only keyword_id, which was the criterion ID then.
    criterion = sheet.get("Keyword ID", pd.Series("", index=sheet.index))
    if "keyword_id" in bids:
        criterion = criterion.mask(criterion.eq("").to_numpy(), bids["keyword_id"].to_numpy())
    sheet["Keyword ID"] = criterion.map(lambda value: str(int(value)))
    sheet = sheet.loc[:, list(ADS_EDITOR_COLUMNS)]
    money = currencies.currency(currency).format
    sheet["Max CPC"] = sheet["Max CPC"].map(money)
    return sheet.to_csv(index=False, header=with_header, quoting=csv.QUOTE_ALL, lineterminator="\r\n").encode("utf-8")


def neutralize_formula(value) -> str:
    """`value` as spreadsheet-safe text: empty for a null or the not-reported marker, `'` before a formula lead."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == NOT_REPORTED:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_LEADS) else text
