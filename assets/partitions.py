"""The one partitions definition of the graph: partition D is the keyword report of day D (UTC)."""

import datetime as dt
import warnings

import dagster as dg

from daily_bids import settings

# Single-run backfills, lookback windows over the partition start and partitioned checks are what the graph is built
# on; Dagster still labels them beta or preview, which is not news worth a warning on every load.
warnings.filterwarnings(
    "ignore", category=dg.BetaWarning, message="Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)`"
)
warnings.filterwarnings(
    "ignore", category=dg.PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec"
)
# Time-partition freshness checks are kept on purpose: a FreshnessPolicy does not see partitions, so a backfill of an
# old day would make a daily table look fresh; these checks ask for yesterday's partition by a deadline.
warnings.filterwarnings(
    "ignore",
    category=dg.SupersessionWarning,
    message="Function `build_(time_partition_freshness_checks|sensor_for_freshness_checks)`",
)
# The retraining condition has Python conditions of its own, which Dagster evaluates only in the code location.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message="Parameter `use_user_code_server`")

daily_partitions = dg.DailyPartitionsDefinition(start_date=settings.first_day().isoformat())

# Every daily asset: a date range materializes in one run (what `--partition-range` needs).
DAILY_ASSET_POLICIES = dict(partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run())
# Fetching from a source can hit passing network trouble; such steps are retried with backoff.
SOURCE_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The days this run materializes: one, or a whole range in a single-run backfill."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days)]
