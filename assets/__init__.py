"""Asset definitions by layer (reports → features → models → serving), their checks, and how they are run.

The module-level lists are the default deployment's graph (every setting at its default); `build_asset_graph`
makes the graph of any deployment from its `Settings`: its partitions (`BIDS_FIRST_DAY`), the models' freshness
window (`BIDS_MODEL_MAX_AGE_DAYS`), the freshness deadlines and the sensors' webhook and partitions. Asset keys,
check names and jobs are every deployment's.
"""

import warnings
from dataclasses import dataclass

import dagster as dg

from assets.automation import (
    DAILY_ASSETS,
    FRESHNESS_CHECKS,
    HISTORY_ASSETS,
    JOBS,
    LAB_ASSETS,
    MODEL_ASSETS,
    REPORT_ASSETS,
    SCHEDULES,
    SENSORS,
    SERVING_ASSETS,
    build_sensors,
    freshness_checks,
)
from assets.backtest import bid_policy_backtest
from assets.checks import ALL_CHECKS as DATA_CHECKS
from assets.monitoring import losing_spend, model_decline
from assets.partitions import daily_partitions, ignore_known_notices, partitions_for, with_partitions
from assets.reports import plausibility
from assets.retraining import model_freshness_policy, retraining_condition
from daily_bids.settings import Settings

ALL_ASSETS = [*DAILY_ASSETS, *MODEL_ASSETS, *LAB_ASSETS, bid_policy_backtest]
# The checks that run inside the runs of their assets; the freshness checks run from their own sensor.
ALL_CHECKS = [*DATA_CHECKS, model_decline, losing_spend]


@dataclass(frozen=True)
class AssetGraph:
    """A deployment's assets, checks and sensors (its jobs and schedule are `JOBS` and `SCHEDULES`: they select
    by key and take the partitions of the assets they run)."""

    assets: list[dg.AssetsDefinition]
    checks: list[dg.AssetsDefinition]
    freshness_checks: list[dg.AssetChecksDefinition]
    sensors: list[dg.SensorDefinition]
    partitions: dg.DailyPartitionsDefinition


def build_asset_graph(settings: Settings) -> AssetGraph:
    """The graph of the deployment `settings` describes. Settings that only assets can judge (the plausibility
    limits against the report contract) are checked here, so a bad one fails when the definitions load."""
    with warnings.catch_warnings():
        ignore_known_notices()
        return _build_asset_graph(settings)


def _build_asset_graph(settings: Settings) -> AssetGraph:
    plausibility(settings)
    partitions = partitions_for(settings)
    models = {key for model in MODEL_ASSETS for key in model.keys}
    model_policies = dict(
        automation_condition=retraining_condition(settings.model_max_age_days, settings.time_zone),
        freshness_policy=model_freshness_policy(settings.model_max_age_days),
    )
    rebuilt = {
        id(asset): with_partitions(asset, partitions, **(model_policies if set(asset.keys) <= models else {}))
        for asset in ALL_ASSETS
    }
    checks = [with_partitions(check, partitions) for check in ALL_CHECKS]
    freshness = freshness_checks(
        settings, [rebuilt[id(a)] for a in REPORT_ASSETS], [rebuilt[id(a)] for a in SERVING_ASSETS]
    )
    return AssetGraph(
        assets=list(rebuilt.values()),
        checks=checks,
        freshness_checks=freshness,
        sensors=build_sensors(settings, freshness, partitions),
        partitions=partitions,
    )


__all__ = [
    "ALL_ASSETS",
    "ALL_CHECKS",
    "DAILY_ASSETS",
    "FRESHNESS_CHECKS",
    "HISTORY_ASSETS",
    "JOBS",
    "MODEL_ASSETS",
    "SCHEDULES",
    "SENSORS",
    "AssetGraph",
    "build_asset_graph",
    "daily_partitions",
]
