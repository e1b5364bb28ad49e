"""The landing-zone source end to end: users' files in, checks in every layer, quarantine, and what blocks."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets import ALL_ASSETS, ALL_CHECKS, DAILY_ASSETS, HISTORY_ASSETS, MODEL_ASSETS
from assets.automation import landing_file_sensor
from daily_bids.settings import Settings
from resources import build_resources
from support.deployment import REPO_ROOT, SHARED_DATA, deployment_env, materialize_range
from support.landing_files import snake_case_rows, write_csv

START = dt.date(2025, 1, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(40)]
EVERYTHING = [*ALL_ASSETS, *ALL_CHECKS]


def _check(result, name):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_dropped_files_land_with_checks_and_a_quarantine_that_reconciles(landing):
    write_csv(landing / "january.csv", snake_case_rows(DAYS[:20]))
    bad = snake_case_rows(DAYS[20:], keywords=range(1, 41))
    bad += [
        "2025-01-25,41,x,c,g,Exact,10,20,1.0,0,0",
        "2025-01-25,42,x,c,g,Exact,10,2,-1.0,0,0",
        "2025-01-26,1,kw 1,Camp 1,Group 1,Exact,99,9,7.2,0,0",
    ]
    write_csv(landing / "february.csv.gz", bad, gz=True)
    resources = build_resources(Settings())
    result = materialize_range(HISTORY_ASSETS + ALL_CHECKS, DAYS[0], DAYS[-1], resources, selection=HISTORY_ASSETS)
    assert result.success
    store = resources["warehouse"].warehouse()
    raw = store.read_partitions("raw_keyword_report", DAYS)
    valid = store.read_partitions("validated_keyword_report", DAYS)
    quarantine = store.read_partitions("keyword_quarantine", DAYS)
    assert len(raw) == len(valid) + len(quarantine) == 40 * 40 + 3
    assert sorted(quarantine["reason"]) == ["clicks_above_impressions", "duplicate_superseded", "negative_value"]
    assert set(quarantine["source_file"]) == {str(landing / "february.csv.gz")}
    assert all(e.passed for e in _daily(result, "quarantine_reconciles").values())
    contracts = _daily(result, "raw_report_contract")
    assert len(contracts) == len(DAYS)  # one verdict per day of the range
    failing = {day: e for day, e in contracts.items() if not e.passed}
    assert sorted(failing) == ["2025-01-25", "2025-01-26"]
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in failing.values())  # bad rows: WARN on raw
    failures = {f["expectation"]: f for e in failing.values() for f in e.metadata["failures"].value}
    assert set(failures) == {"clicks ≤ impressions", "cost ≥ 0", "(date, ad_group_id, keyword_id) is unique"}
    assert all(f["severity"] == "warn" for f in failures.values())
    assert failures["clicks ≤ impressions"]["unexpected"] == 1
    sample = failures["clicks ≤ impressions"]["sample"][0]
    # January's file has a header and 20 × 40 rows, so this row is line 802 of february.csv.gz.
    assert (sample["keyword_id"], sample["clicks"], sample["source_row"]) == (41, 20, 802)
    assert all(e.passed for e in _daily(result, "validated_report_contract").values())
    assert all(e.passed for e in _daily(result, "features_contract").values())


def _daily(result, name) -> dict:
    """A range run's verdicts of one check, by day."""
    return {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == name}


def test_a_day_without_data_fails_its_check_and_blocks_everything_downstream(landing):
    gap = DAYS[10]
    write_csv(landing / "with_gap.csv", snake_case_rows([d for d in DAYS[:12] if d != gap]))
    (landing / "empty.csv").write_bytes(b"")
    resources = build_resources(Settings())
    assert materialize_range(HISTORY_ASSETS + ALL_CHECKS, DAYS[0], DAYS[9], resources, selection=HISTORY_ASSETS).success
    result = dg.materialize(
        EVERYTHING, selection=DAILY_ASSETS, resources=resources, partition_key=gap.isoformat(), raise_on_error=False
    )
    volume = _check(result, "raw_report_volume")
    assert not volume.passed and volume.severity == dg.AssetCheckSeverity.ERROR
    assert "no rows" in volume.metadata["days"].value[gap.isoformat()]
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_keyword_report"}
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert not started & {"validated_keyword_report", "keyword_features", "keyword_scores"}
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed == ["raw_keyword_report_raw_report_volume"] and not result.success


def test_a_file_missing_a_required_column_or_of_another_format_is_named_and_its_day_gets_no_bids(landing):
    write_csv(landing / "no_clicks.csv", ["date,keyword_id,impressions", "2025-01-01,1,10"])
    write_csv(landing / "good.csv", snake_case_rows([DAYS[1]]))
    (landing / "report.pdf").write_bytes(b"%PDF-1.7 the same report, printed")  # a format the zone does not read
    resources = build_resources(Settings())
    result = dg.materialize(
        EVERYTHING, selection=[ALL_ASSETS[0]], resources=resources, partition_key="2025-01-01", raise_on_error=False
    )
    assert not result.success  # the day has no rows it can trust: its volume check blocks it
    assert not _check(result, "raw_report_volume").passed
    named = _check(result, "raw_report_complete")  # and the file is named, with what is wrong with it
    message = named.metadata["unreadable_files"].value[str(landing / "no_clicks.csv")]
    assert "['clicks']" in message and "expected" in message.lower()
    assert (
        "not a format the landing zone reads (.pdf)"
        in named.metadata["unreadable_files"].value[str(landing / "report.pdf")]
    )
    other_day = dg.materialize(
        EVERYTHING,
        selection=[ALL_ASSETS[0]],
        resources=resources,
        partition_key=DAYS[1].isoformat(),
        raise_on_error=False,
    )
    volume = _check(other_day, "raw_report_volume")  # the bad file does not stop the good file's day
    assert volume.passed or volume.severity == dg.AssetCheckSeverity.WARN
    assert len(resources["warehouse"].warehouse().read_partitions("raw_keyword_report", [DAYS[1]])) == 40


def _clicks_only(landing):
    rows = ["date,keyword_id,impressions,clicks"]
    for day in DAYS:
        rows += [f"{day},{k},{100 + (k * 13 + day.toordinal()) % 50},{(k + day.toordinal()) % 5}" for k in range(1, 61)]
    write_csv(landing / "clicks_only.csv", rows)


def test_impressions_and_clicks_only_predicts_clicks_and_says_why_it_cannot_bid(landing, monkeypatch):
    _clicks_only(landing)
    resources = build_resources(Settings())
    assert materialize_range(
        HISTORY_ASSETS + ALL_CHECKS, DAYS[0], DAYS[-2], resources, selection=HISTORY_ASSETS
    ).success
    training = {
        "ops": {
            "keyword_clusters": {"config": {"profile_days": 21}},
            "xgboost_model": {"config": {"training_days": 21, "validation_days": 4}},
            "deep_model": {"config": {"training_days": 21, "validation_days": 4, "epochs": 10}},
        }
    }
    assert dg.materialize(EVERYTHING, selection=MODEL_ASSETS, resources=resources, run_config=training).success
    last = DAYS[-1].isoformat()
    result = dg.materialize(
        EVERYTHING, selection=DAILY_ASSETS, resources=resources, partition_key=last, raise_on_error=False
    )
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "keyword_scores"
    assert "no conversion value" in failure.event_specific_data.error.cause.message
    assert "BIDS_VALUE_PER_CLICK" in failure.event_specific_data.error.cause.message
    # The step failed: the predictions it made never replace the stored ones (their checks could not run).
    assert not resources["warehouse"].warehouse().partition_exists("keyword_predictions", DAYS[-1])

    monkeypatch.setenv("BIDS_VALUE_PER_CLICK", "0.80")
    result = dg.materialize(
        EVERYTHING, selection=DAILY_ASSETS, resources=build_resources(Settings()), partition_key=last
    )
    predictions = resources["warehouse"].warehouse().read_partitions("keyword_predictions", [DAYS[-1]])
    assert len(predictions) == 60 and (predictions["expected_clicks"] > 0).all()
    assert predictions["expected_value_per_click"].isna().all()  # clicks only: the value is the configured one
    bids = resources["warehouse"].warehouse().read_partitions("keyword_bids", [DAYS[-1]])
    assert len(bids) == 60 and set(bids["bid_basis"]) == {"configured_value"}
    assert (bids["bid"] == 0.56).all()  # 0.80 × (1 − 0.3)


def test_sensor_requests_the_days_new_files_cover_once(landing):
    resources = build_resources(Settings())
    write_csv(landing / "week.csv", snake_case_rows(DAYS[:7]))
    with dg.build_sensor_context(resources=resources) as context:
        request = landing_file_sensor(context)
        assert isinstance(request, dg.RunRequest)
        assert (
            request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"],
        ) == (DAYS[0].isoformat(), DAYS[6].isoformat())
        cursor = context.cursor
    with dg.build_sensor_context(resources=resources, cursor=cursor) as context:
        assert isinstance(landing_file_sensor(context), dg.SkipReason)
    write_csv(landing / "next.csv", snake_case_rows(DAYS[7:9]))
    with dg.build_sensor_context(resources=resources, cursor=cursor) as context:
        request = landing_file_sensor(context)
        assert request.tags["dagster/asset_partition_range_start"] == DAYS[7].isoformat()
        assert request.tags["dagster/asset_partition_range_end"] == DAYS[8].isoformat()
    assert sorted(p.name for p in landing.iterdir()) == ["next.csv", "week.csv"]  # inputs untouched


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="the shared AdWords file is not beside the repository")
def test_real_adwords_data_lands_checks_run_and_clicks_are_predicted(tmp_path):
    """Real Google AdWords data (impressions and clicks only) through the CLI, as a user would run it."""
    env = deployment_env(
        tmp_path, BIDS_SOURCE="landing", BIDS_LANDING_URI=str(SHARED_DATA.parent), BIDS_FIRST_DAY="2012-04-15"
    )
    dagster = str(Path(sys.executable).with_name("dagster"))

    def run(*args):
        done = subprocess.run(
            [dagster, "asset", "materialize", "-m", "daily_bids.definitions", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-4000:]

    run(
        "--select",
        "raw_keyword_report,validated_keyword_report,keyword_quarantine,keyword_features",
        "--partition-range",
        "2012-04-15...2012-05-31",  # the 28 training days, and 19 more so the features run on a full window
    )
    window = {"train_through": "2012-05-30"}
    run(
        "--select",
        "keyword_clusters,xgboost_model,deep_model,champion_model",
        "--config-json",
        json.dumps(
            {
                "ops": {
                    "keyword_clusters": {"config": window},
                    "xgboost_model": {"config": {**window, "training_days": 28}},
                    "deep_model": {"config": {**window, "training_days": 28}},
                }
            }
        ),
    )
    run("--select", "keyword_value,keyword_predictions", "--partition", "2012-05-31")

    from daily_bids.storage.warehouse import Warehouse

    store = Warehouse(str(tmp_path / "warehouse"))
    may = [dt.date(2012, 5, 1) + dt.timedelta(days=i) for i in range(31)]
    raw = store.read_partitions("raw_keyword_report", may)
    valid = store.read_partitions("validated_keyword_report", may)
    quarantine = store.read_partitions("keyword_quarantine", may)
    assert len(raw) == len(valid) + len(quarantine) and len(valid) > 10_000
    predictions = store.read_partitions("keyword_predictions", [dt.date(2012, 5, 31)])
    assert predictions["keyword_id"].nunique() > 400
    assert (predictions["effective_date"] == pd.Timestamp("2012-06-01")).all()
    # Impressions and clicks only: no conversions to value a click from, so no posterior and no spread.
    assert predictions["value_per_click_cv"].isna().all()
    assert predictions["expected_clicks"].between(0, 1000).all()
    actual = store.read_partitions("validated_keyword_report", [dt.date(2012, 5, 31)])["clicks"].sum()
    assert 0.3 < predictions["expected_clicks"].sum() / actual < 3  # the right order of magnitude


def test_the_outlier_attack_barely_moves_any_bid_and_a_day_with_swapped_columns_makes_none(landing):
    """A restated row with a conversion value of 10,000,000,000 (and one that parses to inf) once raised 999 of 1,000
    bids; now those rows are quarantined and the day's bids stay where they were. Then the bid day is re-exported
    with its Impr. and Clicks columns swapped: 80% of its rows are quarantined, and no bids are made from the rest."""
    write_csv(landing / "history.csv", _valued_rows(DAYS[:-1]))
    write_csv(landing / "last_day.csv", _valued_rows(DAYS[-1:]))
    resources = build_resources(Settings())
    assert materialize_range(EVERYTHING, DAYS[0], DAYS[-2], resources, selection=HISTORY_ASSETS).success
    assert dg.materialize(EVERYTHING, selection=MODEL_ASSETS, resources=resources, run_config=SHORT_TRAINING).success
    store = resources["warehouse"].warehouse()
    bid_day = DAYS[-1]
    assert dg.materialize(
        EVERYTHING, selection=DAILY_ASSETS, resources=resources, partition_key=bid_day.isoformat()
    ).success
    honest = store.read_partitions("keyword_bids", [bid_day]).set_index("keyword_id")["bid"]

    attacked_day = DAYS[-4]
    huge = "9" * 320  # parses to inf
    write_csv(
        landing / "restated.csv",
        [
            "date,keyword_id,keyword,campaign,ad_group,match_type,impressions,clicks,cost,conversions,conversion_value",
            f'{attacked_day},4,kw 4,Camp 1,Group 4,Exact,80,3,2.40,1,"10,000,000,000"',
            f"{attacked_day},8,kw 8,Camp 2,Group 2,Exact,80,3,2.40,1,{huge}",
        ],
    )
    # The restated days again, as the landing sensor would ask, then the day's bids.
    assert materialize_range(EVERYTHING, attacked_day, bid_day, resources, selection=HISTORY_ASSETS).success
    assert dg.materialize(
        EVERYTHING, selection=DAILY_ASSETS, resources=resources, partition_key=bid_day.isoformat()
    ).success
    quarantine = store.read_partitions("keyword_quarantine", [attacked_day])
    assert sorted(quarantine["reason"]) == ["out_of_range", "out_of_range"]
    assert set(quarantine["source_file"]) == {str(landing / "restated.csv")}
    attacked = store.read_partitions("keyword_bids", [bid_day]).set_index("keyword_id")["bid"]
    assert abs(attacked.median() / honest.median() - 1) < 0.01
    assert (attacked.reindex(honest.index) - honest).abs().max() <= 0.01  # no bid moved more than a cent
    assert (attacked >= resources["bid_policy"].max_bid).sum() == 0

    # The bid day's file re-exported with Impr. and Clicks swapped, and 15 keywords without traffic (which a swap
    # leaves valid): 60 of its 75 rows now have more clicks than impressions.
    header, *rows = _valued_rows([bid_day])
    swapped = header.replace("impressions,clicks", "clicks,impressions")
    idle = [f"{bid_day},{k},kw {k},Camp 0,Group 0,Exact,0,0,0.00,0,0" for k in range(61, 76)]
    write_csv(landing / "last_day.csv", [swapped, *rows, *idle])
    validated_before = store.read_partitions("validated_keyword_report", [bid_day])
    result = dg.materialize(
        EVERYTHING, selection=DAILY_ASSETS, resources=resources, partition_key=bid_day.isoformat(), raise_on_error=False
    )
    verdict = _check(result, "quarantine_stays_small")
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR
    assert verdict.metadata["quarantined_share"].value == 0.8
    assert verdict.metadata["top_reasons"].value == {"clicks_above_impressions": 60}
    assert "80% of the day's rows are quarantined (60 of 75)" in verdict.description
    assert str(landing / "last_day.csv") in verdict.metadata["examples"].value
    # It was the only check to block: the day's bids are not made, and the stored report stays the one checked.
    errors = [e for e in result.get_asset_check_evaluations() if e.severity == dg.AssetCheckSeverity.ERROR]
    blocked = [e.check_name for e in errors if not e.passed]
    assert blocked == ["quarantine_stays_small"]
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert not started & {"keyword_features", "keyword_scores"}
    pd.testing.assert_frame_equal(store.read_partitions("validated_keyword_report", [bid_day]), validated_before)
    pd.testing.assert_series_equal(
        store.read_partitions("keyword_bids", [bid_day]).set_index("keyword_id")["bid"], attacked
    )


SHORT_TRAINING = {
    "ops": {
        "keyword_clusters": {"config": {"profile_days": 21}},
        "xgboost_model": {"config": {"training_days": 21, "validation_days": 4}},
        "deep_model": {"config": {"training_days": 21, "validation_days": 4, "epochs": 10}},
    }
}


def _valued_rows(days) -> list[str]:
    """A small, steady account with conversions and value: 60 keywords in 6 ad groups."""
    rows = ["date,keyword_id,keyword,campaign,ad_group,match_type,impressions,clicks,cost,conversions,conversion_value"]
    for day in days:
        for k in range(1, 61):
            impressions = 60 + (k * 13 + day.toordinal()) % 50
            clicks = 2 + (k + day.toordinal()) % 6
            conversions = 1 if k % 3 == 0 else 0  # steady by keyword, so its value per click (and bid) is too
            rows.append(
                f"{day},{k},kw {k},Camp {k % 3},Group {k % 6},Exact,{impressions},{clicks},"
                f"{clicks * 0.5:.2f},{conversions},{conversions * (40 + k % 7 * 5)}"
            )
    return rows
