"""Jobs, schedules and sensors: how the assets are run without anyone clicking.

- The daily chain (report → validated → features → monitoring of yesterday's bids → predictions and the bid
  landscape → bids → published bids) is one run a day, started by `daily_bid_job_schedule` at 05:30 in the account's
  time zone (`BIDS_TIME_ZONE`) for the account's yesterday.
- The models retrain through declarative automation (`assets.retraining`), evaluated by `retraining_sensor`.
- Freshness: the models carry a freshness policy; the daily tables have time-partition freshness checks, evaluated
  by `freshness_checks_sensor`.
- Alerts: failed runs and failed checks are posted to `BIDS_ALERT_WEBHOOK` (`assets.alerts`).
Every sensor and the schedule are on by default under `dagster dev`.
"""

import datetime as dt
import json

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.alerts import FAILED_CHECK_HOOKS, alert_sensors
from assets.features import feature_catalog, keyword_features, keyword_value
from assets.freshness import daily_freshness_checks
from assets.model_lab import model_tuning, user_keras_model
from assets.models import champion_model, deep_model, keyword_clusters, xgboost_model
from assets.monitoring import model_monitoring
from assets.morning import morning_report
from assets.partitions import DEFAULT_SETTINGS, daily_partitions
from assets.reports import raw_keyword_report, validated_keyword_report
from assets.serving import bid_landscape, keyword_scores, published_bids
from daily_bids.memory import release_memory
from daily_bids.settings import Settings
from daily_bids.storage import tables
from resources.ad_platform import GoogleAdsAccount, LandingZoneSource, ReportSource

REPORT_ASSETS = [raw_keyword_report, validated_keyword_report, keyword_features, keyword_value, feature_catalog]
SERVING_ASSETS = [model_monitoring, bid_landscape, keyword_scores, published_bids]
# The morning report closes the daily run; it has no freshness check of its own (the tables it reads have theirs).
DAILY_ASSETS = [*REPORT_ASSETS, *SERVING_ASSETS, morning_report]
HISTORY_ASSETS = REPORT_ASSETS
MODEL_ASSETS = [keyword_clusters, xgboost_model, deep_model, champion_model]
# Run on demand (and tuning after a decline), not with every retraining.
LAB_ASSETS = [model_tuning, user_keras_model]


def freshness_checks(settings: Settings, report_assets=REPORT_ASSETS, serving_assets=SERVING_ASSETS) -> list:
    """Yesterday's partition (or a newer one) of each daily table must exist by its deadline
    (`BIDS_REPORT_DEADLINE`, `BIDS_BIDS_DEADLINE`, read in `BIDS_TIME_ZONE`); the UI shows the verdicts
    (`assets.freshness`). Built on the deployment's assets (its partitions)."""
    return [
        daily_freshness_checks("report_freshness", report_assets, settings.report_deadline, settings.time_zone),
        daily_freshness_checks("bids_freshness", serving_assets, settings.bids_deadline, settings.time_zone),
    ]


# The default deployment's; their keys (one `freshness_check` per daily asset) are every deployment's.
FRESHNESS_CHECKS = freshness_checks(DEFAULT_SETTINGS)


def _without_freshness_checks(assets) -> dg.AssetSelection:
    """The assets and their own checks; freshness checks run from their sensor, not inside the runs they judge."""
    return dg.AssetSelection.assets(*assets) - dg.AssetSelection.checks(*FRESHNESS_CHECKS)


@dg.success_hook(name="release_memory_on_success")
def _release_memory_after_a_step(context: dg.HookContext) -> None:
    release_memory()


@dg.failure_hook(name="release_memory_on_failure")
def _release_memory_after_a_failed_step(context: dg.HookContext) -> None:
    release_memory()


# After every step of a run: the run's tag of failed checks, and the memory the step no longer uses handed back
# before the next step starts in the same process.
STEP_HOOKS = {*FAILED_CHECK_HOOKS, _release_memory_after_a_step, _release_memory_after_a_failed_step}


daily_bid_job = dg.define_asset_job(
    "daily_bid_job",
    hooks=STEP_HOOKS,
    selection=_without_freshness_checks(DAILY_ASSETS),
    description="Yesterday's report to today's published bids: raw → validated (+ quarantine) → features → "
    "monitoring of the bids made for yesterday → predictions and the bid landscape → bids → published "
    "bids.",
    # Run monitoring (platform/dagster.yaml) fails a run that takes longer, such as one whose process was killed.
    tags={"dagster/max_runtime": 3600},
)
history_job = dg.define_asset_job(
    "history_job",
    hooks=STEP_HOOKS,
    selection=_without_freshness_checks(HISTORY_ASSETS),
    description="Reports and features only: for backfilling the history that models train on.",
)
train_model_job = dg.define_asset_job(
    "train_model_job",
    hooks=STEP_HOOKS,
    selection=dg.AssetSelection.assets(*MODEL_ASSETS),
    description="Retrain by hand: clusters, both candidate models, then the champion gate. The retraining sensor "
    "does the same when the models' automation condition asks for it.",
)
tune_models_job = dg.define_asset_job(
    "tune_models_job",
    hooks=STEP_HOOKS,
    selection=dg.AssetSelection.assets(model_tuning),
    description="An Optuna study per candidate kind (`python -m daily_bids models tune`); the next training uses "
    "the best parameters. The retraining sensor runs it after a failed decline check.",
)
register_keras_job = dg.define_asset_job(
    "register_keras_job",
    hooks=STEP_HOOKS,
    selection=dg.AssetSelection.assets(user_keras_model),
    description="Register a .keras file as a challenger (`python -m daily_bids models register-keras PATH`); the "
    "champion gate judges it on its next run.",
)

# Reports for day D are complete after midnight in the account's time zone; bids for D+1 are ready by early morning.
# The schedule is resolved against the job's partitions, those of the assets (`assets.partitions.partitions_for`):
# it runs at 05:30 in their time zone (`BIDS_TIME_ZONE`), for their last partition, the account's yesterday.
daily_bid_schedule = dg.build_schedule_from_partitioned_job(
    daily_bid_job, hour_of_day=5, minute_of_hour=30, default_status=dg.DefaultScheduleStatus.RUNNING
)
retraining_sensor = dg.AutomationConditionSensorDefinition(
    "retraining_sensor",
    target=dg.AssetSelection.assets(*MODEL_ASSETS, model_tuning),
    default_status=dg.DefaultSensorStatus.RUNNING,
    # The retraining condition has conditions of its own (data age, decline) that run Python: evaluated in the code
    # location, as Dagster requires for those.
    use_user_code_server=True,
    description="Evaluates the models' retraining condition (see assets/retraining.py) and launches retraining.",
)


def landing_file_sensor_for(partitions: dg.PartitionsDefinition) -> dg.SensorDefinition:
    """The landing-file sensor of a deployment: it requests only days inside its partitions."""

    @dg.sensor(
        job=history_job,
        minimum_interval_seconds=60,
        description="Requests the reports and features of the days "
        "covered by landing files that are new or changed since the sensor last looked.",
    )
    def landing_file_sensor(context: dg.SensorEvaluationContext, ad_platform: ReportSource):
        return _landing_run_request(context, ad_platform, partitions)

    return landing_file_sensor


def _landing_run_request(context: dg.SensorEvaluationContext, ad_platform: ReportSource, partitions):
    if not isinstance(ad_platform, LandingZoneSource):
        return dg.SkipReason(f"the report source is {type(ad_platform).__name__}, not a landing zone")
    seen = json.loads(context.cursor) if context.cursor else {}
    index, _ = ad_platform.refresh_index()
    files = index.drop_duplicates("path").set_index("path")
    current = {path: [int(row["size"]), int(row["mtime_ns"])] for path, row in files.iterrows()}
    changed = [path for path, stamp in current.items() if seen.get(path) != stamp]
    if not changed:
        return dg.SkipReason("no new or changed landing files")
    partition_keys = set(partitions.get_partition_keys())
    days = sorted({d.date().isoformat() for d in index[index["path"].isin(changed)]["date"].dropna()})
    outside = [d for d in days if d not in partition_keys]
    days = [d for d in days if d in partition_keys]
    if outside:
        context.log.warning(
            f"{len(outside)} day(s) in landing files fall outside the partitions "
            f"(BIDS_FIRST_DAY and today): {outside[:5]}"
        )
    context.update_cursor(json.dumps(current))
    if not days:
        return dg.SkipReason(f"{len(changed)} new file(s), but they cover no day inside the partitions")
    # One single-run backfill over the covered span: a year-long export is one run, not 365.
    return dg.RunRequest(
        run_key=f"landing:{days[0]}:{days[-1]}:{pd.util.hash_pandas_object(pd.Series(sorted(changed))).sum()}",
        tags={
            ASSET_PARTITION_RANGE_START_TAG: days[0],
            ASSET_PARTITION_RANGE_END_TAG: days[-1],
            "daily_bids/landing_files": ", ".join(sorted(changed))[:1000],
        },
    )


@dg.sensor(
    job=history_job,
    minimum_interval_seconds=6 * 3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Google Ads source: compares the last BIDS_GOOGLE_ADS_RESTATEMENT_DAYS days of stored reports with "
    "Google's totals, and requests the reports and features from the first restated day on.",
)
def google_ads_restatement_sensor(context: dg.SensorEvaluationContext, ad_platform: ReportSource):
    return _restatement_run_request(ad_platform)


def _restatement_run_request(ad_platform: ReportSource) -> dg.RunRequest | dg.SkipReason:
    if not isinstance(ad_platform, GoogleAdsAccount):
        return dg.SkipReason(f"the report source is {type(ad_platform).__name__}, not a Google Ads account")
    if ad_platform.restatement_days == 0:
        return dg.SkipReason("BIDS_GOOGLE_ADS_RESTATEMENT_DAYS is 0")
    stored = ad_platform.warehouse.warehouse().list_partitions(tables.RAW_REPORT)
    if not stored:
        return dg.SkipReason("no report is stored yet")
    latest = max(stored)
    window = [day for day in stored if day > latest - dt.timedelta(days=ad_platform.restatement_days)]
    restated = ad_platform.restated_days(window)
    if not restated:
        return dg.SkipReason(f"the {len(window)} latest stored days match Google's totals")
    # Rolling features carry a day into every later one: rebuilt from the first restated day through the latest.
    first = restated[0].isoformat()
    return dg.RunRequest(
        run_key=f"restated:{first}:{latest}:{':'.join(day.isoformat() for day in restated)}:{dt.date.today()}",
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first,
            ASSET_PARTITION_RANGE_END_TAG: latest.isoformat(),
            "daily_bids/restated_days": ", ".join(day.isoformat() for day in restated)[:1000],
        },
    )


JOBS = [daily_bid_job, history_job, train_model_job, tune_models_job, register_keras_job]
SCHEDULES = [daily_bid_schedule]


def build_sensors(settings: Settings, deployment_freshness_checks: list, partitions) -> list[dg.SensorDefinition]:
    """Every sensor of a deployment: landing files, retraining, freshness checks and alerts."""
    return [
        landing_file_sensor_for(partitions),
        retraining_sensor,
        google_ads_restatement_sensor,
        dg.build_sensor_for_freshness_checks(
            freshness_checks=deployment_freshness_checks, default_status=dg.DefaultSensorStatus.RUNNING
        ),
        *alert_sensors(settings),
    ]


# The default deployment's sensors (`assets.build_asset_graph` builds any deployment's).
SENSORS = build_sensors(DEFAULT_SETTINGS, FRESHNESS_CHECKS, daily_partitions)
landing_file_sensor = SENSORS[0]
