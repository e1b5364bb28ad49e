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

from daily_bids.features.keyword_features import LOOKBACK_DAYS

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
    """The days a training reads, for outcomes through `train_through`: every model asset, the gate, the refit and
    the CLI plan them here.

    Feature days, oldest first: [training days ... [validation days]] [holdout days]. The candidates fit on the
    training days, early-stop on the validation days (their last ones), and the gate judges them on the holdout.
    The refit of the winner (`serving()`) has no holdout: its training days reach `train_through`."""

    train_through: dt.date  # the last report day whose outcomes count (the holdout's last outcome day)
    training_days: int  # feature days the candidates train on, validation days included
    validation_days: int = 7  # the last training days, kept for early stopping (and the blend's weights)
    holdout_days: int = HOLDOUT_DAYS

    @property
    def candidate_through(self) -> dt.date:
        """The last outcome day the candidates train on: the holdout starts the day after."""
        return self.train_through - dt.timedelta(days=self.holdout_days)

    @property
    def training_feature_days(self) -> list[dt.date]:
        return [self.candidate_through - dt.timedelta(days=n) for n in range(self.training_days, 0, -1)]

    @property
    def validation_feature_days(self) -> list[dt.date]:
        return self.training_feature_days[-self.validation_days :]

    @property
    def holdout_feature_days(self) -> list[dt.date]:
        return [self.candidate_through + dt.timedelta(days=n) for n in range(self.holdout_days)]

    def serving(self) -> TrainingWindow:
        """The same length of training, moved on past the holdout: what the gate's winner is refit on."""
        return TrainingWindow(self.train_through, self.training_days, self.validation_days, holdout_days=0)

    def span(self) -> str:
        days = self.training_feature_days
        return f"{days[0]}...{days[-1]}"

    def describe(self) -> str:
        text = f"training on the features of {self.span()} ({self.training_days} days"
        if not self.holdout_days:
            return text + f", outcomes through {self.train_through}; no holdout)"
        holdout = self.holdout_feature_days
        return text + f"), holdout {holdout[0]}...{holdout[-1]} (outcomes through {self.train_through})"


def plan_training_window(
    history_start: dt.date,
    train_through: dt.date,
    wanted_training_days: int = DEFAULT_TRAINING_DAYS,
    wanted_validation_days: int = 7,
) -> TrainingWindow:
    """The window for outcomes through `train_through` when features exist from `history_start` on: as many
    training days as wanted, or as there are, and fewer validation days on a short window. Raises
    `InsufficientHistoryError` below the minimum."""
    available = (train_through - history_start).days - HOLDOUT_DAYS
    if available < MIN_TRAINING_DAYS:
        raise InsufficientHistoryError(insufficient_history_message(history_start, train_through))
    training_days = min(wanted_training_days, available)
    validation_days = max(1, min(wanted_validation_days, int(training_days * MAX_VALIDATION_SHARE)))
    return TrainingWindow(train_through, training_days, validation_days)


def insufficient_history_message(history_start: dt.date, last_day: dt.date) -> str:
    have = max(0, (last_day - history_start).days + 1)
    return (
        f"{have} day(s) of reports ({history_start}...{last_day}); a first model needs at least "
        f"{minimum_history_days()} ({MIN_TRAINING_DAYS} to train on, {HOLDOUT_DAYS} to judge it on, and the "
        f"report after them): add {minimum_history_days() - have} earlier day(s) of reports"
    )


@dataclass(frozen=True)
class HistoryPlan:
    """The report and feature days a first run (or any run) needs for a window through `last_day`."""

    report_days: list[dt.date]
    feature_days: list[dt.date]
    window: TrainingWindow


def plan_history(
    source_start: dt.date, last_day: dt.date, wanted_training_days: int = DEFAULT_TRAINING_DAYS
) -> HistoryPlan:
    """The days to materialize before training through `last_day`, when the source has reports from
    `source_start` on: features for the whole window (and the day itself), reports for their lookback."""
    if (last_day - source_start).days - HOLDOUT_DAYS < MIN_TRAINING_DAYS:
        raise InsufficientHistoryError(insufficient_history_message(source_start, last_day))
    feature_start = max(source_start, last_day - dt.timedelta(days=HOLDOUT_DAYS + wanted_training_days))
    window = plan_training_window(feature_start, last_day, wanted_training_days)
    report_start = max(source_start, feature_start - dt.timedelta(days=LOOKBACK_DAYS - 1))
    return HistoryPlan(days_between(report_start, last_day), days_between(feature_start, last_day), window)
