"""Asset definitions by layer (reports → features → models → serving), their checks, and how they are run."""

from assets.automation import DAILY_ASSETS, HISTORY_ASSETS, JOBS, MODEL_ASSETS, SCHEDULES, SENSORS
from assets.checks import ALL_CHECKS
from assets.partitions import daily_partitions

ALL_ASSETS = [*DAILY_ASSETS, *MODEL_ASSETS]

__all__ = ["ALL_ASSETS", "ALL_CHECKS", "DAILY_ASSETS", "HISTORY_ASSETS", "JOBS", "MODEL_ASSETS", "SCHEDULES",
           "SENSORS", "daily_partitions"]
