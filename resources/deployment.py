"""The resource set of a deployment, built from its `Settings` (the `BIDS_*` environment variables).

The settings are validated when they are read (`daily_bids.settings`); what only the resources can judge (a
writable warehouse folder, the simulator's account size, the bid policy's bounds) is checked here, when the
definitions load, so a wrong setting fails in seconds with the variable's name, not forty seconds into a run with a
field's name.
"""

import datetime as dt
import re

import pydantic

from daily_bids.bidding.budgets import read_campaign_budgets
from daily_bids.bidding.policy import BidPolicy
from daily_bids.features.windows import plan_history
from daily_bids.ingest.landing import covered_days
from daily_bids.settings import Settings, account_yesterday
from daily_bids.simulator.market import EPOCH, MAX_KEYWORDS, MIN_KEYWORDS
from daily_bids.storage import tables
from daily_bids.storage.warehouse import SourceMismatchError, Warehouse
from resources.ad_platform import GoogleAdsAccount, LandingZoneSource, ReportSource, SimulatedAdPlatform
from resources.bid_policy import BidPolicyResource
from resources.engine import EngineResource
from resources.io_managers import ModelIOManager, WarehouseIOManager
from resources.tracking import ExperimentTracker
from resources.warehouse import BoundedS3Resource, WarehouseResource


def build_resources(settings: Settings) -> dict[str, object]:
    """The resources of the deployment `settings` describes (see the README's table of variables). `settings` is
    one of them: the assets and checks that judge by a setting (plausibility limits, the decline margin) read it."""
    warehouse = deployment_warehouse(settings)
    s3 = warehouse.s3
    if not warehouse.uri.startswith("s3://"):
        _require_writable(warehouse.uri)
    bid_policy = _bid_policy(settings)
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "model_io_manager": ModelIOManager(warehouse=warehouse),
        "ad_platform": _report_source(settings, warehouse, s3),
        "bid_policy": bid_policy,
        "tracker": ExperimentTracker(
            tracking_uri=settings.mlflow_tracking_uri, artifact_location=settings.mlflow_artifacts, s3=s3
        ),
        "scoring": EngineResource(
            engine=settings.engine,
            spark_master=settings.spark_master,
            spark_driver_host=settings.spark_driver_host,
        ),
        "settings": settings,
    }


def deployment_warehouse(settings: Settings) -> WarehouseResource:
    """The deployment's warehouse (`BIDS_WAREHOUSE`) with its S3 settings: what the resources and the CLI's reading
    commands open."""
    return WarehouseResource(uri=settings.warehouse, s3=BoundedS3Resource.from_options(settings.s3))


def first_report_day(settings: Settings, today: dt.date | None = None) -> dt.date:
    """The first day of the deployment's partitions: `BIDS_FIRST_DAY`, or where the account's history starts.
    `today` is the account's (default: today in `BIDS_TIME_ZONE`).

    That is the earliest report in the warehouse, and for a landing zone also the earliest day its files cover (its
    index as the runs keep it; before the first run, brought up to date as a run would). With neither, the first day
    a first `run` fetches for yesterday's bids (the simulator has every day; a landing zone without files has none
    to show). Fixed when the definitions load: reload the code location after dropping files of earlier days."""
    if settings.first_day is not None:
        return settings.first_day
    warehouse = deployment_warehouse(settings)
    known = warehouse.warehouse().list_partitions(tables.RAW_REPORT)[:1]
    if settings.source == "landing":
        known += _landing_days(settings, warehouse, refresh=not known)[:1]
    if known:
        return min(known)
    yesterday = today - dt.timedelta(days=1) if today else account_yesterday(settings.time_zone)
    return plan_history(EPOCH, yesterday).report_days[0]


def _landing_days(settings: Settings, warehouse: WarehouseResource, refresh: bool) -> list[dt.date]:
    """The days the landing zone's files cover: from its index as the runs keep it, or (`refresh`, before the
    first run) brought up to date now. None when the warehouse holds another source's reports: the run refuses that
    with its own message."""
    if not refresh:
        store = warehouse.warehouse()
        return covered_days(store.read_table(tables.LANDING_INDEX)) if store.table_exists(tables.LANDING_INDEX) else []
    try:
        return _report_source(settings, warehouse, warehouse.s3).covered_days()
    except SourceMismatchError:
        return []


def _bid_policy(settings: Settings) -> BidPolicyResource:
    """The bid policy from its settings; an invalid one is refused naming the variable that set it."""
    from_settings = {field: getattr(settings, name) for field, name in BID_POLICY_SETTINGS.items()}
    values = {field: value for field, value in from_settings.items() if value is not None}
    if settings.campaign_budgets:
        values["campaign_budgets"] = read_campaign_budgets(settings.campaign_budgets)
    try:
        return BidPolicyResource(**values)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        field = first["loc"][0] if first["loc"] and first["loc"][0] in from_settings else None
        if field:
            raise ValueError(
                f"{Settings.env_name(BID_POLICY_SETTINGS[field])}={_as_given(from_settings[field])!r}: {first['msg']}"
            ) from None
        # A rule between fields (min_bid above max_bid): its message names the fields, shown as their variables.
        message = str((first.get("ctx") or {}).get("error") or first["msg"])
        for policy_field in sorted(BID_POLICY_SETTINGS, key=len, reverse=True):
            message = re.sub(rf"\b{policy_field}\b", Settings.env_name(BID_POLICY_SETTINGS[policy_field]), message)
        raise ValueError(f"bid policy: {message}") from None


# Bid policy fields that are no setting: the budgets are read from the file BIDS_CAMPAIGN_BUDGETS names, and the
# exploration's seed only makes a day's draws repeatable.
FIELDS_NOT_SET_DIRECTLY = {"campaign_budgets", "exploration_seed"}


def _setting_name(policy_field: str) -> str:
    """The setting of a bid policy field: the field's own name, but BIDS_BID_POLICY for `policy`."""
    return "bid_policy" if policy_field == "policy" else policy_field


# The setting behind each bid policy field, derived from the two models so that a field added to one is not missed.
BID_POLICY_SETTINGS = {
    field: _setting_name(field)
    for field in BidPolicy.model_fields
    if field not in FIELDS_NOT_SET_DIRECTLY and _setting_name(field) in Settings.model_fields
}


def _as_given(value: object) -> str:
    """A setting's value as it would be written in its variable: `-1`, not `-1.0`."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _require_writable(uri: str) -> None:
    """A local warehouse folder must exist or be creatable, and take a file."""
    store = Warehouse(uri)
    try:
        store.write_bytes(".write_probe", b"")
        store.fs.delete_file(store.path(".write_probe"))
    except OSError as error:
        raise ValueError(f"BIDS_WAREHOUSE={uri!r}: the warehouse folder is not writable ({error})") from None


def _report_source(settings: Settings, warehouse: WarehouseResource, s3: BoundedS3Resource) -> ReportSource:
    if settings.source == "simulator":
        if not MIN_KEYWORDS <= settings.sim_keywords <= MAX_KEYWORDS:
            raise ValueError(
                f"BIDS_SIM_KEYWORDS={str(settings.sim_keywords)!r} is outside {MIN_KEYWORDS:,} to {MAX_KEYWORDS:,}"
            )
        return SimulatedAdPlatform(
            warehouse=warehouse, seed=settings.sim_seed, keywords=settings.sim_keywords, market=settings.sim_market
        )
    if settings.source == "google_ads":
        return GoogleAdsAccount(
            warehouse=warehouse,
            customer_id=settings.google_ads_customer_id,
            login_customer_id=settings.google_ads_login_customer_id,
            config_file=settings.google_ads_config,
            validate_only=settings.google_ads_publish == "validate_only",
            restatement_days=settings.google_ads_restatement_days,
            batch_job_threshold=settings.google_ads_batch_job_threshold,
            currency=settings.currency,
            time_zone=settings.time_zone,
        )
    return LandingZoneSource(
        uri=settings.landing_uri,
        warehouse=warehouse,
        s3=s3,
        column_map=settings.landing_column_map,
        date_format=settings.landing_date_format,
        max_file_mb=settings.landing_max_file_mb,
        max_uncompressed_mb=settings.landing_max_uncompressed_mb,
        max_gzip_ratio=settings.landing_max_gzip_ratio,
        settle_seconds=settings.landing_settle_seconds,
    )
