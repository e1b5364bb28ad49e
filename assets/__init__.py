"""Asset definitions by layer (reports → features → models → serving), their checks, and how they are run."""

from assets.automation import (
    DAILY_ASSETS,
    FRESHNESS_CHECKS,
    HISTORY_ASSETS,
    JOBS,
    LAB_ASSETS,
    MODEL_ASSETS,
    SCHEDULES,
    SENSORS,
)
from assets.backtest import bid_policy_backtest
from assets.checks import ALL_CHECKS as DATA_CHECKS
from assets.monitoring import model_decline
from assets.partitions import daily_partitions

ALL_ASSETS = [*DAILY_ASSETS, *MODEL_ASSETS, *LAB_ASSETS, bid_policy_backtest]
# The checks that run inside the runs of their assets; the freshness checks run from their own sensor.
ALL_CHECKS = [*DATA_CHECKS, model_decline]

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
    "daily_partitions",
]
