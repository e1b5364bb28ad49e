"""The code location: the single `Definitions` object of Daily Bids."""

import dagster as dg

from assets import ALL_ASSETS, ALL_CHECKS, FRESHNESS_CHECKS, JOBS, SCHEDULES, SENSORS
from resources import build_resources

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=[*ALL_CHECKS, *FRESHNESS_CHECKS],
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=build_resources(),
    # One process per run: the steps form a chain over shared frames, and a subprocess per step would pay seconds of
    # imports (pandas, great-expectations) each time on a 2-core machine.
    executor=dg.in_process_executor,
)
