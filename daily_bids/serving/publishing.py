"""Publishing bids: which partitions may move money, and what a publication changes.

A partition's bids are published once, in order. Publishing is the only step that changes what the ad platform
charges, so it refuses whatever could move money by accident:
- bids for a day older than the newest published day (a backfill of past days never overwrites the live bids);
- a day already published, unless a republish is asked for explicitly (re-running today's job after a fix).
Everything else about a bid (below its value per click, inside the caps) is the blocking check's job, which runs
before publishing in the same run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from daily_bids import currency as currencies
from daily_bids.bidding.moves import bids_in_force
from daily_bids.progress import Progress
from daily_bids.quality.expectations import BATCH_ROWS
from daily_bids.schema import NOT_REPORTED
from daily_bids.serving.ads_editor import ADS_EDITOR_COLUMNS, ads_editor_pieces
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

# What the publication ledger keeps per keyword: enough to say later what was live and what it replaced.
LEDGER_COLUMNS: tuple[str, ...] = ("keyword_id", "bid", "previous_bid")


@dataclass(frozen=True)
class PublicationDecision:
    publish: bool
    reason: str


def decide_publication(day: dt.date, published_days: list[dt.date], republish: bool) -> PublicationDecision:
    """Whether the bids of partition `day` may be published, given the partitions published before."""
    later = [d for d in published_days if d > day]
    if later:
        return PublicationDecision(
            False,
            f"bids of a later partition ({max(later)}) are live; bids of past days are "
            "never republished (a backfill leaves the live bids alone)",
        )
    if day in published_days and not republish:
        return PublicationDecision(
            False,
            f"partition {day} was published already; set `republish: true` in the "
            "published_bids config to publish it again",
        )
    return PublicationDecision(True, "republished on request" if day in published_days else "published")


def ledger(bids: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Each published bid with the bid it replaced (null for a keyword bid for the first time)."""
    previous_bid = (
        previous.set_index("keyword_id")["bid"]
        if previous is not None and len(previous)
        else pd.Series(dtype="float64")
    )
    return pd.DataFrame(
        {
            "keyword_id": bids["keyword_id"].to_numpy(),
            "bid": bids["bid"].to_numpy(dtype="float64"),
            "previous_bid": previous_bid.reindex(bids["keyword_id"].to_numpy()).to_numpy(dtype="float64"),
        }
    )


def change_summary(
    published: pd.DataFrame, names: pd.DataFrame | None = None, currency: str = currencies.DEFAULT_CURRENCY
) -> dict[str, object]:
    """Counts of changed, new and unchanged bids, and the largest moves up and down (from a `ledger` frame).

    `names` (from `keyword_names`, indexed by keyword_id) names a moved keyword as the ad platform does: its
    criterion ID, text and ad group, since the platform's own keyword_id of a criterion's second ad group (2**62 and
    up) means nothing to anyone reading the log."""
    money = currencies.currency(currency)
    known = published.dropna(subset=["previous_bid"])
    change = known["bid"] - known["previous_bid"]
    changed = change.abs() >= money.billable_unit / 2  # bids are whole billable units: anything smaller is float noise

    def describe(position) -> str:
        # The ID from its own int64 column: a row of `known` is upcast to float64, which rounds IDs above 2**53.
        keyword_id = int(known["keyword_id"].loc[position])
        name = names.loc[keyword_id] if names is not None and keyword_id in names.index else {}

        def text(column: str) -> str | None:
            value = name.get(column)
            return None if value is None or pd.isna(value) or value == NOT_REPORTED else str(value)

        label = f"keyword {text('criterion_id') or keyword_id}"
        label += f" ({text('keyword')})" if text("keyword") else ""
        group = " ".join(part for part in (text("ad_group_id"), text("ad_group") and f"({text('ad_group')})") if part)
        label += f" in ad group {group}" if group else ""
        return (
            f"{label}: {money.format(known.loc[position, 'previous_bid'])} → {money.format(known.loc[position, 'bid'])}"
        )

    summary: dict[str, object] = {
        "bids_changed": int(changed.sum()),
        "bids_unchanged": int((~changed).sum()),
        "bids_new": int(published["previous_bid"].isna().sum()),
        "largest_increase": 0.0,
        "largest_decrease": 0.0,
        "largest_increase_keyword": "none",
        "largest_decrease_keyword": "none",
    }
    if len(change) and change.max() > 0:
        summary["largest_increase"] = round(float(change.max()), money.decimals)
        summary["largest_increase_keyword"] = describe(change.idxmax())
    if len(change) and change.min() < 0:
        summary["largest_decrease"] = round(float(change.min()), money.decimals)
        summary["largest_decrease_keyword"] = describe(change.idxmin())
    return summary


def latest_before(days: list[dt.date], day: dt.date) -> dt.date | None:
    earlier = [d for d in days if d < day]
    return max(earlier) if earlier else None


def published_before(store: Warehouse, day: dt.date) -> tuple[dt.date | None, pd.DataFrame | None]:
    """The partition day of the bids published last before `day` (the bids in force on it), and their keyword_id and
    bid; (None, None) before the first publication."""
    published_day = latest_before(store.list_partitions(tables.PUBLISHED_BIDS), day)
    if published_day is None:
        return None, None
    return published_day, store.read_partitions(tables.PUBLISHED_BIDS, [published_day], ["keyword_id", "bid"])


def bids_in_force_on(store: Warehouse, day: dt.date) -> tuple[pd.DataFrame, str]:
    """The bids in force on `day` (`bids_in_force`: the day's report's max CPC, else the bids published last), and
    where they came from, in words."""
    reported = None
    if store.partition_exists(tables.VALIDATED_REPORT, day):
        if "max_cpc" in store.partition_columns(tables.VALIDATED_REPORT, day):
            reported = store.read_partitions(tables.VALIDATED_REPORT, [day], ["keyword_id", "max_cpc"])
    published_day, published = published_before(store, day)
    sources = [
        f"the max CPC of the {day} report" if reported is not None else "",
        f"the bids published for {published_day + dt.timedelta(days=1)}" if published_day else "",
    ]
    named = " else ".join(source for source in sources if source) or "nothing: no bid in force is known"
    return bids_in_force(reported, published), named


def present_columns(store: Warehouse, table: str, day: dt.date, wanted: list[str]) -> list[str]:
    """Those of `wanted` that the day's partition of `table` has: a partition written before a column joined the
    bids table (`criterion_id`, `status`) is read without it, not refused."""
    have = set(store.partition_columns(table, day))
    return [name for name in wanted if name in have]


# What names a keyword to people: the bids table's columns `keyword_names` reads.
NAME_COLUMNS: tuple[str, ...] = ("keyword_id", "criterion_id", "keyword", "ad_group_id", "ad_group")


def keyword_names(store: Warehouse, bids_table: str, day: dt.date) -> pd.DataFrame:
    """The day's bid keywords' criterion IDs, text and ad groups, indexed by keyword_id (for `change_summary`). Bids
    written before criterion_id was kept have their keyword_id as criterion ID, which it was then."""
    names = store.read_partitions(bids_table, [day], present_columns(store, bids_table, day, list(NAME_COLUMNS)))
    if "criterion_id" not in names:
        names["criterion_id"] = names["keyword_id"].astype("int64").astype("string")
    return names.drop(columns="date").set_index("keyword_id")


def ads_editor_columns(store: Warehouse, bids_table: str, day: dt.date) -> list[str]:
    """The columns of the day's bids the Ads Editor CSV is made from, of those its partition has. keyword_id is read
    too: `ads_editor_csv` takes it as the Keyword ID of bids written before criterion_id was kept (when it was the
    criterion ID)."""
    return present_columns(store, bids_table, day, list(dict.fromkeys([*ADS_EDITOR_COLUMNS.values(), "keyword_id"])))


def write_ads_editor_csv(
    store: Warehouse,
    bids_table: str,
    day: dt.date,
    relative_path: str,
    batch_rows: int = BATCH_ROWS,
    currency: str = currencies.DEFAULT_CURRENCY,
    log: Callable[[str], None] | None = None,
) -> None:
    """The day's bids as the Google Ads Editor CSV, written a batch of rows at a time: a 10M-keyword sheet is never
    held whole, and the file appears only once complete (its columns: `ads_editor_columns`). With `log`, progress
    lines (rows written, the rate, the time left) go to it on a long write."""
    columns = ads_editor_columns(store, bids_table, day)
    progress = (
        Progress(f"writing the Ads Editor CSV for {day}", store.partition_rows(bids_table, day), log) if log else None
    )
    with store.byte_writer(relative_path) as sheet:
        for number, batch in enumerate(store.iter_partition(bids_table, day, batch_rows, columns)):
            for piece in ads_editor_pieces(batch, with_header=number == 0, currency=currency):
                sheet.write(piece)
            if progress is not None:
                progress.advance(len(batch))
