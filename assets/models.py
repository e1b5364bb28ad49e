"""Keyword clusters, the two candidate models, and the champion gate that picks the one serving predictions.

Both candidates train on the same window, which ends `HOLDOUT_DAYS` before `train_through`; those last days are the
holdout on which the gate compares them, the serving champion and the naive floors. No candidate sees them. The
window is sized to the features there are (see `daily_bids.windows`), so a young account trains on what it has.
"""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from assets.features import keyword_features
from assets.metadata import readable
from assets.reports import VALIDATED_REPORT
from assets.retraining import DATA_THROUGH, model_freshness_policy, retraining_condition, source_version
from daily_bids import clustering, deep_model as deep_model_module, evaluation, model as model_module, preprocessing
from daily_bids.charts import png_markdown
from daily_bids.clustering import KeywordClusters, behaviour_profiles, fit_clusters, profile_plot_png
from daily_bids.deep_model import DeepParameters, train_deep
from daily_bids.features import feature_set_version
from daily_bids.model import KeywordModel, TrainingParameters, train, training_frame
from daily_bids.naive_model import NaiveModel, floor_name, naive_floors
from daily_bids.warehouse import Warehouse, chart_path
from daily_bids.windows import HOLDOUT_DAYS, MIN_TRAINING_DAYS, TrainingWindow, plan_training_window
from resources.io_managers import load_current_model
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource

FEATURES_TABLE, REPORTS_TABLE = keyword_features.key.path[-1], VALIDATED_REPORT.path[-1]
# Read as rolling windows that end at the latest day, not loaded whole; the automation looks at the latest partitions
# (present, blocking checks passed) before it retrains.
TRAINING_DEPS = [dg.AssetDep(key, partition_mapping=dg.LastPartitionMapping())
                 for key in (keyword_features.key, VALIDATED_REPORT)]
# Every model asset retrains under the same condition and carries the same freshness policy (see assets.retraining).
MODEL_POLICIES = dict(group_name="models", automation_condition=retraining_condition(),
                      freshness_policy=model_freshness_policy())


class WindowConfig(dg.Config):
    train_through: str = Field("", description="Last report day whose outcomes count (YYYY-MM-DD); the last "
                                                 f"{HOLDOUT_DAYS} of them are the holdout. Empty: the latest day.")


def _train_through(config: WindowConfig, store: Warehouse) -> dt.date:
    if config.train_through:
        return dt.date.fromisoformat(config.train_through)
    available = store.list_partitions(FEATURES_TABLE)
    if not available:
        raise ValueError(f"{FEATURES_TABLE} has no partitions yet: materialize the reports and features first")
    return available[-1]


def _frame(store: Warehouse, feature_days: list[dt.date]) -> pd.DataFrame:
    """Features of `feature_days` with next-day outcomes."""
    features = store.read_partitions(FEATURES_TABLE, feature_days)
    outcomes = store.read_partitions(REPORTS_TABLE, [d + dt.timedelta(days=1) for d in feature_days])
    return training_frame(features, outcomes)


def _training_window(config, store: Warehouse, wanted_training_days: int) -> TrainingWindow:
    """The window through the configured (or latest) day, sized to the features in the warehouse."""
    through = _train_through(config, store)  # says plainly when there are no features yet
    return plan_training_window(store.list_partitions(FEATURES_TABLE)[0], through, wanted_training_days)


class ClusterConfig(WindowConfig):
    k: int = Field(0, ge=0, description="Number of clusters; 0 chooses it by silhouette (3 to 8).")
    profile_days: int = Field(56, ge=7, description="Days of reports the behaviour profiles summarize.")


@dg.asset(kinds={"scikitlearn", "parquet"}, deps=TRAINING_DEPS, code_version=source_version(clustering),
          **MODEL_POLICIES)
def keyword_clusters(context: dg.AssetExecutionContext, config: ClusterConfig,
                     warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """Keyword segments from behaviour profiles (scaled volume, CTR, conversion rate, weekly shape), by k-means."""
    store = warehouse.warehouse()
    through = _train_through(config, store) - dt.timedelta(days=HOLDOUT_DAYS)
    window = [through - dt.timedelta(days=n) for n in range(config.profile_days - 1, -1, -1)]
    days = [d for d in window if store.partition_exists(REPORTS_TABLE, d)]  # a young deployment has fewer days
    if len(days) < 7:
        raise ValueError(f"keyword clusters need at least 7 report days in {window[0]}...{window[-1]}, "
                         f"found {len(days)}: materialize the report history first")
    clusters = fit_clusters(behaviour_profiles(store.read_partitions(REPORTS_TABLE, days)), k=config.k or None)
    context.log.info(f"{clusters.k} clusters; silhouette by k: {clusters.silhouette_by_k}")
    png = profile_plot_png(clusters)
    store.write_bytes(chart_path("keyword_clusters", "profiles.png"), png)
    sizes = clusters.assignments["cluster"].value_counts().sort_index()
    return dg.Output(clusters.assignments, metadata={
        "k": clusters.k,
        "silhouette_by_k": dg.MetadataValue.json({str(k): v for k, v in clusters.silhouette_by_k.items()}),
        "profile_window": f"{days[0]}...{days[-1]}",
        "cluster_sizes": dg.MetadataValue.json({str(c): int(n) for c, n in sizes.items()}),
        "profiles": dg.MetadataValue.md(clusters.centers.round(4).to_markdown()),
        "profile_plot": dg.MetadataValue.md(png_markdown(png, "cluster profiles")),
        "profile_plot_png": dg.MetadataValue.path(store.display_uri(chart_path("keyword_clusters", "profiles.png"))),
        DATA_THROUGH: _train_through(config, store).isoformat(),
    })


def _clusters_from(assignments: pd.DataFrame) -> KeywordClusters:
    return KeywordClusters(assignments, pd.DataFrame(), int(assignments["cluster"].max()) + 1, {})


TRAINING_DAYS_DESCRIPTION = (f"Days of features (with next-day targets) to train on, at most: a young account "
                             f"trains on the days it has, down to {MIN_TRAINING_DAYS}.")


class XGBoostModelConfig(WindowConfig, TrainingParameters):
    training_days: int = Field(TrainingParameters.model_fields["training_days"].default, ge=MIN_TRAINING_DAYS,
                               description=TRAINING_DAYS_DESCRIPTION)


@dg.asset(kinds={"xgboost"}, io_manager_key="model_io_manager", deps=TRAINING_DEPS,
          code_version=source_version(model_module, preprocessing), **MODEL_POLICIES)
def xgboost_model(context: dg.AssetExecutionContext, config: XGBoostModelConfig, warehouse: WarehouseResource,
                  tracker: ExperimentTracker) -> dg.Output[KeywordModel]:
    """Candidate: gradient-boosted Poisson models of next-day clicks and conversions and a Tweedie model of
    conversion value, early-stopped on the last days of its window."""
    store = warehouse.warehouse()
    window = _training_window(config, store, config.training_days)
    context.log.info(window.describe())
    parameters = TrainingParameters(**{**_fields(config, TrainingParameters), "training_days": window.training_days,
                                       "validation_days": window.validation_days(config.validation_days)})
    model = train(_frame(store, window.training_feature_days), window.candidate_through, parameters,
                  log=context.log.info)
    # The fitted scaling, also as an artifact of its own (the bundle carries the same one for scoring).
    store.write_bytes(f"preprocessing/{model.scaler.version}.json", model.scaler.to_json().encode())
    run_id = tracker.log_training(model, "xgboost", parameters.model_dump(), _span(window))
    return dg.Output(model, metadata=_model_metadata(model, store, window, run_id))


def _fields(config: dg.Config, parameters: type) -> dict:
    """The part of an asset's config that is `parameters` (a model's own pydantic class)."""
    return {k: v for k, v in config.model_dump().items() if k in parameters.model_fields}


def _span(window: TrainingWindow) -> str:
    days = window.training_feature_days
    return f"{days[0]}...{days[-1]}"


class DeepModelConfig(WindowConfig, DeepParameters):
    training_days: int = Field(TrainingParameters.model_fields["training_days"].default, ge=MIN_TRAINING_DAYS,
                               description=TRAINING_DAYS_DESCRIPTION)


@dg.asset(kinds={"tensorflow", "keras"}, io_manager_key="model_io_manager", deps=TRAINING_DEPS,
          code_version=source_version(deep_model_module, preprocessing), **MODEL_POLICIES)
def deep_model(context: dg.AssetExecutionContext, config: DeepModelConfig, keyword_clusters: pd.DataFrame,
               warehouse: WarehouseResource, tracker: ExperimentTracker):
    """Candidate: a wide & deep Keras network (embeddings of keyword, ad group, match type, cluster and day of week
    beside the scaled features) with Poisson heads for clicks and conversions."""
    store = warehouse.warehouse()
    window = _training_window(config, store, config.training_days)
    context.log.info(window.describe())
    parameters = DeepParameters(**{**_fields(config, DeepParameters),
                                   "validation_days": window.validation_days(config.validation_days)})
    model = train_deep(_frame(store, window.training_feature_days), _clusters_from(keyword_clusters),
                       window.candidate_through, parameters, log=context.log.info)
    store.write_bytes(f"preprocessing/{model.scaler.version}.json", model.scaler.to_json().encode())
    run_id = tracker.log_training(model, "deep", {**parameters.model_dump(), "training_days": window.training_days},
                                  _span(window))
    return dg.Output(model, metadata=_model_metadata(model, store, window, run_id))


def _model_metadata(model, store: Warehouse, window: TrainingWindow, run_id: str) -> dict:
    return {
        # The training window ends before the holdout; the data behind the decision reaches its end.
        DATA_THROUGH: window.train_through.isoformat(),
        "model_version": model.version,
        "trained_through": model.trained_through.isoformat(),
        "training_window": _span(window),
        "training_days": window.training_days,
        "scaler": dg.MetadataValue.path(store.display_uri(f"preprocessing/{model.scaler.version}.json")),
        "feature_set_version": feature_set_version(),
        "mlflow_run_id": run_id,
        **readable({f"validation_{name}": value for name, value in model.validation_metrics.items()}),
    }


class GateConfig(dg.Config, evaluation.GatePolicy):
    pass


@dg.asset(kinds={"python"}, io_manager_key="model_io_manager", deps=TRAINING_DEPS,
          code_version=source_version(evaluation), **MODEL_POLICIES)
def champion_model(context: dg.AssetExecutionContext, config: GateConfig, xgboost_model, deep_model,
                   keyword_clusters: pd.DataFrame, warehouse: WarehouseResource, tracker: ExperimentTracker):
    """The model that serves predictions. A candidate replaces the current champion only if, on a holdout no
    candidate trained on, it beats the champion and the naive floor by the configured margin and is not worse on
    calibration or on any cluster beyond tolerance. When no learned candidate passes, the better naive floor serves
    if it passes against the champion, or if there is none yet. Otherwise the champion keeps serving."""
    store = warehouse.warehouse()
    if xgboost_model.trained_through != deep_model.trained_through:
        raise ValueError(f"candidates trained through different days ({xgboost_model.trained_through} and "
                         f"{deep_model.trained_through}): materialize them together")
    # The holdout follows the candidates' window; how long their training was does not matter here.
    window = TrainingWindow(xgboost_model.trained_through + dt.timedelta(days=HOLDOUT_DAYS), training_days=0)
    holdout_days = window.holdout_feature_days
    holdout = _frame(store, holdout_days)
    clusters = _clusters_from(keyword_clusters).cluster_of(holdout["keyword_id"])
    floors = naive_floors(window.candidate_through)
    models = {"xgboost": xgboost_model, "deep": deep_model, **floors}
    incumbent_model = load_current_model(store, context.assets_def.key.path[-1])
    incumbent = None
    if isinstance(incumbent_model, NaiveModel):  # a floor predicts the same whenever it was judged: today's stands in
        incumbent = floor_name(incumbent_model.window_days)
    elif incumbent_model is not None and incumbent_model.version not in {m.version for m in models.values()}:
        incumbent = f"champion ({incumbent_model.version})"
        models[incumbent] = incumbent_model
    elif incumbent_model is not None:
        incumbent = next(name for name, m in models.items() if m.version == incumbent_model.version)
    predictions = {name: model.predict(holdout) for name, model in models.items()}
    metrics = pd.concat([evaluation.evaluate(name, p, holdout, clusters) for name, p in predictions.items()])
    decision = evaluation.decide(metrics, ["xgboost", "deep"], incumbent, config)
    chosen = models[decision.champion]
    context.log.info("; ".join(decision.reasons))
    if isinstance(chosen, NaiveModel):  # the candidates were tracked when they trained; a floor is, once it serves
        tracker.log_training(chosen, "naive", {"window_days": chosen.window_days}, f"{holdout_days[0]}...{holdout_days[-1]}")
    alias_version = tracker.set_champion(chosen.version)
    png = evaluation.real_vs_predicted_png(holdout, {n: p["expected_clicks"].to_numpy() for n, p in predictions.items()},
                                           clusters)
    store.write_bytes("champion_model/holdout.png", png)
    overall = metrics[(metrics["slice"] == "all")].round(4)
    return dg.Output(chosen, metadata={
        "champion": decision.champion,
        "model_version": chosen.version,
        # Said plainly, since a floor serving means the learned models are not good enough yet.
        "serving": (f"the naive floor {decision.champion}: no learned model beats it yet"
                    if isinstance(chosen, NaiveModel) else f"the learned model {decision.champion}"),
        DATA_THROUGH: window.train_through.isoformat(),
        # What the decline check compares the live deviance with.
        "champion_holdout_clicks_poisson_deviance": float(
            overall[(overall["model"] == decision.champion) & (overall["target"] == "clicks")]["poisson_deviance"].iloc[0]),
        "replaced_champion": decision.replaced,
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
        "holdout": f"{holdout_days[0]}...{holdout_days[-1]} (outcomes through {window.train_through})",
        "metrics": dg.MetadataValue.md(overall.to_markdown(index=False)),
        "metrics_by_cluster": dg.MetadataValue.md(metrics[metrics["slice"] != "all"].round(4).to_markdown(index=False)),
        "real_vs_predicted": dg.MetadataValue.md(png_markdown(png, "real vs predicted")),
        "mlflow_champion_version": alias_version,
        **{f"{row.model}_{row.target}_poisson_deviance": float(row.poisson_deviance)
           for row in overall.itertuples() if np.isfinite(row.poisson_deviance)},
    })
