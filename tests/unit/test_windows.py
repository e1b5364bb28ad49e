"""How much history each step reads: the one plan the models, the gate and `run` share."""

import datetime as dt

import pytest

from daily_bids.features.windows import (
    HOLDOUT_DAYS,
    MIN_TRAINING_DAYS,
    InsufficientHistoryError,
    minimum_history_days,
    plan_history,
    plan_training_window,
)

DAY = dt.date(2025, 6, 30)


def test_a_long_history_gets_the_default_window():
    plan = plan_history(dt.date(2025, 1, 1), DAY)
    window = plan.window
    assert window.training_days == 56 and window.train_through == DAY
    assert window.training_feature_days[-1] == DAY - dt.timedelta(days=HOLDOUT_DAYS + 1)
    assert window.holdout_feature_days == [DAY - dt.timedelta(days=n) for n in range(7, 0, -1)]
    assert len(plan.feature_days) == 64 and plan.feature_days[-1] == DAY  # the window, and the day bid from
    assert len(plan.report_days) == 91 and plan.report_days[0] == plan.feature_days[0] - dt.timedelta(days=27)
    assert window.validation_days == 7 and window.validation_feature_days == window.training_feature_days[-7:]


@pytest.mark.parametrize("days", [minimum_history_days(), 30, 45])
def test_a_young_account_trains_on_the_days_it_has(days):
    start = DAY - dt.timedelta(days=days - 1)
    plan = plan_history(start, DAY)
    assert plan.report_days[0] == plan.feature_days[0] == start
    window = plan.window
    assert window.training_days == days - 1 - HOLDOUT_DAYS >= MIN_TRAINING_DAYS
    assert window.training_feature_days[0] == start  # no feature day before the first report
    assert set(window.training_feature_days).isdisjoint(window.holdout_feature_days)
    assert 1 <= window.validation_days <= window.training_days // 3


def test_below_the_minimum_the_error_says_what_there_is_and_what_is_needed():
    start = DAY - dt.timedelta(days=minimum_history_days() - 2)
    with pytest.raises(InsufficientHistoryError) as raised:
        plan_history(start, DAY)
    message = str(raised.value)
    assert message.startswith(f"{minimum_history_days() - 1} day(s) of reports ({start}...{DAY})")
    assert message.endswith("add 1 earlier day(s) of reports")
    with pytest.raises(InsufficientHistoryError):
        plan_training_window(start, DAY)
