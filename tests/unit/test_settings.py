"""The deployment's settings: one typed object, read from the environment in one module only, from which the
definitions are built."""

import ast
import datetime as dt
import os
import time

import dagster as dg
import pandas as pd
import pytest

from daily_bids.bidding.policy import BidPolicy
from daily_bids.settings import Settings, SettingsError, account_now, account_time, account_yesterday
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse
from resources.deployment import BID_POLICY_SETTINGS, FIELDS_NOT_SET_DIRECTLY, build_resources, first_report_day
from support.deployment import REPO_ROOT, build_definitions
from support.landing_files import google_ads_account_export

# The one module that reads the environment.
READER = "daily_bids/settings.py"
# Modules that set variables for third-party libraries (Spark's Python workers, MLflow's S3 endpoint, TensorFlow's
# and the libraries' logging), which read them themselves: writes, not settings.
WRITERS = {"resources/engine.py", "resources/tracking.py", "daily_bids/quiet.py", "daily_bids/__init__.py"}


def _environment_reads(path) -> list[str]:
    """Where a module reads the environment: `os.environ` anywhere but as the target of an assignment or of
    `setdefault`, `os.getenv`, or `environ`/`getenv` imported from os."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            reads += [f"line {node.lineno}: from os import {a.name}" for a in node.names if "env" in a.name]
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"):
            continue
        if node.attr in ("getenv", "getenvb", "environb"):
            reads.append(f"line {node.lineno}: os.{node.attr}")
        elif node.attr == "environ":
            parent = parents.get(node)
            assigned = isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store)
            set_default = isinstance(parent, ast.Attribute) and parent.attr == "setdefault"
            if not ((assigned or set_default) and str(path.relative_to(REPO_ROOT)) in WRITERS):
                reads.append(f"line {node.lineno}: os.environ")
    return reads


def test_only_the_settings_module_reads_the_environment():
    modules = [path for folder in ("daily_bids", "assets", "resources") for path in (REPO_ROOT / folder).rglob("*.py")]
    assert len(modules) > 30
    reads = {
        str(path.relative_to(REPO_ROOT)): found
        for path in modules
        if str(path.relative_to(REPO_ROOT)) != READER and (found := _environment_reads(path))
    }
    assert not reads, reads
    assert _environment_reads(REPO_ROOT / READER)  # the check does see a read


def test_an_unknown_variable_is_refused_naming_the_closest_setting():
    with pytest.raises(ValueError, match="BIDS_BID_POLCY is not a Daily Bids setting; did you mean BIDS_BID_POLICY"):
        Settings.from_environment({"BIDS_BID_POLCY": "fixed_margin"})
    assert Settings.from_environment({"BIDS_BID_POLICY": "fixed_margin", "HOME": "/root"}).bid_policy == "fixed_margin"


def test_values_are_typed_and_errors_name_the_variable():
    settings = Settings.from_environment({"BIDS_FIRST_DAY": "2024-03-01", "BIDS_S3_MAX_ATTEMPTS": "3"})
    assert settings.first_day == dt.date(2024, 3, 1) and settings.s3.max_attempts == 3
    assert settings.value_per_click is None and settings.s3.timeout_seconds == 30.0
    with pytest.raises(ValueError, match="BIDS_S3_TIMEOUT_SECONDS='inf' is not a finite number"):
        Settings.from_environment({"BIDS_S3_TIMEOUT_SECONDS": "inf"})
    with pytest.raises(ValueError, match="BIDS_FIRST_DAY='2024-02-30' is not a date of the form YYYY-MM-DD"):
        Settings.from_environment({"BIDS_FIRST_DAY": "2024-02-30"})


def test_the_time_zone_is_an_iana_name_and_says_what_yesterday_is():
    assert Settings.defaults().time_zone == "UTC"
    assert Settings.from_environment({"BIDS_TIME_ZONE": "America/New_York"}).time_zone == "America/New_York"
    for bad in ("EST+5", "america/new_york", "America", "Mars/Olympus_Mons", "", "../etc/passwd", "localtime"):
        with pytest.raises(SettingsError) as refused:
            Settings.from_environment({"BIDS_TIME_ZONE": bad})
        assert str(refused.value) == (
            f"BIDS_TIME_ZONE={bad!r} is not a time zone: use an IANA name such as America/New_York, Europe/Berlin or UTC"
        )
    # 03:00 UTC on 03-02 is still 22:00 on 03-01 in New York: the account's yesterday is 02-28; in UTC, 03-01.
    moment = dt.datetime(2026, 3, 2, 3, tzinfo=dt.UTC)
    assert account_now("America/New_York", moment) == moment
    assert account_now("America/New_York", moment).isoformat() == "2026-03-01T22:00:00-05:00"
    assert account_yesterday("America/New_York", moment) == dt.date(2026, 2, 28)
    assert account_yesterday("UTC", moment) == dt.date(2026, 3, 1)
    assert account_yesterday("Asia/Tokyo", moment) == dt.date(2026, 3, 1)  # 12:00 on 03-02 there
    assert account_time("America/New_York", dt.date(2026, 3, 2), dt.time(6)) == moment + dt.timedelta(hours=8)
    with pytest.raises(ValueError, match="has no time zone"):
        account_now("UTC", dt.datetime(2026, 3, 2, 3))


def test_two_deployments_build_two_definitions_in_one_process(tmp_path):
    early, late = (
        build_definitions(
            Settings.from_environment({"BIDS_WAREHOUSE": str(tmp_path / first_day), "BIDS_FIRST_DAY": first_day})
        )
        for first_day in ("2024-03-01", "2025-02-01")
    )
    for defs, start in ((early, "2024-03-01"), (late, "2025-02-01")):
        graph = defs.resolve_asset_graph()
        partitioned_checks = [graph.get_check_spec(key).partitions_def for key in graph.asset_check_keys]
        starts = {
            defs.resolve_job_def("daily_bid_job").partitions_def.start,
            graph.get(dg.AssetKey("keyword_features")).partitions_def.start,
            *(partitions.start for partitions in partitioned_checks if partitions is not None),
        }
        assert {when.date().isoformat() for when in starts} == {start}
        assert defs.resources["warehouse"].uri == str(tmp_path / start)


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("BIDS_SOURCE", "ftp", "BIDS_SOURCE='ftp' is not a report source; use simulator or landing or google_ads"),
        ("BIDS_ENGINE", "gpu", "BIDS_ENGINE='gpu' is not an engine; use local or spark"),
        ("BIDS_SCORING_ENGINE", "gpu", "BIDS_SCORING_ENGINE='gpu' is not an engine; use local or spark"),
        (
            "BIDS_SIM_MARKET",
            "dutch",
            "BIDS_SIM_MARKET='dutch' is not an auction shape; use share_of_bid or second_price",
        ),
    ],
)
def test_a_setting_of_a_few_words_refuses_any_other_naming_the_choices(variable, value, message):
    with pytest.raises(SettingsError) as refused:
        Settings.from_environment({variable: value})
    assert str(refused.value) == message


def test_the_engine_setting_reads_its_deprecated_name_and_refuses_both_names_disagreeing(monkeypatch):
    assert Settings.defaults().engine == "local"
    assert Settings.from_environment({"BIDS_ENGINE": "spark"}).engine == "spark"
    assert Settings.from_environment({"BIDS_SCORING_ENGINE": "spark"}).engine == "spark"  # deprecated, still read
    assert Settings.from_environment({"BIDS_ENGINE": "spark", "BIDS_SCORING_ENGINE": "spark"}).engine == "spark"
    with pytest.raises(SettingsError) as refused:
        Settings.from_environment({"BIDS_ENGINE": "local", "BIDS_SCORING_ENGINE": "spark"})
    assert str(refused.value) == (
        "BIDS_ENGINE='local' and BIDS_SCORING_ENGINE='spark' disagree; BIDS_SCORING_ENGINE is the deprecated name of "
        "BIDS_ENGINE: set BIDS_ENGINE only"
    )
    monkeypatch.setenv("BIDS_SCORING_ENGINE", "spark")  # the process environment, as a code location reads it
    assert Settings().engine == "spark"
    monkeypatch.setenv("BIDS_ENGINE", "local")
    with pytest.raises(ValueError, match="disagree"):
        Settings()


def test_every_bid_policy_field_a_user_changes_is_a_setting_with_the_policy_default():
    settings = Settings.defaults()
    assert set(BidPolicy.model_fields) - set(BID_POLICY_SETTINGS) == FIELDS_NOT_SET_DIRECTLY
    assert {"min_bid", "max_bid", "min_history_days", "cold_start_margin", "max_daily_change"} <= set(
        BID_POLICY_SETTINGS
    )
    for policy_field, setting in BID_POLICY_SETTINGS.items():
        default = BidPolicy.model_fields[policy_field].default
        assert getattr(settings, setting) == default, f"{Settings.env_name(setting)}'s default is not BidPolicy's"


def test_bid_policy_settings_reach_the_bid_policy_and_bad_ones_name_their_variable(tmp_path):
    def policy(**variables):
        return build_resources(Settings.from_environment({"BIDS_WAREHOUSE": str(tmp_path), **variables}))["bid_policy"]

    chosen = policy(
        BIDS_MIN_BID="0.1", BIDS_MAX_BID="4", BIDS_MIN_HISTORY_DAYS="3", BIDS_COLD_START_MARGIN="0.6",
        BIDS_MAX_DAILY_CHANGE="0.4", BIDS_MAX_SHARE_LARGE_MOVES="0.5", BIDS_EXPLORATION_SPREAD="0.1",
    )  # fmt: skip
    assert (chosen.min_bid, chosen.max_bid, chosen.min_history_days, chosen.cold_start_margin) == (0.1, 4.0, 3, 0.6)
    assert (chosen.max_daily_change, chosen.max_share_large_moves, chosen.exploration_spread) == (0.4, 0.5, 0.1)
    with pytest.raises(ValueError, match=r"^BIDS_MIN_HISTORY_DAYS='40': Input should be less than or equal to 28$"):
        policy(BIDS_MIN_HISTORY_DAYS="40")
    with pytest.raises(ValueError, match=r"^BIDS_COLD_START_MARGIN='1.5': Input should be less than 1$"):
        policy(BIDS_COLD_START_MARGIN="1.5")
    with pytest.raises(ValueError, match=r"^bid policy: BIDS_MIN_BID 5.0 is above BIDS_MAX_BID 1.0$"):
        policy(BIDS_MIN_BID="5", BIDS_MAX_BID="1")
    with pytest.raises(SettingsError, match=r"^BIDS_MAX_BID='lots' is not a number$"):
        policy(BIDS_MAX_BID="lots")
    with pytest.raises(SettingsError, match="BIDS_MIN_BIDS is not a Daily Bids setting; did you mean BIDS_MIN_BID?"):
        policy(BIDS_MIN_BIDS="0.1")


def test_the_partitions_start_where_the_account_history_starts(tmp_path):
    today = dt.date(2026, 12, 6)
    landing = tmp_path / "landing"
    landing.mkdir()
    simulator = Settings.from_environment({"BIDS_WAREHOUSE": str(tmp_path / "simulated")})
    zone = Settings.from_environment(
        {"BIDS_WAREHOUSE": str(tmp_path / "account"), "BIDS_SOURCE": "landing", "BIDS_LANDING_URI": str(landing)}
    )
    # Before any report: the first day a first run fetches, as BIDS_FIRST_DAY's description says.
    assert first_report_day(simulator, today) == dt.date(2026, 12, 5) - dt.timedelta(days=90)
    assert first_report_day(zone, today) == dt.date(2026, 12, 5) - dt.timedelta(days=90)
    # A landing zone: the earliest day its files cover; the setting always wins.
    _settled(google_ads_account_export(landing / "report.csv", [dt.date(2025, 5, 1), dt.date(2025, 5, 2)], keywords=3))
    assert first_report_day(zone, today) == dt.date(2025, 5, 1)
    assert first_report_day(zone.model_copy(update={"first_day": dt.date(2025, 5, 2)}), today) == dt.date(2025, 5, 2)
    # Once the warehouse holds reports, the earliest of them, or of the landing index the runs keep.
    Warehouse(str(tmp_path / "account")).write_partition(
        tables.RAW_REPORT, dt.date(2025, 5, 2), pd.DataFrame({"keyword_id": [1]})
    )
    assert first_report_day(zone, today) == dt.date(2025, 5, 1)
    Warehouse(str(tmp_path / "simulated")).write_partition(
        tables.RAW_REPORT, dt.date(2026, 9, 1), pd.DataFrame({"keyword_id": [1]})
    )
    assert first_report_day(simulator, today) == dt.date(2026, 9, 1)


def _settled(path):
    """A file older than the landing zone's settle time."""
    moment = time.time() - 120
    os.utime(path, (moment, moment))
    return path


def test_the_largest_quarantined_share_is_a_share_of_rows():
    assert Settings.defaults().max_quarantined_share == 0.2
    assert Settings.from_environment({"BIDS_MAX_QUARANTINED_SHARE": "1"}).max_quarantined_share == 1.0  # check off
    for bad in ("1.5", "-0.1", "", "nan"):
        with pytest.raises(SettingsError, match=f"BIDS_MAX_QUARANTINED_SHARE={bad!r} is not a"):
            Settings.from_environment({"BIDS_MAX_QUARANTINED_SHARE": bad})


@pytest.mark.parametrize(
    "environment, message",
    [
        (
            {"BIDS_SOURCE": "google_ads"},
            "BIDS_SOURCE='google_ads' needs BIDS_GOOGLE_ADS_CUSTOMER_ID: the customer ID of the account to bid in",
        ),
        (
            {"BIDS_SOURCE": "google_ads", "BIDS_GOOGLE_ADS_CUSTOMER_ID": "123-45"},
            "BIDS_GOOGLE_ADS_CUSTOMER_ID='123-45' is not a Google Ads customer ID (ten digits, as 123-456-7890 or "
            "1234567890)",
        ),
        (
            {"BIDS_GOOGLE_ADS_PUBLISH": "yes"},
            "BIDS_GOOGLE_ADS_PUBLISH='yes' is not a publishing mode; use validate_only or apply",
        ),
        ({"BIDS_GOOGLE_ADS_RESTATEMENT_DAYS": "120"}, "BIDS_GOOGLE_ADS_RESTATEMENT_DAYS='120' is outside 0 to 90"),
    ],
)
def test_a_google_ads_account_is_refused_until_it_is_named_and_dry_runs_by_default(environment, message):
    with pytest.raises(SettingsError) as refused:
        Settings.from_environment(environment)
    assert str(refused.value) == message
    account = Settings.from_environment({"BIDS_SOURCE": "google_ads", "BIDS_GOOGLE_ADS_CUSTOMER_ID": "1234567890"})
    assert account.google_ads_publish == "validate_only" and account.google_ads_restatement_days == 14
