"""The model lab: hyperparameter tuning of the candidates, and a user's own Keras model as a challenger.

- `model_tuning` runs an Optuna study per candidate kind on the candidates' own training window (time-based
  validation on its last days, never the gate's holdout), one nested MLflow run per trial. The best parameters are
  stored in the warehouse and the next `xgboost_model` / `deep_model` training uses them, unless its run config sets
  them. It runs on demand (`python -m daily_bids models tune`, or materialize it in the UI), and by itself when the
  decline check fails: the retraining after a decline then has tuned parameters the time after.
- `user_keras_model` registers a .keras file as a challenger (`python -m daily_bids models register-keras PATH`):
  the gate judges it beside the candidates on the same holdout.
"""

import datetime as dt

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.models import (
    TRAINING_DEPS,
    DeepModelConfig,
    XGBoostModelConfig,
    clusters_from,
    features_with_outcomes,
    training_window,
)
from assets.retraining import ChampionDeclined, source_version
from daily_bids.models import tuning
from daily_bids.models.deep_model import DeepKeywordModel
from daily_bids.models.user_keras_model import load_user_keras
from daily_bids.models.xgboost_model import KeywordModel
from daily_bids.storage import tables
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource

# Each tuned kind's asset config: its window and defaults (its parameters class is tuning.PARAMETER_CLASSES[kind]).
ASSET_CONFIGS = {KeywordModel.kind: XGBoostModelConfig, DeepKeywordModel.kind: DeepModelConfig}


class TuningConfig(dg.Config):
    kinds: list[str] = Field(
        list(tuning.SEARCH_SPACES), description=f"Candidate kinds to tune, of {list(tuning.SEARCH_SPACES)}."
    )
    trials: int = Field(
        tuning.TuningBudget.model_fields["trials"].default, ge=1, description="Trials per kind, at most."
    )
    timeout_seconds: float = Field(
        tuning.TuningBudget.model_fields["timeout_seconds"].default,
        gt=0,
        description="Time budget per kind: no trial starts after it.",
    )
    seed: int = Field(0, description="Seed of the sampler: the same data and seed try the same parameters.")
    train_through: str = Field(
        "",
        description="Last report day whose outcomes count (YYYY-MM-DD); the study uses "
        "the candidates' window before its holdout. Empty: the latest day.",
    )


def tuning_condition() -> dg.AutomationCondition:
    """Tune when the decline check failed since the champion was trained, once a day at most."""
    requested_today = dg.AutomationCondition.newly_requested().since(
        dg.AutomationCondition.cron_tick_passed("0 0 * * *", "UTC")
    )
    return (
        ChampionDeclined()
        & ~dg.AutomationCondition.in_progress()
        & ~requested_today.with_label("tuning already requested today")
    ).with_label("tune after a decline")


@dg.asset(
    group_name="models",
    kinds={"optuna", "mlflow"},
    deps=TRAINING_DEPS,
    automation_condition=tuning_condition(),
    code_version=source_version(tuning),
)
def model_tuning(
    context: dg.AssetExecutionContext,
    config: TuningConfig,
    keyword_clusters: pd.DataFrame,
    warehouse: WarehouseResource,
    tracker: ExperimentTracker,
) -> dg.MaterializeResult:
    """An Optuna study per candidate kind over a bounded budget (trials and time), validated on the last days of the
    candidates' training window. The best parameters feed the next candidate training."""
    store = warehouse.warehouse()
    unknown = sorted(set(config.kinds) - set(tuning.SEARCH_SPACES))
    if unknown:
        raise ValueError(f"model_tuning: unknown kinds {unknown}; the tuned kinds are {list(tuning.SEARCH_SPACES)}")
    budget = tuning.TuningBudget(trials=config.trials, timeout_seconds=config.timeout_seconds, seed=config.seed)
    metadata = {}
    for kind in config.kinds:
        config_class, parameters_class = ASSET_CONFIGS[kind], tuning.PARAMETER_CLASSES[kind]
        window_config = config_class(train_through=config.train_through)
        window = training_window(window_config, store)
        base = parameters_class(
            **{
                **{k: v for k, v in window_config.model_dump().items() if k in parameters_class.model_fields},
                "training_days": window.training_days,
                "validation_days": window.validation_days,
            }
        )
        context.log.info(
            f"tuning {kind}: {budget.trials} trials or {budget.timeout_seconds:.0f} s, {window.describe()}"
        )
        trials: list[dict] = []

        def on_trial(number, params, value, seconds, kind=kind, trials=trials):
            trials.append({"number": number, "params": params, "value": value, "seconds": seconds})
            context.log.info(f"{kind} trial {number}: validation deviance {value:.4f} in {seconds:.1f} s, {params}")

        history = features_with_outcomes(store, window.training_feature_days)
        result = tuning.tune(
            kind,
            history,
            window.candidate_through,
            base,
            budget,
            clusters=clusters_from(keyword_clusters) if kind == "deep" else None,
            on_trial=on_trial,
            log=context.log.info,
        )
        tuning.store_best(store, result)
        run_id = tracker.log_tuning(kind, trials, result.best_parameters, window.span())
        metadata |= {
            f"{kind}_best_parameters": dg.MetadataValue.json(result.best_parameters),
            f"{kind}_best_validation_deviance": result.best_value,
            f"{kind}_default_validation_deviance": result.baseline_value,
            f"{kind}_trials": dg.MetadataValue.md(result.trials.round(4).to_markdown(index=False)),
            f"{kind}_mlflow_run_id": run_id,
        }
    return dg.MaterializeResult(metadata={"tuned_window": window.span(), **metadata})


class UserKerasConfig(dg.Config):
    path: str = Field(description="The .keras file to register (a model trained on the platform's feature columns).")
    trained_through: str = Field(
        description="The last outcome day it trained on (YYYY-MM-DD): the gate holds out "
        "only later days, and refuses a holdout the model has seen."
    )


@dg.asset(name=tables.USER_CHALLENGER, group_name="models", kinds={"keras"}, io_manager_key="model_io_manager")
def user_keras_model(
    context: dg.AssetExecutionContext, config: UserKerasConfig, warehouse: WarehouseResource, tracker: ExperimentTracker
) -> dg.Output:
    """A user's Keras model, validated against the feature columns and run on the latest day's features, then
    tracked in MLflow. The champion gate judges it as a challenger on its next run."""
    store = warehouse.warehouse()
    days = store.list_partitions(tables.FEATURES)
    sample = store.read_partitions(tables.FEATURES, days[-1:]) if days else None
    model = load_user_keras(config.path, dt.date.fromisoformat(config.trained_through), sample)
    run_id = tracker.log_training(
        model, model.kind, {"source": config.path, "outputs": ",".join(model.outputs)}, f"...{model.trained_through}"
    )
    return dg.Output(
        model,
        metadata={
            "model_version": model.version,
            "source": config.path,
            "outputs": ", ".join(model.outputs),
            "trained_through": model.trained_through.isoformat(),
            "mlflow_run_id": run_id,
            "validated_on": f"{len(sample):,} feature rows of {days[-1]}" if days else "no features yet: contract only",
        },
    )
