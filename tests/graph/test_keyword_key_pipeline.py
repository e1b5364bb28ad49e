"""Google's keyword key through the whole graph: one criterion ID in three ad groups is three keywords, each with its
own row, features, prediction, bid and Ads Editor line, and the platform's IDs of the later two (2**62 and 2**62 + 1,
which a float would merge) stay exact in every table; removed and paused keywords keep their history but get no
bid."""

import csv
import datetime as dt
import io

import dagster as dg

from assets import ALL_ASSETS, ALL_CHECKS, DAILY_ASSETS, HISTORY_ASSETS, MODEL_ASSETS
from assets.serving import ads_editor_export_path
from daily_bids.ingest.validation import FIRST_NEW_KEYWORD_ID
from daily_bids.settings import Settings
from daily_bids.storage import tables
from resources import build_resources
from support.deployment import materialize_range

START = dt.date(2025, 1, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(40)]
BID_DAY = DAYS[-1]
DUPLICATED_DAY = DAYS[20]
EVERYTHING = [*ALL_ASSETS, *ALL_CHECKS]
SHORT_TRAINING = {
    "ops": {
        "keyword_clusters": {"config": {"profile_days": 21}},
        "xgboost_model": {"config": {"training_days": 21, "validation_days": 4}},
        "deep_model": {"config": {"training_days": 21, "validation_days": 4, "epochs": 10}},
    }
}

SHARED = 4_000_999  # "red shoes", exact, in ad groups 9000, 9001 and 9002: Google gives it one criterion ID in all
# The platform's IDs of its second and third ad groups: above 2**53, so a float would round both to 2**62.
SECOND, THIRD = FIRST_NEW_KEYWORD_ID, FIRST_NEW_KEYWORD_ID + 1
PAUSED, REMOVED = 4_000_005, 4_000_007
HEADER = (
    "Day,Campaign ID,Campaign,Ad group ID,Ad group,Keyword ID,Keyword,Match type,Keyword status,Impr.,Clicks,Cost,"
    "Conversions,Conv. value"
)


def _row(day, group: int, criterion: int, text: str, status: str, impressions: int, clicks: int, value: float) -> str:
    conversions = 1 if value else 0
    return (
        f"{day},7001,Shoes,{9000 + group},Group {group},{criterion},{text},Exact match,{status},{impressions},{clicks},"
        f'"${clicks * 0.5:,.2f}",{conversions}.00,"${value:,.2f}"'
    )


def _export(days) -> list[str]:
    """A Google Ads UI keyword export: title lines, the header, 48 keywords in 6 ad groups, "red shoes" in ad groups
    0, 1 and 2 under one criterion ID (worth 30 a conversion in 0, 80 in 1), keyword 5 paused for the last three
    days, keyword 7 removed on the last, one row repeated on one day, and the Total line."""
    lines = ["Keyword report", f"{days[0]:%B %-d, %Y} - {days[-1]:%B %-d, %Y}", HEADER]
    for day in days:
        step = day.toordinal()
        for k in range(1, 49):
            criterion = 4_000_000 + k
            status = "Enabled"
            impressions, clicks = 60 + (k * 13 + step) % 50, 2 + (k + step) % 6
            if criterion == PAUSED and day >= DAYS[-3]:
                status, impressions, clicks = "Paused", 0, 0
            if criterion == REMOVED and day == BID_DAY:
                status = "Removed"
            value = (40 + k % 7 * 5) if k % 3 == 0 and clicks else 0
            lines.append(_row(day, k % 6, criterion, f"kw {k}", status, impressions, clicks, value))
        lines.append(_row(day, 0, SHARED, "red shoes", "Enabled", 90, 4 + step % 3, 30.0))
        lines.append(_row(day, 1, SHARED, "red shoes", "Enabled", 70, 3 + step % 2, 80.0))
        lines.append(_row(day, 2, SHARED, "red shoes", "Enabled", 50, 2 + step % 2, 55.0))
        if day == DUPLICATED_DAY:  # restated: the same keyword of the same ad group again, the last row wins
            lines.append(_row(day, 1, SHARED, "red shoes", "Enabled", 71, 3, 80.0))
    lines.append("Total: Account," + ",".join(["--"] * 13))
    return lines


def test_a_criterion_in_two_ad_groups_is_two_keywords_and_paused_or_removed_ones_get_no_bid(landing):
    (landing / "keywords.csv").write_text("\n".join(_export(DAYS)) + "\n", encoding="utf-8")
    resources = build_resources(Settings())
    assert materialize_range(EVERYTHING, DAYS[0], DAYS[-2], resources, selection=HISTORY_ASSETS).success
    assert dg.materialize(EVERYTHING, selection=MODEL_ASSETS, resources=resources, run_config=SHORT_TRAINING).success
    result = dg.materialize(EVERYTHING, selection=DAILY_ASSETS, resources=resources, partition_key=BID_DAY.isoformat())
    assert result.success
    store = resources["warehouse"].warehouse()

    # Every row kept but the one restated row; the shared criterion's two keywords have a row each, every day.
    quarantine = store.read_partitions(tables.QUARANTINE, DAYS)
    assert [(row.date.date(), row.keyword_id, row.ad_group_id, row.reason) for row in quarantine.itertuples()] == [
        (DUPLICATED_DAY, SHARED, "9001", "duplicate_superseded")
    ]
    valid = store.read_partitions(tables.VALIDATED_REPORT, DAYS)
    assert len(valid) == len(DAYS) * 51
    shared = valid[valid["criterion_id"] == str(SHARED)]
    ids = shared.groupby("ad_group_id")["keyword_id"].unique().map(list).to_dict()
    assert ids == {"9000": [SHARED], "9001": [SECOND], "9002": [THIRD]}  # one ID each, the same on every day
    assert shared.groupby("ad_group_id").size().to_dict() == {"9000": 40, "9001": 40, "9002": 40}
    registry = store.read_table(tables.KEYWORD_KEYS)
    assert len(registry) == 51 and registry["keyword_id"].is_unique

    features = store.read_partitions(tables.FEATURES, [BID_DAY]).set_index("keyword_id")
    assert features.loc[[PAUSED, REMOVED], "status"].tolist() == ["Paused", "Removed"]
    assert (features.loc[[PAUSED, REMOVED], "history_days"] >= 20).all()  # their history is kept
    predictions = store.read_partitions(tables.PREDICTIONS, [BID_DAY])
    assert {PAUSED, REMOVED, SHARED, SECOND, THIRD} <= set(predictions["keyword_id"])

    # IDs above 2**53 never pass through a float: every table keeps the two new IDs apart, exactly, as int64.
    for table, days in (
        (tables.VALIDATED_REPORT, DAYS),
        (tables.FEATURES, [BID_DAY]),
        (tables.FEATURE_STATE, [BID_DAY]),
        (tables.KEYWORD_VALUE, [BID_DAY]),
        (tables.PREDICTIONS, [BID_DAY]),
        (tables.BIDS, [BID_DAY]),
        (tables.PUBLISHED_BIDS, [BID_DAY]),
        (tables.CLUSTERS, None),
    ):
        keyword_ids = (store.read_table(table) if days is None else store.read_partitions(table, days))["keyword_id"]
        assert keyword_ids.dtype == "int64", table
        assert sorted({int(k) for k in keyword_ids if k >= FIRST_NEW_KEYWORD_ID}) == [SECOND, THIRD], table

    bids = store.read_partitions(tables.BIDS, [BID_DAY]).set_index("keyword_id")
    assert PAUSED not in bids.index and REMOVED not in bids.index
    both = bids.loc[[SHARED, SECOND]]
    assert both["ad_group_id"].tolist() == ["9000", "9001"] and both["criterion_id"].tolist() == [str(SHARED)] * 2
    # Each is bid from its own value: a conversion is worth 30 in ad group 9000 and 80 in 9001.
    assert both.loc[SHARED, "bid"] < both.loc[SECOND, "bid"]

    text = store.read_bytes(ads_editor_export_path(BID_DAY + dt.timedelta(days=1))).decode("utf-8")
    sheet = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(sheet) == len(bids)
    lines = {(row["Keyword ID"], row["Ad group ID"]): row for row in sheet}
    assert (lines[str(SHARED), "9000"]["Ad group"], lines[str(SHARED), "9001"]["Ad group"]) == ("Group 0", "Group 1")
    assert float(lines[str(SHARED), "9000"]["Max CPC"]) == both.loc[SHARED, "bid"]
    assert float(lines[str(SHARED), "9001"]["Max CPC"]) == both.loc[SECOND, "bid"]
    assert float(lines[str(SHARED), "9002"]["Max CPC"]) == bids.loc[THIRD, "bid"]
    assert not {str(PAUSED), str(REMOVED)} & {row["Keyword ID"] for row in sheet}

    # Validating the day again, in a new run, gives every keyword the ID it had.
    again = dg.materialize(
        EVERYTHING,
        selection=[dg.AssetKey(tables.VALIDATED_REPORT)],
        resources=build_resources(Settings()),
        partition_key=BID_DAY.isoformat(),
    )
    assert again.success
    revalidated = store.read_partitions(tables.VALIDATED_REPORT, [BID_DAY])
    before = valid[valid["date"] == valid["date"].max()].reset_index(drop=True)
    assert revalidated[["keyword_id", "ad_group_id", "criterion_id"]].equals(
        before[["keyword_id", "ad_group_id", "criterion_id"]]
    )
    assert store.read_table(tables.KEYWORD_KEYS).equals(registry)
