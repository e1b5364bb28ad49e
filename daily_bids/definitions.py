"""The code location: the single `Definitions` object of Daily Bids."""

import dagster as dg

from assets import ALL_ASSETS, ALL_CHECKS, DAILY_ASSETS, HISTORY_ASSETS, MODEL_ASSETS, daily_partitions
from resources import build_resources

daily_bid_job = dg.define_asset_job(
    "daily_bid_job",
    selection=dg.AssetSelection.assets(*DAILY_ASSETS),
    partitions_def=daily_partitions,
    description="Yesterday's report to today's bids: raw → validated → features → predictions → bids.",
)
history_job = dg.define_asset_job(
    "history_job",
    selection=dg.AssetSelection.assets(*HISTORY_ASSETS),
    partitions_def=daily_partitions,
    description="Reports and features only: for backfilling the history that models train on.",
)
train_model_job = dg.define_asset_job(
    "train_model_job", selection=dg.AssetSelection.assets(*MODEL_ASSETS), description="Retrain the XGBoost model."
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[daily_bid_job, history_job, train_model_job],
    schedules=[
        # Reports for day D are complete after midnight UTC; bids for D+1 are ready by early morning.
        dg.build_schedule_from_partitioned_job(daily_bid_job, hour_of_day=5, minute_of_hour=30),
        dg.ScheduleDefinition(job=train_model_job, cron_schedule="0 4 * * 1", execution_timezone="UTC"),
    ],
    resources=build_resources(),
)
