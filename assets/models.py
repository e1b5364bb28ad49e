"""Keyword clusters, the two candidate models, and the champion gate that picks the one serving predictions.

Both candidates train on the same window, which ends `HOLDOUT_DAYS` before `train_through`; those last days are the
holdout on which the gate compares them, the serving champion and the naive floors. No candidate sees them. The
window is sized to the features there are (see `daily_bids.features.windows`), so a young account trains on what it has.
"""

import datetime as dt
import json
import time

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from assets.features import keyword_features
from assets.metadata import readable
from assets.partitions import DEFAULT_SETTINGS
from assets.reports import VALIDATED_REPORT
from assets.retraining import DATA_THROUGH, model_freshness_policy, retraining_condition, source_version
from daily_bids.charts import png_markdown
from daily_bids.features.keyword_features import feature_set_version
from daily_bids.features.windows import HOLDOUT_DAYS, MIN_TRAINING_DAYS, TrainingWindow, plan_training_window
from daily_bids.models import blend_model as blend_module
from daily_bids.models import clustering, evaluation, preprocessing, tuning
from daily_bids.models import deep_model as deep_model_module
from daily_bids.models import refit as refit_module
from daily_bids.models import xgboost_model as model_module
from daily_bids.models.blend_model import fit_blend
from daily_bids.models.clustering import KeywordClusters, behaviour_profiles, fit_clusters, profile_plot_png
from daily_bids.models.deep_model import DeepKeywordModel, DeepParameters, train_deep
from daily_bids.models.naive_model import NaiveModel, naive_floors
from daily_bids.models.refit import refit
from daily_bids.models.store import ModelStore, ServedModel
from daily_bids.models.xgboost_model import TARGET_OBJECTIVES, KeywordModel, TrainingParameters, train, training_frame
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse, chart_path
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource

# Read as rolling windows that end at the latest day, not loaded whole; the automation looks at the latest partitions
# (present, blocking checks passed) before it retrains.
TRAINING_DEPS = [
    dg.AssetDep(key, partition_mapping=dg.LastPartitionMapping()) for key in (keyword_features.key, VALIDATED_REPORT)
]
# Every model asset retrains under the same condition and carries the same freshness policy (see assets.retraining);
# written for the default freshness window, which `assets.build_asset_graph` replaces with the deployment's.
MODEL_POLICIES = dict(
    group_name="models",
    automation_condition=retraining_condition(DEFAULT_SETTINGS.model_max_age_days),
    freshness_policy=model_freshness_policy(DEFAULT_SETTINGS.model_max_age_days),
)


class WindowConfig(dg.Config):
    train_through: str = Field(
        "",
        description="Last report day whose outcomes count (YYYY-MM-DD); the last "
        f"{HOLDOUT_DAYS} of them are the holdout. Empty: the latest day.",
    )


def _train_through(config: WindowConfig, store: Warehouse) -> dt.date:
    if config.train_through:
        return dt.date.fromisoformat(config.train_through)
    available = store.list_partitions(tables.FEATURES)
    if not available:
        raise ValueError(f"{tables.FEATURES} has no partitions yet: materialize the reports and features first")
    return available[-1]


def features_with_outcomes(store: Warehouse, feature_days: list[dt.date]) -> pd.DataFrame:
    """Features of `feature_days` with next-day outcomes."""
    features = store.read_partitions(tables.FEATURES, feature_days)
    outcomes = store.read_partitions(tables.VALIDATED_REPORT, [d + dt.timedelta(days=1) for d in feature_days])
    return training_frame(features, outcomes)


def training_window(config, store: Warehouse) -> TrainingWindow:
    """The window through the configured (or latest) day, sized to the features in the warehouse."""
    through = _train_through(config, store)  # says plainly when there are no features yet
    return plan_training_window(
        store.list_partitions(tables.FEATURES)[0], through, config.training_days, config.validation_days
    )


class ClusterConfig(WindowConfig):
    k: int = Field(0, ge=0, description="Number of clusters; 0 chooses it by silhouette (3 to 8).")
    profile_days: int = Field(56, ge=7, description="Days of reports the behaviour profiles summarize.")


@dg.asset(
    kinds={"scikitlearn", "parquet"}, deps=TRAINING_DEPS, code_version=source_version(clustering), **MODEL_POLICIES
)
def keyword_clusters(
    context: dg.AssetExecutionContext, config: ClusterConfig, warehouse: WarehouseResource
) -> dg.Output[pd.DataFrame]:
    """Keyword segments from behaviour profiles (scaled volume, CTR, conversion rate, weekly shape), by k-means.

    *Unsynced* in the UI minutes after training is expected: Dagster marks a model so as soon as the daily run writes a
    newer partition of the features or the report it trained on. Whether it retrains is the retraining condition's
    decision (its age, the decline check, a code change: assets/retraining.py), not this flag's."""
    store = warehouse.warehouse()
    through = _train_through(config, store) - dt.timedelta(days=HOLDOUT_DAYS)
    window = [through - dt.timedelta(days=n) for n in range(config.profile_days - 1, -1, -1)]
    reported = set(store.list_partitions(tables.VALIDATED_REPORT))
    days = [d for d in window if d in reported]  # a young deployment has fewer days
    if len(days) < 7:
        raise ValueError(
            f"keyword clusters need at least 7 report days in {window[0]}...{window[-1]}, "
            f"found {len(days)}: materialize the report history first"
        )
    clusters = fit_clusters(
        behaviour_profiles(store.read_partitions(tables.VALIDATED_REPORT, days)), k=config.k or None
    )
    context.log.info(f"{clusters.k} clusters; silhouette by k: {clusters.silhouette_by_k}")
    png = profile_plot_png(clusters)
    store.write_bytes(chart_path(tables.CLUSTERS, "profiles.png"), png)
    store.write_bytes(CLUSTER_NAMES_PATH, json.dumps(clusters.names()).encode())
    sizes = clusters.assignments["cluster"].value_counts().sort_index()
    return dg.Output(
        clusters.assignments,
        metadata={
            "k": clusters.k,
            "silhouette_by_k": dg.MetadataValue.json({str(k): v for k, v in clusters.silhouette_by_k.items()}),
            "profile_window": f"{days[0]}...{days[-1]}",
            "cluster_sizes": dg.MetadataValue.json({clusters.names()[c]: int(n) for c, n in sizes.items()}),
            "profiles": dg.MetadataValue.md(clusters.centers.round(4).to_markdown()),
            "profile_plot": dg.MetadataValue.md(png_markdown(png, "cluster profiles")),
            "profile_plot_png": dg.MetadataValue.path(store.display_uri(chart_path(tables.CLUSTERS, "profiles.png"))),
            DATA_THROUGH: _train_through(config, store).isoformat(),
        },
    )


# What each cluster is ("2: high volume, low CTR"), beside the profile chart: the charts of later steps name them.
CLUSTER_NAMES_PATH = chart_path(tables.CLUSTERS, "names.json")


def stored_cluster_names(store: Warehouse) -> dict[int, str]:
    """The names the latest clustering gave its clusters; none (numbers only) before it ran."""
    if not store.exists(CLUSTER_NAMES_PATH):
        return {}
    return {int(cluster): name for cluster, name in json.loads(store.read_bytes(CLUSTER_NAMES_PATH)).items()}


def clusters_from(assignments: pd.DataFrame) -> KeywordClusters:
    return KeywordClusters(assignments, pd.DataFrame(), int(assignments["cluster"].max()) + 1, {})


TRAINING_DAYS_DESCRIPTION = (
    f"Days of features (with next-day targets) to train on, at most: a young account "
    f"trains on the days it has, down to {MIN_TRAINING_DAYS}."
)


class XGBoostModelConfig(WindowConfig, TrainingParameters):
    training_days: int = Field(
        TrainingParameters.model_fields["training_days"].default,
        ge=MIN_TRAINING_DAYS,
        description=TRAINING_DAYS_DESCRIPTION,
    )


@dg.asset(
    kinds={"xgboost"},
    io_manager_key="model_io_manager",
    deps=TRAINING_DEPS,
    code_version=source_version(model_module, preprocessing),
    **MODEL_POLICIES,
)
def xgboost_model(
    context: dg.AssetExecutionContext,
    config: XGBoostModelConfig,
    warehouse: WarehouseResource,
    tracker: ExperimentTracker,
) -> dg.Output[KeywordModel]:
    """Candidate: gradient-boosted Poisson models of next-day clicks and conversions and a Tweedie model of
    conversion value, early-stopped on the last days of its window.

    *Unsynced* in the UI minutes after training is expected: Dagster marks a model so as soon as the daily run writes a
    newer partition of the features or the report it trained on. Whether it retrains is the retraining condition's
    decision (its age, the decline check, a code change: assets/retraining.py), not this flag's."""
    started_at = time.time()
    store = warehouse.warehouse()
    window = training_window(config, store)
    context.log.info(window.describe())
    parameters, tuned = _parameters(config, KeywordModel.kind, store, window)
    frame = features_with_outcomes(store, window.training_feature_days)
    model = train(frame, window.candidate_through, parameters, log=context.log.info)
    # The fitted scaling, also as an artifact of its own (the bundle carries the same one for scoring).
    store.write_bytes(f"preprocessing/{model.scaler.version}.json", model.scaler.to_json().encode())
    untrained = unreported_targets_of(frame)
    run_id = tracker.log_training(
        model,
        model.kind,
        {**parameters.model_dump(), "untrained_targets": untrained},
        window.span(),
        started_at=started_at,
    )
    return dg.Output(model, metadata=_model_metadata(model, store, window, run_id, tuned, untrained))


def _parameters(config: dg.Config, kind: str, store: Warehouse, window: TrainingWindow):
    """(a model's parameters from its asset config, the window and the latest tuning; the tuned values used).
    What the run config sets explicitly wins over the tuning, and the tuning over the defaults."""
    parameters_class = tuning.PARAMETER_CLASSES[kind]
    values = {k: v for k, v in config.model_dump().items() if k in parameters_class.model_fields}
    tuned = tuning.stored_best(store, kind)
    merged = tuning.apply_tuned(parameters_class, values, config.model_fields_set, tuned)
    merged |= {"training_days": window.training_days, "validation_days": window.validation_days}
    return parameters_class(**merged), {k: merged[k] for k in tuned if k not in config.model_fields_set}


def unreported_targets_of(frame: pd.DataFrame) -> str:
    """The targets no model trains on because the reports never carry them (see model.unreported_targets)."""
    return ", ".join(t for t in TARGET_OBJECTIVES if frame[t].isna().all()) or "none"


class DeepModelConfig(WindowConfig, DeepParameters):
    training_days: int = Field(
        TrainingParameters.model_fields["training_days"].default,
        ge=MIN_TRAINING_DAYS,
        description=TRAINING_DAYS_DESCRIPTION,
    )


@dg.asset(
    kinds={"tensorflow", "keras"},
    io_manager_key="model_io_manager",
    deps=TRAINING_DEPS,
    code_version=source_version(deep_model_module, preprocessing),
    **MODEL_POLICIES,
)
def deep_model(
    context: dg.AssetExecutionContext,
    config: DeepModelConfig,
    keyword_clusters: pd.DataFrame,
    warehouse: WarehouseResource,
    tracker: ExperimentTracker,
):
    """Candidate: a wide & deep Keras network (embeddings of keyword, ad group, match type, cluster and day of week
    beside the scaled features) with Poisson heads for clicks and conversions.

    *Unsynced* in the UI minutes after training is expected: Dagster marks a model so as soon as the daily run writes a
    newer partition of the features or the report it trained on. Whether it retrains is the retraining condition's
    decision (its age, the decline check, a code change: assets/retraining.py), not this flag's."""
    started_at = time.time()
    store = warehouse.warehouse()
    window = training_window(config, store)
    context.log.info(window.describe())
    parameters, tuned = _parameters(config, DeepKeywordModel.kind, store, window)
    frame = features_with_outcomes(store, window.training_feature_days)
    model = train_deep(
        frame, clusters_from(keyword_clusters), window.candidate_through, parameters, log=context.log.info
    )
    store.write_bytes(f"preprocessing/{model.scaler.version}.json", model.scaler.to_json().encode())
    untrained = unreported_targets_of(frame)
    run_id = tracker.log_training(
        model,
        model.kind,
        {**parameters.model_dump(), "untrained_targets": untrained},
        window.span(),
        started_at=started_at,
    )
    return dg.Output(model, metadata=_model_metadata(model, store, window, run_id, tuned, untrained))


def _model_metadata(model, store: Warehouse, window: TrainingWindow, run_id: str, tuned: dict, untrained: str) -> dict:
    return {
        "tuned_parameters": dg.MetadataValue.json(tuned)
        if tuned
        else "none (no tuning stored, or all set in the config)",
        "untrained_targets": untrained,
        # The training window ends before the holdout; the data behind the decision reaches its end.
        DATA_THROUGH: window.train_through.isoformat(),
        "model_version": model.version,
        "trained_through": model.trained_through.isoformat(),
        "training_window": window.span(),
        "training_days": window.training_days,
        "scaler": dg.MetadataValue.path(store.display_uri(f"preprocessing/{model.scaler.version}.json")),
        "feature_set_version": feature_set_version(),
        "mlflow_run_id": run_id,
        **readable({f"validation_{name}": value for name, value in model.validation_metrics.items()}),
    }


class GateConfig(dg.Config, evaluation.GatePolicy):
    pass


def _gate_window(xgboost_model, deep_model) -> TrainingWindow:
    """The candidates' window, from the models themselves: the holdout follows their last outcome day."""
    if xgboost_model.trained_through != deep_model.trained_through:
        raise ValueError(
            f"candidates trained through different days ({xgboost_model.trained_through} and "
            f"{deep_model.trained_through}): materialize them together"
        )
    return TrainingWindow(
        xgboost_model.trained_through + dt.timedelta(days=HOLDOUT_DAYS),
        training_days=xgboost_model.parameters["training_days"],
        validation_days=min(xgboost_model.parameters["validation_days"], deep_model.parameters["validation_days"]),
    )


@dg.asset(
    kinds={"python"},
    io_manager_key="model_io_manager",
    deps=TRAINING_DEPS,
    code_version=source_version(evaluation, blend_module, refit_module),
    **MODEL_POLICIES,
)
def champion_model(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    xgboost_model,
    deep_model,
    keyword_clusters: pd.DataFrame,
    warehouse: WarehouseResource,
    tracker: ExperimentTracker,
) -> dg.Output[ServedModel]:
    """The model that serves predictions. On a holdout no candidate trained on, the gate judges the XGBoost and deep
    candidates, their blend (weights fit on the validation days) and any registered Keras model: one replaces the
    champion only if it beats the champion and the naive floor by the configured margin and is not worse on
    calibration or on any cluster beyond tolerance. When no learned candidate passes, the better naive floor serves
    if it passes against the champion, or if there is none yet. Otherwise the champion keeps serving.
    A new winner is then refit on the window through the latest day, and that refit serves.

    *Unsynced* in the UI minutes after training is expected: Dagster marks a model so as soon as the daily run writes a
    newer partition of the features or the report it trained on. Whether it retrains is the retraining condition's
    decision (its age, the decline check, a code change: assets/retraining.py), not this flag's."""
    store = warehouse.warehouse()
    window = _gate_window(xgboost_model, deep_model)
    holdout = features_with_outcomes(store, window.holdout_feature_days)
    clusters = clusters_from(keyword_clusters).cluster_of(holdout["keyword_id"])
    learned = {"xgboost": xgboost_model, "deep": deep_model}
    blend_started_at = time.time()
    blend = fit_blend(learned, features_with_outcomes(store, window.validation_feature_days))
    validation_days = window.validation_feature_days
    tracker.log_training(
        blend,
        blend.kind,
        {"weights": blend.weights, "components": list(learned)},
        f"{validation_days[0]}...{validation_days[-1]}",
        started_at=blend_started_at,
    )
    candidates = {**learned, "blend": blend}
    first_outcome_day = window.holdout_feature_days[0] + dt.timedelta(days=1)
    challenger, challenger_note = _user_challenger(store, holdout, first_outcome_day)
    if challenger is not None:
        candidates[f"keras ({challenger.source_name})"] = challenger
    champion_store = ModelStore(store, context.assets_def.key.path[-1])
    incumbent, incumbent_note = champion_store.incumbent_for(first_outcome_day)
    verdict = evaluation.run_gate(
        candidates, incumbent, holdout, clusters, naive_floors(window.candidate_through), config
    )
    decision = verdict.decision
    notes = [incumbent_note, *([challenger_note] if challenger_note else []), *decision.reasons]
    context.log.info("; ".join(notes))
    served, refit_note, serving_window = _serve(context, verdict, champion_store, window, store, tracker)
    alias_version = tracker.set_champion(served.version)
    predictions = verdict.predictions
    png = evaluation.real_vs_predicted_png(
        holdout,
        {n: p["expected_clicks"].to_numpy() for n, p in predictions.items()},
        clusters,
        stored_cluster_names(store),
    )
    store.write_bytes(f"{tables.CHAMPION}/holdout.png", png)
    metrics = verdict.metrics
    overall = metrics[(metrics["slice"] == "all")].round(4)
    holdout_days = window.holdout_feature_days
    return dg.Output(
        ServedModel(served, verdict.chosen, {"training_window": serving_window}),
        metadata={
            "champion": decision.champion,
            "model_version": served.version,
            "judged_version": verdict.chosen.version,
            # Said plainly, since a floor serving means the learned models are not good enough yet.
            "serving": (
                f"the naive floor {decision.champion}: no learned model beats it yet"
                if isinstance(verdict.chosen, NaiveModel)
                else f"the learned model {decision.champion}"
            ),
            "refit": refit_note,
            "served_training_window": serving_window,
            "judged_training_window": window.span(),
            DATA_THROUGH: window.train_through.isoformat(),
            # What the decline check compares the live deviance with.
            "champion_holdout_clicks_poisson_deviance": float(
                overall[(overall["model"] == decision.champion) & (overall["target"] == "clicks")][
                    "poisson_deviance"
                ].iloc[0]
            ),
            "replaced_champion": decision.replaced,
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in notes)),
            "blend_weights": dg.MetadataValue.json(blend.weights),
            "holdout": f"{holdout_days[0]}...{holdout_days[-1]} (outcomes through {window.train_through})",
            "metrics": dg.MetadataValue.md(overall.to_markdown(index=False)),
            "metrics_by_cluster": dg.MetadataValue.md(
                metrics[metrics["slice"] != "all"].round(4).to_markdown(index=False)
            ),
            "real_vs_predicted": dg.MetadataValue.md(png_markdown(png, "real vs predicted")),
            "mlflow_champion_version": alias_version,
            **{
                f"{readable_name(row.model)}_{row.target}_poisson_deviance": float(row.poisson_deviance)
                for row in overall.itertuples()
                if np.isfinite(row.poisson_deviance)
            },
        },
    )


def _user_challenger(store: Warehouse, holdout: pd.DataFrame, first_outcome_day: dt.date):
    """(the registered Keras model, or None; why it is left out). A model that trained on the holdout's days, or
    that cannot score them, is not judged: the note says why."""
    challenger = ModelStore(store, tables.USER_CHALLENGER).current()
    if challenger is None:
        return None, ""
    if challenger.trained_through >= first_outcome_day:
        return None, (
            f"the registered Keras model {challenger.version} is not judged: it trained through "
            f"{challenger.trained_through}, into this holdout (outcomes from {first_outcome_day}); "
            f"register one trained through {first_outcome_day - dt.timedelta(days=1)} at the latest"
        )
    try:
        challenger.predict(holdout)
    except ValueError as error:
        return None, f"the registered Keras model {challenger.version} is not judged: {error}"
    return challenger, ""


def readable_name(model_name: str) -> str:
    """A model's name as a metadata key: `champion (xgb-…)` → `champion`, `keras (my.keras)` → `keras`."""
    return model_name.split(" (")[0]


def _serve(
    context,
    verdict: evaluation.GateVerdict,
    champion_store: ModelStore,
    window: TrainingWindow,
    store: Warehouse,
    tracker: ExperimentTracker,
):
    """(the model that serves, what was done to it, its training window). The gate's winner, a new one or the
    champion that keeps serving, is refit through the latest day (and tracked in MLflow): a kept champion does not
    go stale. A model that cannot be refit serves as judged; a champion already trained through the day stays."""
    chosen, serving = verdict.chosen, window.serving()
    kept = verdict.decision.champion == verdict.incumbent
    current = champion_store.current() if kept else None
    if kept and current.trained_through >= serving.train_through:
        return (
            current,
            f"none: the champion {current.version} already trained through {current.trained_through}",
            "unchanged",
        )

    def training_frame(days: int) -> pd.DataFrame:
        feature_days = TrainingWindow(serving.train_through, days, holdout_days=0).training_feature_days
        return features_with_outcomes(store, feature_days)

    refit_started_at = time.time()
    refitted = refit(chosen, training_frame, serving.train_through, log=context.log.info)
    if refitted is None:
        served = current if kept else chosen
        return served, f"none: {served.version} was trained outside the platform and serves as judged", "as registered"
    parameters = getattr(chosen, "parameters", {})  # a blend or a floor has none of its own
    days = TrainingWindow(serving.train_through, parameters.get("training_days", serving.training_days), holdout_days=0)
    tracker.log_training(
        refitted,
        refitted.kind,
        {"refit_of": chosen.version, "judged_on": window.span(), **parameters},
        days.span(),
        started_at=refit_started_at,
    )
    what = "the champion's judged model " if kept else ""
    return refitted, f"{what}{chosen.version} refit on {days.span()} as {refitted.version}", days.span()
