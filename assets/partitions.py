"""The one partitions definition of the graph: partition D is the keyword report of the account's day D (in
`BIDS_TIME_ZONE`, the zone Google reports in), from the deployment's first day (`BIDS_FIRST_DAY`, or where the
account's history starts). The daily schedule takes its time zone from these partitions.

The asset and check definitions in this package are written once, against the default deployment's partitions
(`daily_partitions`); `with_partitions` gives a definition another deployment's, which is how
`assets.build_asset_graph(settings)` makes the graph of any deployment, several in one process if need be.
"""

import datetime as dt
import warnings

import dagster as dg

from daily_bids.settings import Settings
from resources.deployment import first_report_day


def ignore_known_notices() -> None:
    """Warning filters for what Dagster says of features the graph uses on purpose; set when this module loads, and
    again while `assets.build_asset_graph` builds a deployment's graph (under pytest, which resets the filters)."""
    # Single-run backfills, lookback windows over the partition start and partitioned checks are what the graph is built
    # on; Dagster still labels them beta or preview, which is not news worth a warning on every load.
    warnings.filterwarnings(
        "ignore", category=dg.BetaWarning, message="Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)`"
    )
    warnings.filterwarnings(
        "ignore", category=dg.PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec"
    )
    # Partition freshness checks are kept on purpose (assets.freshness): a FreshnessPolicy does not see partitions, so a
    # backfill of an old day would make a daily table look fresh. Dagster's sensor still evaluates them on time.
    warnings.filterwarnings(
        "ignore", category=dg.SupersessionWarning, message="Function `build_sensor_for_freshness_checks`"
    )
    # The retraining condition has Python conditions of its own, which Dagster evaluates only in the code location.
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message="Parameter `use_user_code_server`")


ignore_known_notices()


def partitions_for(settings: Settings) -> dg.DailyPartitionsDefinition:
    """The daily partitions of a deployment: one a day of the account's time zone (`BIDS_TIME_ZONE`) from its first
    day (`BIDS_FIRST_DAY`, or where the account's history starts: `resources.deployment.first_report_day`). The last
    is the account's yesterday: a day's partition exists once the day has ended there."""
    return dg.DailyPartitionsDefinition(start_date=first_report_day(settings).isoformat(), timezone=settings.time_zone)


# The deployment the definitions of this package are written against: every setting at its default, with partitions
# from a fixed day (a deployment's own start from its history is given to its graph by `assets.build_asset_graph`).
DEFAULT_SETTINGS = Settings.defaults()
TEMPLATE_FIRST_DAY = dt.date(2025, 1, 1)
daily_partitions = dg.DailyPartitionsDefinition(start_date=TEMPLATE_FIRST_DAY.isoformat())

# Every daily asset: a date range materializes in one run (what `--partition-range` needs).
DAILY_ASSET_POLICIES = dict(partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run())
# Fetching from a source can hit passing network trouble; such steps are retried with backoff.
SOURCE_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The days this run materializes: one, or a whole range in a single-run backfill."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days)]


def with_partitions(
    definition: dg.AssetsDefinition, partitions: dg.PartitionsDefinition, **spec_attributes
) -> dg.AssetsDefinition:
    """`definition` (assets, or checks) with `partitions` in place of its daily partitions, and any other asset spec
    attributes replaced (e.g. `automation_condition`). Asset keys, check names, code and policies stay."""
    if isinstance(definition, dg.AssetChecksDefinition):
        return _checks_with_partitions(definition, partitions)
    if definition.node_check_specs_by_output_name:
        raise ValueError(f"{definition.keys}: declare checks with @asset_check, not inside the asset")
    return definition.map_asset_specs(
        lambda spec: spec.replace_attributes(
            partitions_def=partitions if spec.partitions_def is not None else None, **spec_attributes
        )
    )


def _checks_with_partitions(
    checks: dg.AssetChecksDefinition, partitions: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    """A partitioned check with other partitions. Dagster has no public way to replace a check's partitions (it marks
    partitioned checks as preview), so its check specs are rebuilt around the same node."""
    check_specs = {
        output: spec._replace(partitions_def=partitions) if spec.partitions_def is not None else spec
        for output, spec in checks.node_check_specs_by_output_name.items()
    }
    return dg.AssetChecksDefinition.create(
        keys_by_input_name=checks.node_keys_by_input_name,
        node_def=checks.node_def,
        check_specs_by_output_name=check_specs,
        can_subset=checks.can_subset,
        resource_defs=checks.resource_defs,
    )
