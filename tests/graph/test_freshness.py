"""Freshness of the daily tables (`assets.freshness`), judged on a real Dagster instance's materializations."""

import datetime as dt

import dagster as dg
import pytest

from assets.freshness import FRESH_UNTIL, FRESHNESS_CHECK, daily_freshness_checks, due_partition, judge_freshness

BIDS = dg.AssetKey("published_bids")
FIRST_DAY = dt.date(2026, 9, 6)
DEADLINE = "0 7 * * *"
# The first morning: `make run` at 06:10 UTC published the bids of 12-05; the latest deadline (12-05 07:00) asks
# for 12-04.
MORNING = dt.datetime(2026, 12, 6, 6, 10, tzinfo=dt.UTC)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _materialized(instance, *days: str) -> None:
    for day in days:
        instance.report_runless_asset_event(dg.AssetMaterialization(BIDS, partition=day))


def test_a_newer_partition_than_the_one_due_is_fresh(instance):
    _materialized(instance, "2026-12-05")
    verdict = judge_freshness(instance, BIDS, FIRST_DAY, DEADLINE, MORNING)
    assert verdict.passed, verdict.description
    assert verdict.metadata["due_partition"].value == "2026-12-04"
    assert verdict.metadata["latest_partition"].value == "2026-12-05"
    # The sensor evaluates it again after the next deadline, 12-06 07:00.
    assert verdict.metadata[FRESH_UNTIL].value == dt.datetime(2026, 12, 6, 7, tzinfo=dt.UTC).timestamp()


def test_after_the_deadline_the_day_due_moves_on_and_an_old_backfill_does_not_make_it_fresh(instance):
    _materialized(instance, "2026-12-05")
    a_day_later = MORNING + dt.timedelta(days=1, hours=1)  # 12-07 07:10: 12-06 is due
    _materialized(instance, "2026-10-01")  # the latest materialization, of an old day
    verdict = judge_freshness(instance, BIDS, FIRST_DAY, DEADLINE, a_day_later)
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.WARN
    assert verdict.description == (
        "Overdue: partition 2026-12-06 (or a newer one) was due by 2026-12-07 07:00 UTC; the latest materialization is "
        "of 2026-10-01."
    )
    _materialized(instance, "2026-12-06")
    assert judge_freshness(instance, BIDS, FIRST_DAY, DEADLINE, a_day_later).passed


def test_nothing_is_due_before_the_first_partition_or_the_first_materialization(instance):
    never = judge_freshness(instance, BIDS, FIRST_DAY, DEADLINE, MORNING)
    assert never.passed and never.description.startswith("Not materialized yet, so not late: partition 2026-12-04")
    _materialized(instance, "2026-12-05")
    too_early = judge_freshness(instance, BIDS, dt.date(2026, 12, 5), DEADLINE, MORNING)
    assert too_early.passed and too_early.description.startswith("No partition is due yet: the first, 2026-12-05")


def test_the_checks_run_in_a_dagster_run_one_per_table(instance):
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat()), name=BIDS.path[-1])
    def published_bids():
        return None

    check = daily_freshness_checks("bids_freshness", [published_bids], DEADLINE)
    assert [key.name for key in check.check_keys] == [FRESHNESS_CHECK]
    result = dg.materialize(
        [published_bids, check],
        instance=instance,
        partition_key=(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat(),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.description.startswith("Fresh: partition ")


def test_a_backfill_of_past_days_judges_nothing(instance):
    """A history backfill runs the checks of its assets: launched after the deadline and before the day's run, it
    would report tables overdue that are being set up. It leaves them to the freshness sensor."""

    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat()), name=BIDS.path[-1])
    def published_bids():
        return None

    check = daily_freshness_checks("bids_freshness", [published_bids], DEADLINE)
    long_ago = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=10)
    result = dg.materialize([published_bids, check], instance=instance, partition_key=long_ago.isoformat())
    (not_judged,) = result.get_asset_check_evaluations()
    assert not_judged.passed and not_judged.description.startswith("Not judged in a run of past partitions")
    # Fresh only until now: the sensor's next tick judges it.
    assert not_judged.metadata[FRESH_UNTIL].value <= dt.datetime.now(dt.UTC).timestamp()
    # The sensor's own run (no partition) judges it, and finds it overdue.
    (evaluation,) = dg.materialize(
        [published_bids, check], instance=instance, selection=dg.AssetSelection.checks(check)
    ).get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.description.startswith("Overdue")


def test_the_deadline_is_read_in_the_accounts_time_zone(instance):
    """BIDS_TIME_ZONE=America/New_York: 11:30 UTC on 12-06 is 06:30 there, before that morning's 07:00 deadline, so
    the day due is still 12-04 (in UTC, 07:00 has passed and 12-05 is due)."""
    moment = dt.datetime(2026, 12, 6, 11, 30, tzinfo=dt.UTC)
    due, deadline, next_deadline = due_partition(DEADLINE, moment, "America/New_York")
    assert due == dt.date(2026, 12, 4)
    assert deadline.isoformat() == "2026-12-05T07:00:00-05:00"
    assert next_deadline.isoformat() == "2026-12-06T07:00:00-05:00"
    assert due_partition(DEADLINE, moment)[0] == dt.date(2026, 12, 5)  # UTC, the default
    # Near midnight: 03:00 UTC on 12-07 is 22:00 on 12-06 in New York; its 07:00 of 12-06 has passed, so 12-05 is due.
    assert due_partition(DEADLINE, dt.datetime(2026, 12, 7, 3, tzinfo=dt.UTC), "America/New_York")[0] == dt.date(
        2026, 12, 5
    )
    _materialized(instance, "2026-12-04")
    late = judge_freshness(instance, BIDS, FIRST_DAY, DEADLINE, moment + dt.timedelta(hours=1), "America/New_York")
    assert late.description == (
        "Overdue: partition 2026-12-05 (or a newer one) was due by 2026-12-06 07:00 America/New_York; the latest "
        "materialization is of 2026-12-04."
    )
    assert judge_freshness(instance, BIDS, FIRST_DAY, DEADLINE, moment, "America/New_York").passed
