"""The model lab's domain parts: targets the reports carry, the blend, and the refit of the gate's winner."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.features.keyword_features import compute_features
from daily_bids.features.windows import TrainingWindow
from daily_bids.models.blend_model import BlendModel, fit_blend
from daily_bids.models.clustering import behaviour_profiles, fit_clusters
from daily_bids.models.deep_model import DeepParameters, train_deep
from daily_bids.models.kinds import model_from_bundle
from daily_bids.models.naive_model import naive_floors
from daily_bids.models.refit import refit
from daily_bids.models.store import ModelStore
from daily_bids.models.xgboost_model import (
    TrainingParameters,
    regression_metrics,
    train,
    training_frame,
    unreported_targets,
)
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage.warehouse import Warehouse

DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(44)]


@pytest.fixture(scope="module")
def data():
    simulator = AdMarketSimulator(seed=11, keywords=300)
    reports = pd.concat([simulator.report(d) for d in DAYS], ignore_index=True)
    features = compute_features(reports, DAYS[:-1])
    frame = training_frame(features[features["date"] >= pd.Timestamp(DAYS[14])], reports)
    return reports, frame


def days_of(frame: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    return frame[frame["date"].dt.date.isin(days)].reset_index(drop=True)


def test_targets_the_reports_never_carry_are_not_trained(data):
    reports, frame = data
    clicks_only = reports.assign(conversions=0, conversion_value=0.0, cost=np.nan)
    assert set(unreported_targets(clicks_only)) == {"conversions", "conversion_value"}
    assert unreported_targets(reports) == {}
    assert set(unreported_targets(reports.assign(conversions=np.nan))) == {"conversions"}
    features = frame[[c for c in frame.columns if c not in ("clicks", "conversions", "conversion_value")]]
    untrained = training_frame(features, clicks_only)
    assert untrained["conversions"].isna().all() and untrained["clicks"].notna().all()
    messages = []
    model = train(untrained, DAYS[-2], TrainingParameters(training_days=20, validation_days=4), log=messages.append)
    assert set(model.boosters) == {"clicks"}
    assert any("not training conversions" in m for m in messages)
    assert model.predict(untrained.iloc[:10])["expected_conversions"].isna().all()


def test_the_blend_weighs_two_models_on_validation_rows_and_round_trips(data, tmp_path):
    _, frame = data
    validation = days_of(frame, DAYS[-9:-2])
    floors = naive_floors(DAYS[-10])
    blend = fit_blend(floors, validation)
    assert sum(blend.weights.values()) == pytest.approx(1.0)
    actual = validation["clicks"].to_numpy(dtype="float64")

    def deviance(model) -> float:
        return regression_metrics(actual, model.predict(validation)["expected_clicks"].to_numpy())["poisson_deviance"]

    assert deviance(blend) <= min(deviance(floor) for floor in floors.values()) + 1e-12
    assert blend.validation_metrics["clicks_poisson_deviance"] == pytest.approx(deviance(blend))
    # A blend is stored like any model and read back by its kind, with its components.
    store = ModelStore(Warehouse(str(tmp_path)), "champion_model")
    store.save(blend)
    restored = store.current()
    assert isinstance(restored, BlendModel) and restored.version == blend.version
    pd.testing.assert_frame_equal(restored.predict(validation), blend.predict(validation))
    with pytest.raises(ValueError, match="one weight per component"):
        BlendModel(dict(floors), {"naive_7d": 1.0})


def test_the_refit_reaches_the_latest_day_with_the_winners_parameters(data):
    reports, frame = data
    latest = DAYS[-2]  # the last outcome day: features of DAYS[-3] with outcomes of DAYS[-2]
    window = TrainingWindow(latest, training_days=20, validation_days=4)
    candidates = days_of(frame, window.training_feature_days)

    def serving_frame(training_days: int) -> pd.DataFrame:
        return days_of(frame, TrainingWindow(latest, training_days, holdout_days=0).training_feature_days)

    parameters = TrainingParameters(training_days=window.training_days, validation_days=window.validation_days)
    xgboost = train(candidates, window.candidate_through, parameters, log=lambda _: None)
    served = refit(xgboost, serving_frame, latest, log=lambda _: None)
    assert served.trained_through == latest and xgboost.trained_through == latest - dt.timedelta(days=7)
    assert served.parameters == xgboost.parameters and served.version != xgboost.version
    assert {t: b.num_boosted_rounds() for t, b in served.boosters.items()} == {
        t: b.num_boosted_rounds() for t, b in xgboost.boosters.items()
    }
    # The served model learned the holdout's days: it predicts them better than the model judged on them.
    holdout = days_of(frame, window.holdout_feature_days)
    actual = holdout["clicks"].to_numpy(dtype="float64")
    fitted = {
        name: regression_metrics(actual, m.predict(holdout)["expected_clicks"].to_numpy())["poisson_deviance"]
        for name, m in {"judged": xgboost, "served": served}.items()
    }
    assert fitted["served"] < fitted["judged"]

    clusters = fit_clusters(behaviour_profiles(reports), k=4)
    deep = train_deep(
        candidates,
        clusters,
        window.candidate_through,
        DeepParameters(epochs=4, training_days=20, validation_days=4),
        log=lambda _: None,
    )
    served_deep = refit(deep, serving_frame, latest, log=lambda _: None)
    assert served_deep.trained_through == latest
    assert served_deep.validation_metrics["best_epoch"] == deep.validation_metrics["best_epoch"]
    assert model_from_bundle("deep", served_deep.to_bytes()).version == served_deep.version
    blend = fit_blend({"xgboost": xgboost, "deep": deep}, days_of(frame, window.validation_feature_days))
    served_blend = refit(blend, serving_frame, latest, log=lambda _: None)
    assert served_blend.weights == blend.weights and served_blend.trained_through == latest
