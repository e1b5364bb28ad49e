"""The code location: the `Definitions` of Daily Bids, a function of the deployment's `Settings`.

`defs` is the deployment of this process's environment (`BIDS_*` variables, read once), which `dagster dev -m
daily_bids.definitions` and workspace.yaml load; `build_definitions` makes any other, several in one process if need
be (the tests do).
"""

import dagster as dg

from assets import JOBS, SCHEDULES, build_asset_graph
from daily_bids.settings import Settings
from resources import build_resources


def build_definitions(settings: Settings) -> dg.Definitions:
    """The assets, checks, jobs, schedule, sensors and resources of the deployment `settings` describes."""
    graph = build_asset_graph(settings)
    return dg.Definitions(
        assets=graph.assets,
        asset_checks=[*graph.checks, *graph.freshness_checks],
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=graph.sensors,
        resources=build_resources(settings),
        # One process per run: the steps form a chain over shared frames, and a subprocess per step would pay seconds
        # of imports (pandas, great-expectations) each time on a 2-core machine.
        executor=dg.in_process_executor,
    )


SETTINGS = Settings.from_environment()
defs = build_definitions(SETTINGS)
