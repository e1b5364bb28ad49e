"""Hostile or careless input must not move money: keyword text that attacks spreadsheets or breaks lines, outliers,
bad configuration (plain functions, no Dagster)."""

import csv
import datetime as dt
import io
import math

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest
from pydantic import ValidationError

from daily_bids.bidding.moves import bid_moves
from daily_bids.bidding.policy import BidPolicy
from daily_bids.features.keyword_features import roll
from daily_bids.ingest.landing import read_landing_file
from daily_bids.ingest.validation import Plausibility, validate_report
from daily_bids.serving.ads_editor import ADS_EDITOR_COLUMNS, ads_editor_csv
from daily_bids.settings import Settings
from daily_bids.simulator.market import AdMarketSimulator
from support.deployment import build_definitions
from support.landing_files import HOSTILE_KEYWORDS, ads_editor_keyword

DAY = dt.date(2025, 4, 1)


def _landing_csv(tmp_path, keywords) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # as spreadsheets write it: CR and LF get quoted
    writer.writerow(["date", "keyword_id", "keyword", "campaign", "ad_group", "match_type", "impressions", "clicks"])
    for number, keyword in enumerate(keywords, start=1):
        writer.writerow([DAY.isoformat(), number, keyword, "Camp", "Group", "Exact", 100, 3])
    path = tmp_path / "report.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return str(path)


def test_keyword_text_is_read_exactly_and_rows_are_numbered_by_physical_line(tmp_path):
    raw = read_landing_file(pafs.LocalFileSystem(), _landing_csv(tmp_path, HOSTILE_KEYWORDS))
    assert list(raw["keyword"]) == HOSTILE_KEYWORDS
    # Rows start on line 2; "line\r\nbreak" and "cr\ronly" each take two physical lines.
    expected, line = [], 2
    for keyword in HOSTILE_KEYWORDS:
        expected.append(line)
        line += 1 + keyword.count("\n") + keyword.replace("\r\n", "\n").count("\r")
    assert list(raw["source_row"]) == expected


def test_ads_editor_file_keeps_ids_and_text_and_neutralizes_formulas():
    bids = pd.DataFrame(
        {
            "keyword_id": range(1, len(HOSTILE_KEYWORDS) + 1),
            "campaign_id": "11",
            "campaign": "=Camp",
            "ad_group_id": "-12",
            "ad_group": "Group",
            "keyword": HOSTILE_KEYWORDS,
            "match_type": "Exact",
            "bid": 1.25,
        }
    )
    text = ads_editor_csv(bids).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == list(ADS_EDITOR_COLUMNS)
    assert [int(row["Keyword ID"]) for row in rows] == list(bids["keyword_id"])
    for row, keyword in zip(rows, HOSTILE_KEYWORDS):
        assert row["Keyword"] == ads_editor_keyword(keyword)
        assert row["Campaign"] == "'=Camp" and row["Max CPC"] == "1.25"
        assert (row["Campaign ID"], row["Ad group ID"]) == ("11", "'-12")


def test_a_name_the_report_did_not_carry_is_an_empty_field_not_a_marker():
    bids = pd.DataFrame(
        {
            "keyword_id": [7],
            "campaign_id": ["(not reported)"],
            "campaign": ["(not reported)"],
            "ad_group_id": [pd.NA],
            "ad_group": [None],
            "keyword": ["(not reported)"],
            "match_type": ["Exact"],
            "bid": [0.5],
        }
    )
    (row,) = csv.DictReader(io.StringIO(ads_editor_csv(bids).decode(), newline=""))
    assert row == {
        "Keyword ID": "7",
        "Campaign ID": "",
        "Campaign": "",
        "Ad group ID": "",
        "Ad group": "",
        "Keyword": "",
        "Match type": "Exact",
        "Max CPC": "0.50",
    }


# ---- plausibility: numbers that cannot be true never reach features, priors or bids ------------------------------


def _raw(rows: list[dict]) -> pd.DataFrame:
    base = {
        "date": pd.Timestamp(DAY),
        "keyword": "kw",
        "campaign": "c",
        "ad_group": "g",
        "campaign_id": "1",
        "ad_group_id": "2",
        "match_type": "Exact",
        "impressions": 100.0,
        "clicks": 5.0,
        "cost": 2.0,
        "conversions": 1.0,
        "conversion_value": 40.0,
        "max_cpc": 0.5,
        "search_impression_share": 0.4,
        "source_file": "restated.csv",
        "parse_errors": None,
    }
    return pd.DataFrame([{**base, "source_row": n + 2, **row} for n, row in enumerate(rows)])


def test_impossible_numbers_are_quarantined_as_out_of_range_not_wrapped():
    raw = _raw(
        [
            {"keyword_id": 1, "impressions": 99999999999999999999.0},  # would wrap to negative as int64
            {"keyword_id": 2, "conversion_value": 10_000_000_000.0},
            {"keyword_id": 3, "conversion_value": math.inf},  # a 320-digit number reads as inf
            {"keyword_id": -4},
            {"keyword_id": 0},
            {"keyword_id": 5},
        ]
    )
    result = validate_report(raw, [DAY])
    reasons = dict(zip(result.quarantine["keyword_id"], result.quarantine["reason"]))
    assert reasons == {1: "out_of_range", 2: "out_of_range", 3: "out_of_range", -4: "out_of_range", 0: "out_of_range"}
    assert list(result.valid["keyword_id"]) == [5]
    detail = result.quarantine.set_index("keyword_id").loc[2, "detail"]
    assert "conversion_value" in detail and "1e+08" in detail


def test_plausible_maxima_are_configurable_and_refuse_nonsense():
    tight = Plausibility.from_contract({"conversion_value": 1000})
    result = validate_report(_raw([{"keyword_id": 1, "conversion_value": 5000.0}]), [DAY], tight)
    assert list(result.quarantine["reason"]) == ["out_of_range"]
    for bad in ({"conversion_value": math.inf}, {"conversion_value": -1}, {"not_a_column": 5}):
        with pytest.raises(ValueError):
            Plausibility.from_contract(bad)


def test_a_value_far_above_the_keywords_own_history_is_an_outlier():
    history = pd.DataFrame(
        {
            "keyword_id": [1, 2],
            "impressions": [2800.0, 2800.0],
            "clicks": [140.0, 140.0],
            "cost": [56.0, 56.0],
            "conversions": [28.0, 28.0],
            "conversion_value": [1120.0, 1120.0],
        }
    )
    raw = _raw(
        [
            {"keyword_id": 1, "conversion_value": 100_000.0},  # 89× its 28-day total, above the floor
            {"keyword_id": 2, "conversion_value": 5_000.0},  # 4.5×: a very good day, not an outlier
            {"keyword_id": 3, "conversion_value": 9_000.0},
        ]
    )  # no history, but below the floor
    result = validate_report(raw, [DAY], Plausibility.from_contract(), trailing_totals=history)
    assert dict(zip(result.quarantine["keyword_id"], result.quarantine["reason"])) == {1: "outlier_vs_history"}
    assert "against a 28-day total of 1120" in result.quarantine["detail"].iloc[0]
    # Without any history row (a keyword shard whose keywords are all new), only the floors judge.
    alone = validate_report(raw, [DAY], Plausibility.from_contract(), trailing_totals=history.iloc[0:0])
    assert dict(zip(alone.quarantine["keyword_id"], alone.quarantine["reason"])) == {1: "outlier_vs_history"}


def test_a_restated_outlier_leaves_the_original_row_in_place():
    original = {"keyword_id": 1, "conversion_value": 40.0}
    restated = {"keyword_id": 1, "conversion_value": 10_000_000_000.0, "source_row": 9}
    result = validate_report(_raw([original, restated]), [DAY])
    assert result.valid["conversion_value"].tolist() == [40.0]
    assert result.quarantine["reason"].tolist() == ["out_of_range"]


def test_one_wild_keyword_does_not_move_its_ad_groups_prior():
    simulator = AdMarketSimulator(seed=3, keywords=300)
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=n) for n in range(29)]
    reports = {day: simulator.report(day) for day in days}

    def features_with(factor: float) -> pd.DataFrame:
        def report_for(day):
            report = reports[day].copy()
            if day == days[-3]:  # one keyword's value on one day, multiplied
                report.loc[report.index[0], "conversion_value"] *= factor
            return report

        (*_, (_, features, _)) = roll(days[-1:], report_for)
        return features.set_index("keyword_id")

    honest, attacked = features_with(1.0), features_with(1000.0)
    wild = reports[days[-3]]["keyword_id"].iloc[0]
    group = honest.loc[wild, "ad_group"]
    others = honest.index[(honest["ad_group"] == group) & (honest.index != wild)]
    column = "ad_group_value_per_click_28d"
    change = (attacked.loc[others, column] / honest.loc[others, column] - 1).abs()
    assert change.max() < 0.25, change.max()  # uncapped, it multiplies the group's value per click many times over


# ---- configuration refuses what would reach every bid --------------------------------------------------------------
@pytest.mark.parametrize(
    "bad", [{"max_bid": math.inf}, {"max_bid": 1e309}, {"value_per_click": math.inf}, {"target_margin": math.nan}]
)
def test_bid_policy_refuses_inf_and_nan(bad):
    with pytest.raises(ValidationError):
        BidPolicy(**bad)


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("BIDS_VALUE_PER_CLICK", "inf", "BIDS_VALUE_PER_CLICK='inf' is not a finite number"),
        ("BIDS_VALUE_PER_CLICK", "nan", "BIDS_VALUE_PER_CLICK='nan' is not a finite number"),
        ("BIDS_VALUE_PER_CLICK", "-1", "BIDS_VALUE_PER_CLICK='-1'"),
        ("BIDS_VALUE_QUANTILE", "0.7", "BIDS_VALUE_QUANTILE='0.7': Input should be less than 0.5"),
        ("BIDS_TARGET_MARGIN", "1", "BIDS_TARGET_MARGIN='1': Input should be less than 1"),
        ("BIDS_LOSING_SPEND_WARN_SHARE", "0", "BIDS_LOSING_SPEND_WARN_SHARE='0' is not a share of spend"),
        ("BIDS_SIM_KEYWORDS", "5", "BIDS_SIM_KEYWORDS='5' is outside 300 to 10,000,000"),
        ("BIDS_PLAUSIBLE_MAX", '{"clicks": "many"}', "BIDS_PLAUSIBLE_MAX="),
    ],
)
def test_settings_errors_name_the_variable_when_the_definitions_load(tmp_path, variable, value, message):
    # The deployment of this environment alone (none of the shell's BIDS_* variables), built in this process.
    environment = {"BIDS_WAREHOUSE": str(tmp_path / "warehouse"), variable: value}
    with pytest.raises(ValueError) as refused:
        build_definitions(Settings.from_environment(environment))
    assert message in str(refused.value), str(refused.value)


def test_an_unwritable_warehouse_fails_when_the_definitions_load(tmp_path):
    from resources import build_resources

    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")  # nothing can be written below a file, not even by root
    with pytest.raises(ValueError, match="BIDS_WAREHOUSE=.*not writable"):
        build_resources(Settings(warehouse=str(not_a_folder / "warehouse")))


# ---- bids that move implausibly ------------------------------------------------------------------------------------
def test_bid_moves_name_the_keywords_that_moved_most():
    policy = BidPolicy(max_daily_change=0.5, max_share_large_moves=0.25)
    previous = pd.DataFrame({"keyword_id": range(8), "bid": [1.0] * 8})
    calm = previous.assign(bid=[1.1, 0.9, 1.2, 1.0, 1.0, 0.8, 1.0, 3.0])  # one keyword of eight tripled
    moves = bid_moves(calm, previous, policy)
    assert moves.compared == 8 and moves.share_large == 1 / 8 and not moves.implausible(policy)
    wild = previous.assign(bid=[2.0, 0.1, 5.0, 1.0, np.inf, 1.0, 1.0, 1.0])
    moves = bid_moves(wild, previous, policy)
    assert moves.implausible(policy)
    assert list(moves.large["keyword_id"]) == [4, 2, 0, 1]  # the infinite move first, then +400%, +100%, -90%
    assert bid_moves(calm, None, policy).compared == 0  # a first day has nothing to move from
