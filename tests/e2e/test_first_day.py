"""A real account's first hour: `python -m daily_bids run` on a fresh warehouse fed with the user's own Google Ads
export, as the README's "Your first day" says to do it (its commands run as written, with HOME in a temp folder).
Each case runs in subprocesses with its own warehouse, landing folder and Dagster instance."""

import csv
import datetime as dt
import io
import os
import re
import subprocess
import sys
import time

import dagster as dg
import pandas as pd
import pytest
from test_readme import readme_block, run_block

from assets import REPORT_ASSETS, SERVING_ASSETS
from assets.alerts import FAILED_CHECKS_TAG
from assets.features import keyword_features
from assets.freshness import FRESHNESS_CHECK
from assets.reports import raw_keyword_report, validated_keyword_report
from daily_bids.features.windows import minimum_history_days, plan_history
from daily_bids.settings import Settings
from daily_bids.simulator.market import EPOCH
from support.deployment import REPO_ROOT, SHARED_DATA, build_definitions, deployment_env
from support.landing_files import google_ads_account_export

# The export ends yesterday (UTC), as a user's download of this morning does: the first morning is judged as such.
LAST_DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def _days(count: int) -> list[dt.date]:
    return [LAST_DAY - dt.timedelta(days=n) for n in range(count - 1, -1, -1)]


@pytest.fixture
def account(tmp_path):
    """A new user's deployment: nothing but a landing folder, and the settings the quick-start exports."""
    (tmp_path / "landing").mkdir()
    env = deployment_env(
        tmp_path, BIDS_SOURCE="landing", BIDS_LANDING_URI=str(tmp_path / "landing"), BIDS_LANDING_SETTLE_SECONDS="0"
    )
    return tmp_path, env


def _run(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daily_bids", "run", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _settled(path):
    """A download finished two minutes ago: older than the landing zone's settle time."""
    moment = time.time() - 120
    os.utime(path, (moment, moment))
    return path


def test_the_readme_first_day_with_a_google_ads_export(tmp_path):
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    export = _settled(google_ads_account_export(downloads / "keyword_report.csv", _days(30), keywords=50))
    env = {**os.environ, "HOME": str(tmp_path)}
    done = run_block(readme_block("~/bids-acme"), env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert f"bidding from the report of {LAST_DAY}" in out  # the landing zone's latest day, not yesterday
    assert "(22 days)" in out  # the training window shrank to the 30 days there are
    assert f"Daily Bids for {LAST_DAY + dt.timedelta(days=1)}" in out and "bids written" in out
    assert "Traceback" not in out + done.stderr
    warehouse = tmp_path / "bids-acme" / "warehouse"
    path = warehouse / "exports" / "google_ads_editor" / f"keyword_bids_{LAST_DAY + dt.timedelta(days=1)}.csv"
    assert f"bid CSV (Ads Editor)   {path}" in out
    rows = list(csv.DictReader(io.StringIO(path.read_text(), newline="")))
    ids = pd.read_csv(export, skiprows=2, dtype=str).iloc[:-1].drop_duplicates("Keyword ID").set_index("Keyword ID")
    written, unbid = re.search(r"bids written +(\d+) .*; (\d+) keywords left unbid", out).groups()
    # Every keyword of the export is judged: bid, or named as unprofitable.
    assert len(rows) == int(written) and int(written) + int(unbid) == len(ids) and len(rows) >= 45
    for row in rows:  # every bid names its keyword, ad group and campaign by the IDs of the user's own export
        source = ids.loc[row["Keyword ID"]]
        assert (row["Campaign ID"], row["Ad group ID"], row["Keyword"]) == (
            source["Campaign ID"],
            source["Ad group ID"],
            source["Keyword"],
        )
        assert row["Match type"] in ("Exact", "Phrase", "Broad") and float(row["Max CPC"]) > 0
    assert len({row["Max CPC"] for row in rows}) > 10  # each keyword its own bid
    # The gate says which model serves; on 30 days that may well be the naive floor, and then it says so.
    serving = next(line for line in out.splitlines() if "champion gate: serving" in line)
    model = next(line for line in out.splitlines() if line.strip().startswith("model "))
    assert ("naive floor" in serving) == ("naive" in model)

    _assert_an_honest_first_morning(tmp_path / "bids-acme", first_report=LAST_DAY - dt.timedelta(days=29))

    # The same warehouse, pointed at another source by mistake: refused in one line, nothing mixed.
    mixed = subprocess.run(
        [sys.executable, "-m", "daily_bids", "run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "BIDS_WAREHOUSE": str(warehouse), "DAGSTER_HOME": str(tmp_path / "bids-acme" / "dagster_home")},
    )
    assert mixed.returncode == 1 and "Traceback" not in mixed.stdout + mixed.stderr
    (line,) = mixed.stderr.strip().splitlines()
    assert f"holds the reports of the landing zone {tmp_path / 'bids-acme' / 'landing'}" in line
    assert "reads the simulator (seed 7)" in line and "BIDS_WAREHOUSE" in line


def _assert_an_honest_first_morning(account, first_report: dt.date) -> None:
    """What the UI shows after the first `run`, read from the same definitions and Dagster instance: the partitions
    start at the first report (none "missing" before the history), every history partition is there, no freshness
    check fails (so the alert sensor has none to send), and the runs name any check that failed."""
    settings = Settings.from_environment(
        {
            "BIDS_SOURCE": "landing",
            "BIDS_LANDING_URI": str(account / "landing"),
            "BIDS_WAREHOUSE": str(account / "warehouse"),
        }
    )
    defs = build_definitions(settings)
    partitions = defs.resolve_job_def("daily_bid_job").partitions_def
    assert partitions.get_first_partition_key() == first_report.isoformat()
    history = {(first_report + dt.timedelta(days=n)).isoformat() for n in range((LAST_DAY - first_report).days + 1)}
    instance = dg.DagsterInstance.from_config(str(account / "dagster_home"))
    # The report and feature history a first run makes: every day of it (later tables begin on the bid day).
    for key in (
        key for asset in (raw_keyword_report, validated_keyword_report, keyword_features) for key in asset.keys
    ):
        assert history - instance.get_materialized_partitions(key) == set(), f"{key.to_user_string()} misses days"
    graph = defs.resolve_asset_graph()
    freshness = [key for key in graph.asset_check_keys if key.name == FRESHNESS_CHECK]
    assert len(freshness) == len([key for asset in (*REPORT_ASSETS, *SERVING_ASSETS) for key in asset.keys])
    # Evaluated now, as freshness_checks_sensor would launch them.
    evaluate = dg.define_asset_job("freshness_now", selection=dg.AssetSelection.checks(*freshness))
    checked = (
        dg.Definitions.merge(defs, dg.Definitions(jobs=[evaluate]))
        .resolve_job_def(evaluate.name)
        .execute_in_process(instance=instance)
    )
    verdicts = checked.get_asset_check_evaluations()
    assert len(verdicts) == len(freshness) and [v.description for v in verdicts if not v.passed] == []
    # The first monitoring partition is empty, and says why.
    monitoring = instance.get_latest_materialization_event(dg.AssetKey("model_monitoring")).asset_materialization
    assert monitoring.partition == LAST_DAY.isoformat() and monitoring.metadata["rows"].value == 0
    assert monitoring.metadata["why_empty"].value.startswith(f"Empty: no predictions were made for {LAST_DAY} ")
    for record in instance.get_run_records():  # green or not, a run says which checks failed in it
        failed = [
            entry.dagster_event.asset_check_evaluation_data
            for entry in instance.all_logs(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if not entry.dagster_event.asset_check_evaluation_data.passed
        ]
        assert (FAILED_CHECKS_TAG in record.dagster_run.tags) == bool(failed), record.dagster_run.job_name


@pytest.mark.skipif(not SHARED_DATA.exists(), reason=f"the real AdWords sample is not at {SHARED_DATA}")
def test_the_readme_walk_through_of_real_adwords_data(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}
    block = readme_block("~/bids-adwords")
    done = run_block(block, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Daily Bids for 2013-04-01 (from the report of 2013-03-31)" in done.stdout
    assert "bid rule               the reports carry no conversion value" in done.stdout
    path = tmp_path / "bids-adwords" / "warehouse" / "exports" / "google_ads_editor" / "keyword_bids_2013-04-01.csv"
    bids = pd.read_csv(path, dtype=str)
    assert len(bids) > 400 and bids["Keyword ID"].notna().all()
    # As the README explains: one value per click, one bid (cold starts get the wider margin).
    assert set(bids["Max CPC"]) <= {"0.56", "0.40"} and (bids["Max CPC"] == "0.56").mean() > 0.9
    # Again as a user who left out the value of a click: the champion is reused, and bidding stops in one line.
    without_value = run_block(block.replace(" BIDS_VALUE_PER_CLICK=0.80", ""), env)
    assert without_value.returncode == 1 and "Traceback" not in without_value.stdout + without_value.stderr
    assert re.search(r"champion (xgb|deep|blend)-\S+ \(trained through", without_value.stdout)  # reused
    assert (
        without_value.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "[daily-bids] the daily bid job for 2013-03-31 did not complete: keyword_scores: cannot bid: the keyword "
            "reports carry no conversion value"
        )
    )
    assert "Set BIDS_VALUE_PER_CLICK" in without_value.stderr
    assert bids[["Campaign ID", "Campaign", "Ad group ID", "Ad group"]].isna().all().all()  # not in the file: empty


def test_too_little_history_gets_one_line_saying_what_it_needs(account):
    folder, env = account
    google_ads_account_export(folder / "landing" / "keyword_report.csv", _days(10), keywords=50)
    done = _run(env)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    first = LAST_DAY - dt.timedelta(days=9)
    assert line == (
        f"[daily-bids] cannot train a first model from the landing zone {folder / 'landing'}: 10 day(s) "
        f"of reports ({first}...{LAST_DAY}); a first model needs at least {minimum_history_days()} (14 "
        f"to train on, 7 to judge it on, and the report after them): add "
        f"{minimum_history_days() - 10} earlier day(s) of reports"
    )
    assert not (folder / "warehouse" / "keyword_features").exists()  # it stopped before doing anything


def test_an_empty_landing_zone_and_a_day_it_does_not_cover_are_explained(account):
    folder, env = account
    done = _run(env)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    # With no report anywhere, the partitions start where a first run's history would: 90 days before yesterday.
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert (
        f"has no reports of days from {plan_history(EPOCH, yesterday).report_days[0]} (BIDS_FIRST_DAY)" in done.stderr
    )
    google_ads_account_export(folder / "landing" / "keyword_report.csv", _days(25), keywords=50)
    done = _run(env, "--day", "2025-06-15")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"[daily-bids] the landing zone {folder / 'landing'} has no report of 2025-06-15; its latest is of {LAST_DAY}"
    )
