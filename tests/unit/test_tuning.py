"""Hyperparameter tuning of the candidates (daily_bids.models.tuning): the search spaces, the studies, their budget, the
precedence of a run's config over tuned values, and the stored result. No Dagster: the domain module alone."""

import datetime as dt

import pandas as pd
import pytest

from daily_bids.features.keyword_features import compute_features
from daily_bids.models import deep_model, tuning
from daily_bids.models import xgboost_model as model
from daily_bids.models.clustering import behaviour_profiles, fit_clusters
from daily_bids.models.deep_model import DeepParameters
from daily_bids.models.xgboost_model import TrainingParameters, regression_metrics, training_frame
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage.warehouse import Warehouse

DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(34)]
TRAINED_THROUGH = DAYS[-2]  # the last outcome day: features of DAYS[-3] with the report of DAYS[-2]
VALIDATION_DAYS = 4
XGBOOST_BASE = TrainingParameters(
    training_days=14, validation_days=VALIDATION_DAYS, n_estimators=100, early_stopping_rounds=10
)
DEEP_BASE = DeepParameters(training_days=14, validation_days=VALIDATION_DAYS, epochs=2)


def QUIET(message: str) -> None:  # a log that prints nothing
    pass


@pytest.fixture(scope="module")
def data():
    """60 keywords: 19 feature days with next-day outcomes (the first 14 report days build the 14-day windows)."""
    simulator = AdMarketSimulator(seed=5, keywords=300)
    account = simulator.keyword_dimensions["keyword_id"].to_numpy()[:60]
    reports = pd.concat([(r := simulator.report(d))[r["keyword_id"].isin(account)] for d in DAYS], ignore_index=True)
    features = compute_features(reports, DAYS[:-1])
    frame = training_frame(features[features["date"] >= pd.Timestamp(DAYS[14])], reports)
    return frame, fit_clusters(behaviour_profiles(reports), k=3)


def run_study(kind, frame, base, budget, clusters=None):
    """A study with every training it runs recorded: (result, the trainings' arguments and models, on_trial calls)."""
    trainings, reported = [], []
    module, name = (model, "train") if kind == "xgboost" else (deep_model, "train_deep")
    original = getattr(module, name)

    def recording(*args, **kwargs):
        trained = original(*args, **kwargs)
        trainings.append({"args": args, "model": trained})
        return trained

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, recording)
        result = tuning.tune(
            kind,
            frame,
            TRAINED_THROUGH,
            base,
            budget,
            clusters=clusters,
            on_trial=lambda *call: reported.append(call),
            log=QUIET,
        )
    return result, trainings, reported


@pytest.fixture(scope="module")
def xgboost_study(data):
    frame, _ = data
    return run_study("xgboost", frame, XGBOOST_BASE, tuning.TuningBudget(trials=4, seed=1))


@pytest.fixture(scope="module")
def deep_study(data):
    frame, clusters = data
    return run_study("deep", frame, DEEP_BASE, tuning.TuningBudget(trials=2, seed=1), clusters)


def test_the_search_spaces_tune_fields_of_the_parameters_over_valid_ranges_holding_the_defaults():
    assert set(tuning.SEARCH_SPACES) == set(tuning.PARAMETER_CLASSES) == {"xgboost", "deep"}
    assert tuning.PARAMETER_CLASSES == {"xgboost": TrainingParameters, "deep": DeepParameters}
    for kind, space in tuning.SEARCH_SPACES.items():
        parameters_class = tuning.PARAMETER_CLASSES[kind]
        assert space and set(space) <= set(parameters_class.model_fields), kind
        for name, dimension in space.items():
            # The defaults are a point of the space, and every end of a range or option is a valid setting.
            assert dimension.contains(parameters_class.model_fields[name].default), (kind, name)
            values = dimension.options if isinstance(dimension, tuning.Choice) else (dimension.low, dimension.high)
            for value in values:
                assert getattr(parameters_class(**{name: value}), name) == value
    assert "n_estimators" not in tuning.SEARCH_SPACES["xgboost"]  # an upper bound: early stopping picks the rounds
    assert "epochs" not in tuning.SEARCH_SPACES["deep"]


def check_study(kind, study, frame, base, trials):
    result, trainings, reported = study
    space = tuning.SEARCH_SPACES[kind]
    assert result.kind == kind and len(trainings) == len(reported) == len(result.trials) == trials
    assert list(result.trials.columns) == ["number", "value", "seconds", *space]
    assert result.trials["number"].tolist() == list(range(trials))
    # on_trial: once per trial, with the trial's tuned parameters, value and duration.
    for (number, params, value, seconds), row in zip(reported, result.trials.to_dict(orient="records")):
        assert number == row["number"] and value == row["value"] and seconds == row["seconds"] > 0
        assert params == {name: row[name] for name in space}
    # Trial 0 is the base parameters untuned; every trial changes only the tuned names of the base.
    assert reported[0][1] == {name: getattr(base, name) for name in space}
    assert trainings[0]["model"].parameters == base.model_dump()
    for (_, params, value, _), training in zip(reported, trainings):
        assert training["model"].parameters == {**base.model_dump(), **params}
        assert all(space[name].contains(v) for name, v in params.items()), params
        # The objective: the model's own validation clicks deviance.
        assert value == training["model"].validation_metrics[tuning.OBJECTIVE]
    values = result.trials["value"]
    assert result.baseline_value == values.iloc[0]
    assert result.best_value == values.min() <= result.baseline_value
    assert result.best_parameters == reported[int(values.idxmin())][1]
    # The study saw the frame it was given and nothing else, and trained through the day it was given.
    for training in trainings:
        assert training["args"][0] is frame and training["args"][-2] == TRAINED_THROUGH  # (..., through, parameters)
        assert training["model"].trained_through == TRAINED_THROUGH
    return result, trainings


def test_an_xgboost_study_starts_from_the_base_and_keeps_the_best_trial(data, xgboost_study):
    frame, _ = data
    result, trainings = check_study("xgboost", xgboost_study, frame, XGBOOST_BASE, trials=4)
    assert len(set(result.trials["max_depth"].astype(str) + result.trials["learning_rate"].astype(str))) == 4
    # The objective is the deviance on the frame's last validation days, those its early stopping held out.
    last_days = frame[frame["date"].isin(sorted(frame["date"].unique())[-VALIDATION_DAYS:])]
    for training, value in zip(trainings, result.trials["value"]):
        predicted = training["model"].predict(last_days)["expected_clicks"].to_numpy()
        assert regression_metrics(last_days["clicks"].to_numpy(dtype="float64"), predicted)[
            "poisson_deviance"
        ] == pytest.approx(value, rel=1e-9)


def test_the_same_seed_tries_the_same_parameters_and_scores_them_the_same(data, xgboost_study):
    frame, _ = data
    first = xgboost_study[0]
    again, _, _ = run_study("xgboost", frame, XGBOOST_BASE, tuning.TuningBudget(trials=4, seed=1))
    columns = ["number", "value", *tuning.SEARCH_SPACES["xgboost"]]
    pd.testing.assert_frame_equal(again.trials[columns], first.trials[columns])
    assert (again.best_parameters, again.best_value) == (first.best_parameters, first.best_value)
    other, _, _ = run_study("xgboost", frame, XGBOOST_BASE, tuning.TuningBudget(trials=2, seed=2))
    assert other.trials["value"].iloc[0] == first.trials["value"].iloc[0]  # trial 0, the base, whatever the seed
    assert other.trials["learning_rate"].iloc[1] != first.trials["learning_rate"].iloc[1]  # another seed


def test_the_timeout_stops_the_study_after_the_baseline(data):
    frame, _ = data
    result, trainings, reported = run_study(
        "xgboost", frame, XGBOOST_BASE, tuning.TuningBudget(trials=10, timeout_seconds=0.01)
    )
    assert len(result.trials) == len(trainings) == len(reported) == 1
    assert result.best_value == result.baseline_value
    assert result.best_parameters == {name: getattr(XGBOOST_BASE, name) for name in tuning.SEARCH_SPACES["xgboost"]}


def test_base_parameters_outside_the_space_are_still_trial_zero(data):
    frame, _ = data
    base = XGBOOST_BASE.model_copy(update={"max_depth": 2, "learning_rate": 0.5})
    _, trainings, reported = run_study("xgboost", frame, base, tuning.TuningBudget(trials=2))
    assert reported[0][1] == {"max_depth": 2, "learning_rate": 0.5}
    assert trainings[0]["model"].parameters == base.model_dump()


def test_a_deep_study_starts_from_the_base_and_keeps_the_best_trial(data, deep_study):
    frame, clusters = data
    result, trainings = check_study("deep", deep_study, frame, DEEP_BASE, trials=2)
    assert all(training["args"][1] is clusters for training in trainings)
    again, _, _ = run_study("deep", frame, DEEP_BASE, tuning.TuningBudget(trials=2, seed=1), clusters)
    pd.testing.assert_frame_equal(
        again.trials.drop(columns="seconds"), result.trials.drop(columns="seconds"), rtol=1e-5
    )


def test_an_unknown_kind_or_a_deep_study_without_clusters_is_refused(data):
    frame, _ = data
    with pytest.raises(ValueError, match="unknown model kind 'lightgbm'"):
        tuning.tune("lightgbm", frame, TRAINED_THROUGH, XGBOOST_BASE, tuning.TuningBudget(), log=QUIET)
    with pytest.raises(ValueError, match="needs the keyword clusters"):
        tuning.tune("deep", frame, TRAINED_THROUGH, DEEP_BASE, tuning.TuningBudget(), log=QUIET)
    with pytest.raises(ValueError, match="unknown model kind"):
        tuning.stored_best(Warehouse("/nonexistent"), "LightGBMParameters")
    with pytest.raises(ValueError):
        tuning.TuningBudget(trials=0)
    with pytest.raises(ValueError):
        tuning.TuningBudget(timeout_seconds=0)


def test_the_run_config_wins_over_tuned_values_and_tuned_values_over_defaults():
    config = {**TrainingParameters().model_dump(), "max_depth": 6, "n_estimators": 100}
    tuned = {"max_depth": 9, "learning_rate": 0.1, "a_removed_field": 1}
    # max_depth set explicitly (to its default, even): it stays; learning_rate is a default: the tuned value wins.
    merged = tuning.apply_tuned(TrainingParameters, config, {"max_depth", "n_estimators", "train_through"}, tuned)
    assert merged == {**config, "learning_rate": 0.1}
    assert config["learning_rate"] == 0.05  # the config's values are not changed in place
    assert TrainingParameters(**merged).learning_rate == 0.1
    assert tuning.apply_tuned(TrainingParameters, config, set(), tuned) == {
        **config,
        "max_depth": 9,
        "learning_rate": 0.1,
    }
    assert tuning.apply_tuned(TrainingParameters, config, set(), {}) == config
    # Fields the config leaves out take the tuned value too.
    assert tuning.apply_tuned(DeepParameters, {}, set(), {"hidden_units": [32]}) == {"hidden_units": [32]}


def test_a_tuning_result_round_trips_through_json_and_the_warehouse(xgboost_study, deep_study, tmp_path):
    for result in (xgboost_study[0], deep_study[0]):
        restored = tuning.TuningResult.from_json(result.to_json())
        assert (restored.kind, restored.best_parameters, restored.best_value, restored.baseline_value) == (
            result.kind,
            result.best_parameters,
            result.best_value,
            result.baseline_value,
        )
        pd.testing.assert_frame_equal(restored.trials, result.trials)
    store = Warehouse(str(tmp_path))
    assert tuning.stored_best(store, "deep") == {} and tuning.stored_result(store, "xgboost") is None
    for result in (xgboost_study[0], deep_study[0]):
        tuning.store_best(store, result)
    # Read back by kind or by parameters class, as the candidates' training reads it.
    assert tuning.stored_best(store, "TrainingParameters") == xgboost_study[0].best_parameters
    assert tuning.stored_best(store, "deep") == deep_study[0].best_parameters
    assert isinstance(tuning.stored_best(store, "DeepParameters")["hidden_units"], list)
    DeepParameters(
        **tuning.apply_tuned(DeepParameters, DEEP_BASE.model_dump(), set(), tuning.stored_best(store, "DeepParameters"))
    )
