"""Hyperparameter tuning of the candidate models: an Optuna study per kind, validated in time order.

A study sees only the candidates' training frame (never the gate's holdout). Each trial trains the kind on that
frame with the base parameters updated by the trial's suggestions; the model's own early stopping holds out the
last `validation_days` of the frame, and the trial's objective is the clicks mean Poisson deviance on those days
(`validation_metrics["clicks_poisson_deviance"]`, which both kinds record). The untuned base parameters are the
first trial, so a study never returns parameters that validate worse than the defaults.

`SEARCH_SPACES` is the one statement of what is tuned and over which range. The best parameters are stored in the
warehouse (`store_best`) and merged under the run config of the next training (`stored_best`, `apply_tuned`): a
field the run config sets explicitly wins over the tuned value, the tuned value over the default.

Optuna is imported inside the functions that use it: Definitions must load fast.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from daily_bids.models import deep_model as deep_model_module
from daily_bids.models import xgboost_model as model_module
from daily_bids.models.clustering import KeywordClusters
from daily_bids.models.deep_model import DeepParameters
from daily_bids.models.xgboost_model import TrainingParameters

OBJECTIVE = "clicks_poisson_deviance"  # a validation metric both kinds record; lower is better
TUNING_FOLDER = "model_tuning"  # in the warehouse, beside the asset's name: one JSON TuningResult per kind


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False

    def suggest(self, trial, name: str, base):
        # Widened to hold the base value: trial 0 (the base parameters) is then a point of the space.
        return trial.suggest_int(name, min(self.low, base), max(self.high, base), log=self.log)

    def contains(self, value) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False

    def suggest(self, trial, name: str, base):
        return trial.suggest_float(name, min(self.low, base), max(self.high, base), log=self.log)

    def contains(self, value) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    options: tuple

    def suggest(self, trial, name: str, base):
        # Optuna's choices must be plain scalars: each option is offered as its JSON text (a list of widths too).
        labels = [json.dumps(option) for option in self.options]
        if json.dumps(base) not in labels:
            labels.append(json.dumps(base))
        return json.loads(trial.suggest_categorical(name, labels))

    def label(self, value) -> str:
        return json.dumps(value)

    def contains(self, value) -> bool:
        return value in self.options


SearchSpace = Mapping[str, IntRange | FloatRange | Choice]

# What is tuned for each kind, and over which range. Every name is a field of the kind's parameters class.
# Upper bounds of boosting rounds and epochs are not tuned: early stopping on the validation days picks them.
SEARCH_SPACES: dict[str, SearchSpace] = {
    "xgboost": {
        "max_depth": IntRange(3, 10),
        "learning_rate": FloatRange(0.01, 0.3, log=True),
    },
    "deep": {
        "learning_rate": FloatRange(3e-4, 1e-2, log=True),
        "hidden_units": Choice(([64, 32], [128, 64], [32])),
        "batch_size": Choice((1024, 2048, 4096)),
        "keyword_buckets": Choice((5_000, 20_000, 50_000)),
    },
}
PARAMETER_CLASSES: dict[str, type[BaseModel]] = {"xgboost": TrainingParameters, "deep": DeepParameters}


class TuningBudget(BaseModel):
    """How much a study may try: at most `trials` trials, and none starts after `timeout_seconds`."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    trials: int = Field(20, ge=1, description="Trials per kind, at most (the first is the untuned parameters).")
    timeout_seconds: float = Field(600.0, gt=0, description="No trial starts after this many seconds.")
    seed: int = Field(0, description="Seed of the sampler: the same data and seed try the same parameters.")


@dataclass
class TuningResult:
    kind: str
    best_parameters: dict[str, Any]  # only the tuned names
    best_value: float  # validation clicks deviance of the best trial
    baseline_value: float  # that of trial 0: the untuned base parameters
    trials: pd.DataFrame  # number, value, seconds, one column per tuned parameter

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "best_parameters": self.best_parameters,
                "best_value": self.best_value,
                "baseline_value": self.baseline_value,
                "trial_columns": list(self.trials.columns),
                "trials": self.trials.to_dict(orient="records"),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> TuningResult:
        data = json.loads(text)
        trials = pd.DataFrame.from_records(data["trials"], columns=data["trial_columns"])
        return cls(
            kind=data["kind"],
            best_parameters=data["best_parameters"],
            best_value=float(data["best_value"]),
            baseline_value=float(data["baseline_value"]),
            trials=trials,
        )


def kind_of(name: str) -> str:
    """The kind ("xgboost", "deep") a kind or parameters-class name designates."""
    if name in PARAMETER_CLASSES:
        return name
    for kind, parameters_class in PARAMETER_CLASSES.items():
        if name == parameters_class.__name__:
            return kind
    raise ValueError(
        f"unknown model kind {name!r}: the tuned kinds are {list(PARAMETER_CLASSES)} "
        f"(parameters {[c.__name__ for c in PARAMETER_CLASSES.values()]})"
    )


def tune(
    kind: str,
    frame: pd.DataFrame,
    trained_through: dt.date,
    base_parameters: BaseModel | Mapping | None,
    budget: TuningBudget,
    clusters: KeywordClusters | None = None,
    on_trial: Callable[[int, dict, float, float], None] | None = None,
    log=print,
) -> TuningResult:
    """An Optuna study of `kind` over `budget`, on `frame` (the candidates' training frame, from
    `model.training_frame`): each trial trains on it, early-stopped on its last `base_parameters.validation_days`
    days, and scores the clicks Poisson deviance there. Trial 0 is `base_parameters` untuned.

    `on_trial(number, params, value, seconds)` is called after every trial, with its tuned parameters. A trial
    started before the timeout runs to its end; trial 0 runs whatever the timeout."""
    if kind not in SEARCH_SPACES:
        raise ValueError(f"unknown model kind {kind!r}: the tuned kinds are {list(SEARCH_SPACES)}")
    if kind == "deep" and clusters is None:
        raise ValueError("tuning the deep model needs the keyword clusters (its cluster embedding): pass clusters")
    import optuna

    parameters_class, space = PARAMETER_CLASSES[kind], SEARCH_SPACES[kind]
    if base_parameters is None:
        base_parameters = parameters_class()
    elif not isinstance(base_parameters, parameters_class):
        base_parameters = parameters_class(**dict(base_parameters))
    base = base_parameters.model_dump()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=budget.seed))
    study.enqueue_trial(
        {
            name: dimension.label(base[name]) if isinstance(dimension, Choice) else base[name]
            for name, dimension in space.items()
        }
    )
    rows: list[dict] = []

    def objective(trial) -> float:
        params = {name: dimension.suggest(trial, name, base[name]) for name, dimension in space.items()}
        parameters = parameters_class(**{**base, **params})

        def trial_log(message: str) -> None:
            log(f"{kind} trial {trial.number}: {message}")

        started = time.perf_counter()
        if kind == "xgboost":
            model = model_module.train(frame, trained_through, parameters, log=trial_log)
        else:
            model = deep_model_module.train_deep(frame, clusters, trained_through, parameters, log=trial_log)
        seconds = time.perf_counter() - started
        value = float(model.validation_metrics.get(OBJECTIVE, math.nan))
        rows.append({"number": trial.number, "value": value, "seconds": seconds, **params})
        if on_trial is not None:
            on_trial(trial.number, dict(params), value, seconds)
        return value  # a NaN fails the trial: the study goes on without it

    log(f"tuning {kind}: at most {budget.trials} trials or {budget.timeout_seconds:g} s, seed {budget.seed}")
    started = time.perf_counter()
    study.optimize(objective, n_trials=1)  # the baseline runs whatever the timeout: a study always has it
    remaining = budget.timeout_seconds - (time.perf_counter() - started)
    if budget.trials > 1 and remaining > 0:
        study.optimize(objective, n_trials=budget.trials - 1, timeout=remaining)
    finite = [row for row in rows if math.isfinite(row["value"])]
    if not finite:
        raise ValueError(f"tuning {kind}: no trial gave a finite validation {OBJECTIVE}")
    best = min(finite, key=lambda row: row["value"])  # the first of equal values: trial 0 on a tie
    result = TuningResult(
        kind=kind,
        best_parameters={name: best[name] for name in space},
        best_value=best["value"],
        baseline_value=rows[0]["value"],
        trials=pd.DataFrame(rows, columns=["number", "value", "seconds", *space]),
    )
    log(
        f"tuned {kind}: best trial {best['number']} of {len(rows)}, validation deviance "
        f"{result.best_value:.4f} (untuned {result.baseline_value:.4f}), {result.best_parameters}"
    )
    return result


def apply_tuned(
    parameters_class: type[BaseModel],
    config_values: Mapping[str, Any],
    explicitly_set: set[str],
    tuned: Mapping[str, Any],
) -> dict:
    """`config_values` with the tuned values merged in: a field set explicitly in the run config (`explicitly_set`)
    keeps its value, a tuned value replaces a default. Tuned names that are no fields of `parameters_class` (a
    tuning stored before a field was renamed) are ignored."""
    merged = dict(config_values)
    for name, value in tuned.items():
        if name in parameters_class.model_fields and name not in explicitly_set:
            merged[name] = value
    return merged


def tuning_path(kind: str) -> str:
    return f"{TUNING_FOLDER}/{kind_of(kind)}.json"


def store_best(store, result: TuningResult) -> str:
    """Write `result` to the warehouse (anything with `write_bytes`), where the next training of its kind reads
    the best parameters. Returns the path written."""
    return store.write_bytes(tuning_path(result.kind), result.to_json().encode())


def stored_result(store, kind: str) -> TuningResult | None:
    """The latest stored study of `kind` (a kind or its parameters-class name), or None."""
    path = tuning_path(kind)
    return TuningResult.from_json(store.read_bytes(path).decode()) if store.exists(path) else None


def stored_best(store, kind: str) -> dict[str, Any]:
    """The best parameters of the latest stored study of `kind` (a kind or its parameters-class name) that are
    still tuned names; empty when no study is stored."""
    result = stored_result(store, kind)
    if result is None:
        return {}
    space = SEARCH_SPACES[kind_of(kind)]
    return {name: value for name, value in result.best_parameters.items() if name in space}
