"""BIDS_TIME_ZONE: the account's day is the partition's day. A deployment in New York, built as the code location
builds it, and judged through Dagster's own API: its partitions, its schedule's hour and ticks, its deadlines."""

import datetime as dt

import dagster as dg
import pytest

from assets.retraining import CHAMPION, ChampionBehindData
from daily_bids.settings import Settings
from support.deployment import build_definitions

NEW_YORK = "America/New_York"


@pytest.fixture(scope="module")
def new_york(tmp_path_factory) -> dg.Definitions:
    folder = tmp_path_factory.mktemp("new_york")
    settings = Settings.from_environment(
        {"BIDS_WAREHOUSE": str(folder / "warehouse"), "BIDS_FIRST_DAY": "2026-01-01", "BIDS_TIME_ZONE": NEW_YORK}
    )
    return build_definitions(settings)


def test_every_partition_of_the_graph_is_a_day_of_the_accounts_time_zone(new_york):
    graph = new_york.resolve_asset_graph()
    partitions = {
        *(graph.get(key).partitions_def for key in graph.get_all_asset_keys()),
        *(graph.get_check_spec(key).partitions_def for key in graph.asset_check_keys),
        new_york.resolve_job_def("daily_bid_job").partitions_def,
    } - {None}
    assert {p.timezone for p in partitions} == {NEW_YORK}
    daily = new_york.resolve_job_def("daily_bid_job").partitions_def
    # 03:00 UTC on 03-02 is still 22:00 on 03-01 in New York: the last day that has ended there is 02-28.
    with dg.partition_loading_context(effective_dt=dt.datetime(2026, 3, 2, 3, tzinfo=dt.UTC)):
        assert daily.get_last_partition_key() == "2026-02-28"
    with dg.partition_loading_context(effective_dt=dt.datetime(2026, 3, 2, 5, 1, tzinfo=dt.UTC)):  # 00:01 there
        assert daily.get_last_partition_key() == "2026-03-01"
    window = daily.time_window_for_partition_key("2026-03-01")
    assert (window.start.isoformat(), window.end.isoformat()) == (
        "2026-03-01T00:00:00-05:00",
        "2026-03-02T00:00:00-05:00",
    )


def test_the_schedule_runs_at_0530_in_the_accounts_time_zone_for_its_yesterday(new_york):
    schedule = new_york.resolve_schedule_def("daily_bid_job_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 5 * * *", NEW_YORK)
    # 05:30 in New York on 03-02 (10:30 UTC), and on 03-09, the first morning of daylight saving time (09:30 UTC).
    for tick_time, partition in (
        (dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC), "2026-03-01"),
        (dt.datetime(2026, 3, 9, 9, 30, tzinfo=dt.UTC), "2026-03-08"),
    ):
        with dg.instance_for_test() as instance:
            tick = schedule.evaluate_tick(dg.build_schedule_context(instance, scheduled_execution_time=tick_time))
        assert [request.partition_key for request in tick.run_requests] == [partition]


def test_the_deadlines_and_the_retraining_days_are_the_accounts(new_york):
    graph = new_york.resolve_asset_graph()
    freshness = [graph.get_check_spec(key) for key in graph.asset_check_keys if key.name == "freshness_check"]
    assert freshness and all("(cron, America/New_York)" in spec.description for spec in freshness)
    condition = graph.get(CHAMPION).automation_condition

    def behind_data(node):
        if isinstance(node, ChampionBehindData):
            yield node
        for child in node.children:
            yield from behind_data(child)

    assert [node.time_zone for node in behind_data(condition)] == [NEW_YORK]
