"""Freshness of the daily tables: yesterday's partition, or a newer one, must exist by a deadline.

A `FreshnessPolicy` judges the time of the last materialization, so a backfill of an old day would make a daily
table look fresh; these checks judge partitions. Dagster's `build_time_partition_freshness_checks` does too, but it
asks for exactly one partition: a table whose next day is already there (the first morning's `make run` bids from
yesterday's report before the day-before's deadline has moved on) was reported overdue, and one with partitions
starting after the deadline could not be judged at all. Here:

- the partition due is the last day that ended by the latest tick of the deadline cron, both read in the account's
  time zone (`BIDS_TIME_ZONE`, the zone of the partitions);
- it is fresh when that day *or a newer one* is materialized;
- nothing is due before the table's first partition, nor before its first materialization (the daily schedule's
  first run makes it; a run that fails is alerted as a failed run);
- a run of past partitions only (a history backfill, which Dagster runs with the checks of its assets) judges
  nothing: it says nothing of today's table, and a backfill launched after the deadline, before the day's run, would
  report the table overdue, and alert, while it is being set up. Its verdict says so and is fresh only until then,
  so the freshness sensor judges the table on its next tick.

The verdict carries Dagster's `dagster/fresh_until_timestamp`, which `build_sensor_for_freshness_checks` reads to
evaluate the check again once the next deadline has passed.
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG

from daily_bids.settings import account_now

FRESHNESS_CHECK = "freshness_check"  # the check's name on every daily table
# Read by Dagster's freshness sensor: after this moment the check can be overdue again.
FRESH_UNTIL = "dagster/fresh_until_timestamp"
_TICK_FORMAT = "%Y-%m-%dT%H:%M"


def _deadline_ticks(deadline_cron: str, time_zone: str) -> dg.TimeWindowPartitionsDefinition:
    """The deadline cron's ticks as time windows, the cron read in `time_zone`: the window holding a moment starts
    at the latest tick."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=deadline_cron, start=dt.datetime(2000, 1, 1), fmt=_TICK_FORMAT, timezone=time_zone
    )


def due_partition(
    deadline_cron: str, now: dt.datetime, time_zone: str = "UTC"
) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """The partition due at `now`, the deadline it was due by (the latest tick of `deadline_cron`, read in the
    account's `time_zone`), and the next."""
    ticks = _deadline_ticks(deadline_cron, time_zone)
    window = ticks.time_window_for_partition_key(ticks.get_partition_key_for_timestamp(now.timestamp()))
    # The tick falls on the account's day D+1 (its clock): D is the last day that had ended by then.
    return window.start.date() - dt.timedelta(days=1), window.start, window.end


def judge_freshness(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    first_day: dt.date,
    deadline_cron: str,
    now: dt.datetime,
    time_zone: str = "UTC",
) -> dg.AssetCheckResult:
    """The freshness verdict of one daily table at `now`, the deadline read in the account's `time_zone` (see the
    module's docstring)."""
    now = account_now(time_zone, now)
    due, deadline, next_deadline = due_partition(deadline_cron, now, time_zone)
    metadata = {
        "due_partition": dg.MetadataValue.text(due.isoformat()),
        "deadline": dg.MetadataValue.timestamp(deadline),
        FRESH_UNTIL: dg.MetadataValue.timestamp(next_deadline),
    }

    def verdict(passed: bool, description: str) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=FRESHNESS_CHECK,
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=description,
            metadata=metadata,
        )

    if due < first_day:
        first_due = (
            f"{first_day} is due by the first deadline after {first_day + dt.timedelta(days=1)} 00:00 {time_zone}"
        )
        return verdict(True, f"No partition is due yet: the first, {first_due}.")
    latest = instance.get_latest_materialization_event(asset_key)
    if latest is None:
        return verdict(
            True,
            f"Not materialized yet, so not late: partition {due} would be due, and freshness is judged from the first "
            "materialization on (the daily schedule's first run makes it; a failed run is alerted on its own).",
        )
    last_day = max(due, now.date())
    fresh_enough = [(due + dt.timedelta(days=n)).isoformat() for n in range((last_day - due).days + 1)]
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=fresh_enough), limit=1
    ).records
    if records:
        metadata["latest_partition"] = dg.MetadataValue.text(str(records[0].partition_key))
        return verdict(True, f"Fresh: partition {records[0].partition_key} is materialized ({due} or newer was due).")
    latest_partition = latest.dagster_event.partition if latest.dagster_event else None
    return verdict(
        False,
        f"Overdue: partition {due} (or a newer one) was due by {deadline:%Y-%m-%d %H:%M} {time_zone}; the latest "
        f"materialization is of {latest_partition}.",
    )


def not_judged_in_a_backfill(
    asset_key: dg.AssetKey, last_partition: dt.date, due: dt.date, now: dt.datetime
) -> dg.AssetCheckResult:
    """The verdict of a run of past partitions: not a judgement. It is fresh only until `now`, so the freshness
    sensor judges the table on its next tick (a check that never completes would stop the sensor from judging it)."""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=FRESHNESS_CHECK,
        passed=True,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"Not judged in a run of past partitions (through {last_partition}; {due} is due): the freshness "
        "sensor judges the table on its next tick.",
        metadata={
            "due_partition": dg.MetadataValue.text(due.isoformat()),
            FRESH_UNTIL: dg.MetadataValue.timestamp(now),
        },
    )


def last_partition_of(run: dg.DagsterRun) -> dt.date | None:
    """The last day a run materializes (its partition, or the end of its range), or None for a run of no partition
    (the freshness sensor's)."""
    last = run.tags.get("dagster/partition") or run.tags.get(ASSET_PARTITION_RANGE_END_TAG)
    return dt.date.fromisoformat(last) if last else None


def daily_freshness_checks(
    name: str, assets: Sequence[dg.AssetsDefinition], deadline_cron: str, time_zone: str = "UTC"
) -> dg.AssetChecksDefinition:
    """One `freshness_check` per table of `assets` (daily partitioned), judged against `deadline_cron` read in the
    account's `time_zone` (`BIDS_TIME_ZONE`)."""
    first_day_of = {
        key: dt.date.fromisoformat(asset.partitions_def.get_first_partition_key())
        for asset in assets
        for key in asset.keys
    }
    specs = [
        dg.AssetCheckSpec(
            FRESHNESS_CHECK,
            asset=key,
            description=f"Yesterday's partition, or a newer one, is materialized by the deadline `{deadline_cron}` "
            f"(cron, {time_zone}). Nothing is due before the first partition or the first materialization.",
        )
        for key in first_day_of
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=name)
    def freshness(context: dg.AssetCheckExecutionContext):
        now = account_now(time_zone)
        due, _, _ = due_partition(deadline_cron, now, time_zone)
        last_partition = last_partition_of(context.run)
        if last_partition is not None and last_partition < due:
            for check_key in context.selected_asset_check_keys:
                yield not_judged_in_a_backfill(check_key.asset_key, last_partition, due, now)
            return
        for check_key in context.selected_asset_check_keys:
            key = check_key.asset_key
            yield judge_freshness(context.instance, key, first_day_of[key], deadline_cron, now, time_zone)

    return freshness
