"""How many days of history each step reads, sized to the history an account has.

Partition D's features describe each keyword as of the end of day D, and a model learns from them the report of
D+1. For a training that uses outcomes through report day T:
- the holdout is the last `HOLDOUT_DAYS` feature days, T-7 ... T-1 (outcomes T-6 ... T): no candidate sees them;
- the candidates train on up to `training_days` feature days before it, ending at T-8 (outcomes through T-7), and
  early-stop on the last of those;
- each feature day reads up to `LOOKBACK_DAYS` report days back; days before the account's first report count as
  no activity.

A young account has fewer days than the defaults want (56 + 7 feature days, and 28 report days before them). The
window then shrinks to the history there is, down to `MIN_TRAINING_DAYS` of training: below
`minimum_history_days()` report days, there is too little to judge a model on, and `InsufficientHistoryError` says
how many days there are and how many are needed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from daily_bids.features import LOOKBACK_DAYS

HOLDOUT_DAYS = 7
DEFAULT_TRAINING_DAYS = 56
MIN_TRAINING_DAYS = 14
# Early stopping keeps at least a third of a short window for fitting: validation days are at most a third of it.
MAX_VALIDATION_SHARE = 1 / 3


class InsufficientHistoryError(ValueError):
    """Too few report days to train and judge a model; the message says how many there are and what is needed."""


def minimum_history_days() -> int:
    """Report days needed before a first model: the training and holdout feature days, and the last outcome day."""
    return MIN_TRAINING_DAYS + HOLDOUT_DAYS + 1


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from `start` to `end`, both included."""
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


@dataclass(frozen=True)
class TrainingWindow:
    train_through: dt.date  # the last report day whose outcomes count (the holdout's last outcome day)
    training_days: int  # feature days the candidates train on, validation days included

    @property
    def candidate_through(self) -> dt.date:
        """The last outcome day the candidates train on: the holdout starts the day after."""
        return self.train_through - dt.timedelta(days=HOLDOUT_DAYS)

    @property
    def training_feature_days(self) -> list[dt.date]:
        return [self.candidate_through - dt.timedelta(days=n) for n in range(self.training_days, 0, -1)]

    @property
    def holdout_feature_days(self) -> list[dt.date]:
        return [self.candidate_through + dt.timedelta(days=n) for n in range(HOLDOUT_DAYS)]

    def validation_days(self, wanted: int) -> int:
        """The early-stopping days of a model asking for `wanted`: fewer on a short window."""
        return max(1, min(wanted, int(self.training_days * MAX_VALIDATION_SHARE)))

    def describe(self) -> str:
        training, holdout = self.training_feature_days, self.holdout_feature_days
        return (f"training on the features of {training[0]}...{training[-1]} ({self.training_days} days), holdout "
                f"{holdout[0]}...{holdout[-1]} (outcomes through {self.train_through})")


def plan_training_window(history_start: dt.date, train_through: dt.date,
                         wanted_training_days: int = DEFAULT_TRAINING_DAYS) -> TrainingWindow:
    """The window for outcomes through `train_through` when features exist from `history_start` on: as many
    training days as wanted, or as there are. Raises `InsufficientHistoryError` below the minimum."""
    available = (train_through - history_start).days - HOLDOUT_DAYS
    if available < MIN_TRAINING_DAYS:
        raise InsufficientHistoryError(insufficient_history_message(history_start, train_through))
    return TrainingWindow(train_through, min(wanted_training_days, available))


def insufficient_history_message(history_start: dt.date, last_day: dt.date) -> str:
    have = max(0, (last_day - history_start).days + 1)
    return (f"{have} day(s) of reports ({history_start}...{last_day}); a first model needs at least "
            f"{minimum_history_days()} ({MIN_TRAINING_DAYS} to train on, {HOLDOUT_DAYS} to judge it on, and the "
            f"report after them): add {minimum_history_days() - have} earlier day(s) of reports")


@dataclass(frozen=True)
class HistoryPlan:
    """The report and feature days a first run (or any run) needs for a window through `last_day`."""

    report_days: list[dt.date]
    feature_days: list[dt.date]
    window: TrainingWindow


def plan_history(source_start: dt.date, last_day: dt.date,
                 wanted_training_days: int = DEFAULT_TRAINING_DAYS) -> HistoryPlan:
    """The days to materialize before training through `last_day`, when the source has reports from
    `source_start` on: features for the whole window (and the day itself), reports for their lookback."""
    if (last_day - source_start).days - HOLDOUT_DAYS < MIN_TRAINING_DAYS:
        raise InsufficientHistoryError(insufficient_history_message(source_start, last_day))
    feature_start = max(source_start, last_day - dt.timedelta(days=HOLDOUT_DAYS + wanted_training_days))
    window = plan_training_window(feature_start, last_day, wanted_training_days)
    report_start = max(source_start, feature_start - dt.timedelta(days=LOOKBACK_DAYS - 1))
    return HistoryPlan(days_between(report_start, last_day), days_between(feature_start, last_day), window)
