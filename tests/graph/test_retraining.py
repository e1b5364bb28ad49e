"""The models' retraining condition, evaluated on a toy graph with the same asset keys as the platform's: each branch
of the condition directly, without training anything (the fortnight test runs the real models)."""

import datetime as dt

import dagster as dg
import pytest

from assets.model_lab import tuning_condition
from assets.retraining import retraining_condition
from daily_bids.settings import Settings

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2025-01-01")
LATEST = dg.LastPartitionMapping()
CHECK_PASSES = {"value": True}


@dg.asset(name="keyword_features", partitions_def=PARTITIONS)
def features():
    return dg.MaterializeResult()


@dg.asset_check(asset=features, blocking=True, partitions_def=PARTITIONS)
def features_contract():
    return dg.AssetCheckResult(passed=CHECK_PASSES["value"])


def _graph(code_version: str = "1") -> list:
    def model(name: str, upstream: list[str]):
        @dg.asset(
            name=name,
            code_version=code_version,
            automation_condition=retraining_condition(Settings.defaults().model_max_age_days),
            deps=[dg.AssetDep(features, partition_mapping=LATEST), *upstream],
        )
        def _model(context: dg.AssetExecutionContext):
            return dg.MaterializeResult(
                metadata={
                    "data_through": context.instance.get_latest_materialization_event(
                        features.key
                    ).dagster_event.partition
                }
            )

        return _model

    return [
        model("keyword_clusters", []),
        model("xgboost_model", ["keyword_clusters"]),
        model("deep_model", ["keyword_clusters"]),
        model("champion_model", ["xgboost_model", "deep_model"]),
    ]


class Calendar:
    def __init__(self):
        self.instance = dg.DagsterInstance.ephemeral()
        self.models = _graph()
        self.cursor = None

    def report(self, day: dt.date, passes: bool = True):
        CHECK_PASSES["value"] = passes
        dg.materialize(
            [features, features_contract], instance=self.instance, partition_key=day.isoformat(), raise_on_error=False
        )

    def requested(self, morning: dt.date, hour: int = 6) -> set[str]:
        defs = dg.Definitions(assets=[features, *self.models], asset_checks=[features_contract])
        result = dg.evaluate_automation_conditions(
            defs=defs,
            instance=self.instance,
            cursor=self.cursor,
            evaluation_time=dt.datetime.combine(morning, dt.time(hour), tzinfo=dt.UTC),
            asset_selection=dg.AssetSelection.assets(*self.models),
        )
        self.cursor = result.cursor
        return {r.key.to_user_string() for r in result.results if not r.true_subset.is_empty}

    def train(self):
        dg.materialize(self.models, instance=self.instance, selection=self.models)


ALL_MODELS = {"keyword_clusters", "xgboost_model", "deep_model", "champion_model"}


@pytest.fixture
def calendar():
    calendar = Calendar()
    for n in range(10):
        calendar.report(dt.date(2025, 1, 1) + dt.timedelta(days=n))
    return calendar


def test_without_a_champion_all_models_train_together_once_a_day(calendar):
    assert calendar.requested(dt.date(2025, 1, 11)) == ALL_MODELS
    assert calendar.requested(dt.date(2025, 1, 11), hour=9) == set()  # not again the same day


def test_a_fresh_champion_is_left_alone_until_its_data_is_more_than_7_days_old(calendar):
    calendar.train()  # trained through 2025-01-10
    calendar.requested(dt.date(2025, 1, 11))
    for n in range(10, 18):  # reports of 01-11...01-18 arrive
        calendar.report(dt.date(2025, 1, 1) + dt.timedelta(days=n))
        morning = dt.date(2025, 1, 2) + dt.timedelta(days=n)
        expected = ALL_MODELS if morning == dt.date(2025, 1, 19) else set()  # 01-18 is 8 days after 01-10
        assert calendar.requested(morning) == expected, morning


def test_a_failing_blocking_check_on_the_latest_features_holds_retraining_back(calendar):
    calendar.report(dt.date(2025, 1, 10), passes=False)
    assert calendar.requested(dt.date(2025, 1, 11)) == set()
    calendar.report(dt.date(2025, 1, 10), passes=True)
    assert calendar.requested(dt.date(2025, 1, 11), hour=7) == ALL_MODELS


def test_a_missing_latest_partition_holds_retraining_back(calendar):
    assert calendar.requested(dt.date(2025, 1, 13)) == set()  # the report of 01-12 has not arrived


def test_a_changed_model_code_version_retrains_the_models(calendar):
    calendar.train()
    assert calendar.requested(dt.date(2025, 1, 11)) == set()
    calendar.models = _graph(code_version="2")
    assert calendar.requested(dt.date(2025, 1, 11), hour=7) == ALL_MODELS


@dg.asset(name="model_monitoring", partitions_def=PARTITIONS)
def monitoring():
    raise RuntimeError("a step upstream of the decline check failed")


@dg.asset_check(asset=monitoring, name="model_decline", partitions_def=PARTITIONS)
def model_decline():
    return dg.AssetCheckResult(passed=False)


def test_a_decline_check_that_a_failed_run_left_planned_is_no_verdict(calendar):
    calendar.train()
    dg.materialize(
        [monitoring, model_decline], instance=calendar.instance, partition_key="2025-01-10", raise_on_error=False
    )
    record = calendar.instance.get_latest_asset_check_evaluation_record(model_decline.check_key)
    assert record is not None and not isinstance(record.evaluation, dg.AssetCheckEvaluation)  # planned only
    assert calendar.requested(dt.date(2025, 1, 11)) == set()  # and no crash: the champion is fresh


@dg.asset(name="model_monitoring", partitions_def=PARTITIONS)
def monitoring_that_ran():
    return dg.MaterializeResult()


@dg.asset_check(asset=monitoring_that_ran, name="model_decline", partitions_def=PARTITIONS)
def declined():
    return dg.AssetCheckResult(passed=False)


@dg.asset(
    name="model_tuning", automation_condition=tuning_condition(), deps=[dg.AssetDep(features, partition_mapping=LATEST)]
)
def tuning_study():
    return dg.MaterializeResult()


def test_tuning_runs_after_a_decline_with_the_retraining_and_not_otherwise(calendar):
    calendar.train()
    calendar.models = [*calendar.models, tuning_study]
    assert calendar.requested(dt.date(2025, 1, 11)) == set()  # a fresh champion and no decline: no study
    dg.materialize(
        [monitoring_that_ran, declined], instance=calendar.instance, partition_key="2025-01-10", raise_on_error=False
    )
    assert calendar.requested(dt.date(2025, 1, 11), hour=7) == {*ALL_MODELS, "model_tuning"}
    assert calendar.requested(dt.date(2025, 1, 11), hour=8) == set()  # once a day
