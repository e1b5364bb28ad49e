"""Two weeks that run themselves: the daily schedule and the models' automation condition, evaluated day by day on a
simulated calendar as Dagster's daemon would, over a small simulated account.

The calendar: history through 2025-02-10 and a first champion trained on it; then each simulated morning the
schedule's run for yesterday's partition executes, and the retraining condition is evaluated. The champion goes stale
after 7 days of data; a blocking check failing on the latest features holds the retraining back until the day is
repaired; a demand shock in the simulator makes the champion decline, which retrains it again.
"""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from assets import ALL_ASSETS, ALL_CHECKS, DAILY_ASSETS, FRESHNESS_CHECKS, HISTORY_ASSETS, JOBS, MODEL_ASSETS, SCHEDULES
import assets.features
from assets.checks import features_contract
from assets.features import keyword_features
from resources import build_resources

from conftest import materialize_range

honest_roll = assets.features.roll

HISTORY_START, HISTORY_END = dt.date(2025, 1, 1), dt.date(2025, 2, 10)
FIRST_DAY, LAST_DAY = dt.date(2025, 2, 11), dt.date(2025, 2, 24)
SHOCK_DAY = dt.date(2025, 2, 21)  # demand triples: the champion's predictions fall far short
TAMPERED_DAY = dt.date(2025, 2, 18)  # its features fail their blocking check the morning the champion goes stale
# Small windows so that each retraining takes seconds; the daemon would use the assets' default config.
TRAINING = {"ops": {
    "keyword_clusters": {"config": {"profile_days": 21}},
    "xgboost_model": {"config": {"training_days": 21, "validation_days": 4, "n_estimators": 150}},
    "deep_model": {"config": {"training_days": 21, "validation_days": 4, "epochs": 8}},
}}


def _morning(day: dt.date, hour: int = 5, minute: int = 30) -> dt.datetime:
    """The morning after report day `day`, in UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hour, minute), tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory):
    root = tmp_path_factory.mktemp("fortnight") / "warehouse"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BIDS_WAREHOUSE", str(root))
        env.setenv("BIDS_SIM_KEYWORDS", "300")
        env.setenv("BIDS_SIM_SEED", "5")
        resources = build_resources()
    resources["ad_platform"] = resources["ad_platform"].model_copy(
        update={"demand_shocks": {SHOCK_DAY.isoformat(): 3.0}})
    instance = dg.DagsterInstance.ephemeral()
    defs = dg.Definitions(assets=ALL_ASSETS, asset_checks=[*ALL_CHECKS, *FRESHNESS_CHECKS], jobs=JOBS,
                          schedules=SCHEDULES, resources=resources)
    schedule = defs.resolve_schedule_def("daily_bid_job_schedule")
    models = dg.AssetSelection.assets(*MODEL_ASSETS)

    def train() -> dg.ExecuteInProcessResult:
        return dg.materialize([*MODEL_ASSETS, *DAILY_ASSETS], selection=MODEL_ASSETS, resources=resources,
                              instance=instance, run_config=TRAINING)

    assert materialize_range([*ALL_ASSETS, *ALL_CHECKS], HISTORY_START, HISTORY_END, resources, instance=instance,
                             selection=HISTORY_ASSETS).success
    assert train().success
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=models,
                                               evaluation_time=_morning(HISTORY_END, 6)).cursor
    log = {"daily": {}, "retrained": {}, "held_back": []}
    day = FIRST_DAY
    while day <= LAST_DAY:
        # 05:30: the schedule asks for yesterday's partition, and the daily chain runs.
        tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance,
                                                                scheduled_execution_time=_morning(day)))
        (request,) = tick.run_requests
        log["daily"][day] = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=DAILY_ASSETS, resources=resources,
                                           instance=instance, partition_key=request.partition_key)
        if day == TAMPERED_DAY:
            # A bad write of the latest features (a duplicated row) fails their blocking check.
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(assets.features, "roll", _roll_with_a_duplicate_row)
                bad = dg.materialize([keyword_features, features_contract], resources=resources, instance=instance,
                                     partition_key=day.isoformat(), raise_on_error=False)
            assert not bad.success and not bad.get_asset_check_evaluations()[0].passed
            evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=models,
                                                           evaluation_time=_morning(day, 6), cursor=cursor)
            cursor = evaluation.cursor
            if not evaluation.total_requested:
                log["held_back"].append(day)
            # The operator re-materializes the day; its check passes again.
            assert dg.materialize([keyword_features, features_contract], resources=resources, instance=instance,
                                  partition_key=day.isoformat()).success
        # 06:30: the automation condition sensor's tick.
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=models,
                                                       evaluation_time=_morning(day, 6, 30), cursor=cursor)
        cursor = evaluation.cursor
        if evaluation.total_requested:
            requested = {key for result in evaluation.results if not result.true_subset.is_empty
                         for key in [result.key]}
            assert requested == {m.key for m in MODEL_ASSETS}, "the models retrain together"
            log["retrained"][day + dt.timedelta(days=1)] = (_reasons(evaluation), train())
        day += dt.timedelta(days=1)
    return {"log": log, "store": resources["warehouse"].warehouse(), "instance": instance}


def _roll_with_a_duplicate_row(*args, **kwargs):
    for day, features, state in honest_roll(*args, **kwargs):
        yield day, pd.concat([features, features.head(1)], ignore_index=True), state


def _reasons(evaluation) -> set[str]:
    """The true conditions under `retraining due`, from any model's evaluation."""
    from daily_bids.cli import _true_labels

    return {label for result in evaluation.results for label in _true_labels(result)}


def test_bids_are_published_every_day(fortnight):
    days = [FIRST_DAY + dt.timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]
    assert all(run.success for run in fortnight["log"]["daily"].values())
    assert fortnight["store"].list_partitions("published_bids")[-len(days):] == days
    for day in days:
        ledger = fortnight["store"].read_partitions("published_bids", [day])
        assert len(ledger) == len(fortnight["store"].read_partitions("keyword_bids", [day])) > 0


def test_models_retrain_when_stale_and_after_a_decline_and_at_no_other_time(fortnight):
    retrained = fortnight["log"]["retrained"]
    mornings = sorted(retrained)
    # Stale: the first champion's data ends 2025-02-10; on the morning of 02-19 it is 8 days behind the 02-18 report.
    # Declined: the shock of 02-21 shows in the monitoring of 02-21 and 02-22 (the new champion's second and third
    # monitored days), and the decline check fails on 02-22.
    assert mornings == [dt.date(2025, 2, 19), dt.date(2025, 2, 23)], {m: r[0] for m, r in retrained.items()}
    stale_reasons, stale_run = retrained[dt.date(2025, 2, 19)]
    assert any("more than 7 days old" in reason for reason in stale_reasons)
    decline_reasons, decline_run = retrained[dt.date(2025, 2, 23)]
    assert any("decline check failed" in reason for reason in decline_reasons)
    assert stale_run.success and decline_run.success
    for run, through in ((stale_run, "2025-02-18"), (decline_run, "2025-02-22")):
        champion = run.asset_materializations_for_node("champion_model")[0].metadata
        assert champion["data_through"].value == through


def test_no_retraining_while_an_upstream_blocking_check_fails(fortnight):
    assert fortnight["log"]["held_back"] == [TAMPERED_DAY]


def test_monitoring_has_rows_for_every_day_with_actuals_and_sees_the_decline(fortnight):
    store = fortnight["store"]
    days = [FIRST_DAY + dt.timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]
    monitored = store.read_partitions("model_monitoring", days)
    overall = monitored[monitored["slice"] == "all"].set_index("date")
    assert sorted(overall.index.date) == days  # predictions exist for every day since the first champion
    before = overall.loc[pd.Timestamp(SHOCK_DAY - dt.timedelta(days=1)), "clicks_calibration"]
    after = overall.loc[pd.Timestamp(SHOCK_DAY), "clicks_calibration"]
    assert after < 0.6 < before  # demand tripled: predicted clicks fall far short of the actual ones
    decline = [e for run in fortnight["log"]["daily"].values() for e in run.get_asset_check_evaluations()
               if e.check_name == "model_decline"]
    assert [e.passed for e in decline].count(False) >= 1
