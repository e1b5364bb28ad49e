"""When the models retrain: one automation condition, shared by every model asset so that they retrain together.

In plain words, the models are retrained when
- the champion is outside its freshness window: Dagster's freshness policy failed (wall clock), or the data it was
  trained through is more than `BIDS_MODEL_MAX_AGE_DAYS` days behind the latest report day (data time, so a backfill
  of old days or a simulated calendar is judged by the days the data covers);
- or the decline check on `model_monitoring` failed after the champion was trained;
- or the code version of a model or of the features changed since the models were last trained;
- or there is no champion yet;
and in every case only when the latest partitions of the reports and features they train on exist and passed their
blocking checks, no model or input is being written right now, and no retraining was requested yet today (a failed
retraining is tried again the next day, not on every tick). Days (the latest report day, today) are the account's, in
`BIDS_TIME_ZONE`.

After retraining, the champion gate decides what serves, as always.
"""

import datetime as dt
import hashlib
from pathlib import Path
from types import ModuleType

import dagster as dg

from daily_bids.settings import account_time, account_yesterday
from daily_bids.storage import tables

CHAMPION = dg.AssetKey(tables.CHAMPION)
MODEL_KEYS = [dg.AssetKey(name) for name in (tables.CLUSTERS, tables.XGBOOST_MODEL, tables.DEEP_MODEL, tables.CHAMPION)]
FEATURES = dg.AssetKey(tables.FEATURES)
DECLINE_CHECK = dg.AssetCheckKey(dg.AssetKey(tables.MONITORING), "model_decline")
# Materialization metadata of every model: the last report day whose outcomes the training window (holdout
# included) covered.
DATA_THROUGH = "data_through"
# The label of the condition's "why" part, under which the evaluation view (and `retraining_reasons`) shows what held.
DUE = "retraining due"


def _latest_champion(context: dg.AutomationContext):
    """The champion's latest materialization event (its metadata says what data it was judged on), or None."""
    return context.asset_graph_view.instance.get_latest_materialization_event(CHAMPION)


def _all_or_nothing(context: dg.AutomationContext, true: bool) -> dg.AutomationResult:
    return dg.AutomationResult(
        context=context, true_subset=context.candidate_subset if true else context.get_empty_subset()
    )


class ChampionBehindData(dg.AutomationCondition):
    """True when the champion's training data ends more than `max_age_days` before the latest report day (the
    account's yesterday at the evaluation, in `time_zone`), or when there is no champion yet."""

    def __init__(self, max_age_days: int, time_zone: str = "UTC"):
        self.max_age_days = max_age_days
        self.time_zone = time_zone

    @property
    def name(self) -> str:
        return f"champion trained on data more than {self.max_age_days} days old, or none"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        event = _latest_champion(context)
        if event is None:
            return _all_or_nothing(context, True)
        through = event.asset_materialization.metadata.get(DATA_THROUGH)
        if through is None:  # a champion stored before this metadata existed: judged by the freshness policy alone
            return _all_or_nothing(context, False)
        latest_report_day = account_yesterday(self.time_zone, context.evaluation_time)
        age = (latest_report_day - dt.date.fromisoformat(through.value)).days
        return _all_or_nothing(context, age > self.max_age_days)


class ChampionDeclined(dg.AutomationCondition):
    """True when the latest evaluation of the decline check failed, and came after the champion was trained."""

    @property
    def name(self) -> str:
        return "decline check failed since the champion was trained"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        instance = context.asset_graph_view.instance
        record = instance.get_latest_asset_check_evaluation_record(DECLINE_CHECK)
        champion = _latest_champion(context)
        # A run that stopped before the check (a failed step upstream) leaves it planned, with no verdict yet.
        evaluation = record.evaluation if record is not None else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation) or champion is None:
            return _all_or_nothing(context, False)
        return _all_or_nothing(context, not evaluation.passed and record.event.timestamp > champion.timestamp)


def retraining_condition(max_age_days: int, time_zone: str = "UTC") -> dg.AutomationCondition:
    """The automation condition of every model asset (see the module docstring), for a freshness window of
    `max_age_days` (`BIDS_MODEL_MAX_AGE_DAYS`), its days those of the account's `time_zone` (`BIDS_TIME_ZONE`)."""
    code_changed = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.code_version_changed())
    for key in MODEL_KEYS:
        code_changed = code_changed | dg.AutomationCondition.asset_matches(
            key, dg.AutomationCondition.code_version_changed()
        )
    due = (
        dg.AutomationCondition.asset_matches(CHAMPION, dg.AutomationCondition.freshness_failed()).with_label(
            "champion's freshness policy failed"
        )
        | ChampionBehindData(max_age_days, time_zone)
        | ChampionDeclined()
        | code_changed.since_last_handled().with_label("code version of a model or of the features changed")
    )
    requested_today = dg.AutomationCondition.newly_requested().since(
        dg.AutomationCondition.cron_tick_passed("0 0 * * *", time_zone)
    )
    return (
        due.with_label(DUE)
        & ~dg.AutomationCondition.any_deps_missing()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~requested_today.with_label("retraining already requested today")
    ).with_label("retrain the models")


def source_version(*modules: ModuleType) -> str:
    """A code version for a model asset: a hash of the source of the modules that train it. Editing them marks the
    model stale in the UI and asks the automation to retrain."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def model_freshness_policy(max_age_days: int) -> dg.FreshnessPolicy:
    """A model not retrained within `max_age_days` days (`BIDS_MODEL_MAX_AGE_DAYS`) shows as stale (failed
    freshness) in the UI."""
    max_age = dt.timedelta(days=max_age_days)
    warn = max_age - dt.timedelta(days=1)
    return dg.FreshnessPolicy.time_window(fail_window=max_age, warn_window=warn if warn > dt.timedelta(0) else None)


def retraining_reasons(
    defs: dg.Definitions, instance: dg.DagsterInstance, day: dt.date, time_zone: str = "UTC"
) -> list[str]:
    """Why the retraining condition asks for retraining on the morning after report day `day` (06:00 in the
    account's `time_zone`), as the sensor would see it then; empty when it does not. `make run` asks this before it
    trains."""
    morning = account_time(time_zone, day + dt.timedelta(days=1), dt.time(6))
    evaluation = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=morning, asset_selection=dg.AssetSelection.assets(*MODEL_KEYS)
    )
    return reasons_held(evaluation) if evaluation.total_requested else []


def reasons_held(evaluation) -> list[str]:
    """The reasons that held in an evaluation: the true conditions directly under the `retraining due` node."""
    reasons = set()
    for result in evaluation.results:
        due = _node_labelled(result, DUE)
        reasons |= {
            node.condition.get_label() or node.condition.name
            for node in (due.child_results if due is not None else [])
            if not node.true_subset.is_empty
        }
    return sorted(reasons)


def _node_labelled(result, label: str):
    if result.condition.get_label() == label:
        return result
    return next((found for child in result.child_results if (found := _node_labelled(child, label)) is not None), None)
