"""Clusters, the deep model, the champion gate and experiment tracking."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from daily_bids.features.keyword_features import compute_features
from daily_bids.models.clustering import behaviour_profiles, cluster_names, fit_clusters
from daily_bids.models.deep_model import DeepKeywordModel, DeepParameters, train_deep
from daily_bids.models.evaluation import GatePolicy, decide
from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
from daily_bids.simulator.market import AdMarketSimulator

DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(40)]


@pytest.fixture(scope="module")
def data():
    simulator = AdMarketSimulator(seed=3, keywords=400)
    reports = pd.concat([simulator.report(d) for d in DAYS], ignore_index=True)
    features = compute_features(reports, DAYS[:-1])
    frame = training_frame(features[features["date"] >= pd.Timestamp(DAYS[14])], reports)
    return reports, frame


def test_clusters_separate_behaviour_and_choose_k_by_silhouette(data):
    reports, _ = data
    clusters = fit_clusters(behaviour_profiles(reports))
    assert 3 <= clusters.k <= 8 and clusters.k == max(clusters.silhouette_by_k, key=clusters.silhouette_by_k.get)
    assert clusters.assignments["keyword_id"].is_unique and clusters.assignments["cluster"].nunique() == clusters.k
    assert clusters.cluster_of([reports["keyword_id"].iloc[0], -5])[1] == -1  # unseen keywords: unknown cluster
    assert fit_clusters(behaviour_profiles(reports), k=4).k == 4


def test_clusters_are_named_by_what_stands_out_in_their_profile(data):
    centers = pd.DataFrame(
        {
            "log_volume": [4.0, 2.0, 2.1, 2.0],
            "ctr": [0.03, 0.10, 0.04, 0.04],
            "conversion_rate": [0.02, 0.02, 0.02, 0.02],  # the same everywhere: names no cluster
            **{f"share_{day}": [1 / 7] * 4 for day in ("mon", "tue", "wed", "thu", "fri")},
            "share_sat": [1 / 7, 1 / 7, 0.25, 1 / 7],
            "share_sun": [1 / 7, 1 / 7, 0.25, 1 / 7],
        }
    )
    names = cluster_names(centers)
    assert names[0] == "0: high volume, low CTR"
    assert names[1] == "1: high CTR"
    assert names[2] == "2: weekend-heavy"
    assert names[3] == "3: typical"
    reports, _ = data
    clusters = fit_clusters(behaviour_profiles(reports), k=4)
    assert sorted(clusters.names()) == sorted(clusters.centers.index)


def test_same_data_and_config_give_the_same_models(data):
    reports, frame = data
    first = train(frame, DAYS[-1], TrainingParameters(training_days=20, validation_days=4))
    second = train(frame, DAYS[-1], TrainingParameters(training_days=20, validation_days=4))
    assert first.version == second.version and first.validation_metrics == second.validation_metrics
    clusters = fit_clusters(behaviour_profiles(reports), k=4)
    parameters = DeepParameters(epochs=3, validation_days=4, seed=5)
    deep_a = train_deep(frame, clusters, DAYS[-1], parameters)
    deep_b = train_deep(frame, clusters, DAYS[-1], parameters)
    for name, value in deep_a.validation_metrics.items():
        assert deep_b.validation_metrics[name] == pytest.approx(value, rel=1e-5), name


def test_deep_model_round_trips_and_scores_in_batches(data):
    reports, frame = data
    clusters = fit_clusters(behaviour_profiles(reports), k=4)
    model = train_deep(frame, clusters, DAYS[-1], DeepParameters(epochs=3, validation_days=4))
    restored = DeepKeywordModel.from_bytes(model.to_bytes())
    assert restored.version == model.version
    sample = frame.iloc[:5000]
    pd.testing.assert_frame_equal(model.predict(sample), restored.predict(sample))
    predicted = restored.predict(sample)
    assert (predicted["expected_clicks"] > 0).all() and np.isfinite(predicted["expected_conversions"]).all()


def _metrics(deviance: dict[str, float], by_cluster: dict[str, dict[str, float]] | None = None, calibration=None):
    rows = [
        {
            "model": m,
            "target": "clicks",
            "slice": "all",
            "poisson_deviance": d,
            "calibration": (calibration or {}).get(m, 1.0),
        }
        for m, d in deviance.items()
    ]
    for model, slices in (by_cluster or {}).items():
        rows += [
            {"model": model, "target": "clicks", "slice": s, "poisson_deviance": d, "calibration": 1.0}
            for s, d in slices.items()
        ]
    return pd.DataFrame(rows)


def test_gate_takes_the_best_candidate_that_beats_floor_and_champion():
    metrics = _metrics(
        {"xgboost": 0.80, "deep": 0.85, "naive_7d": 1.2, "naive_28d": 1.0, "champion": 0.9},
        {m: {"cluster 0": 0.8} for m in ("xgboost", "deep", "champion")},
    )
    decision = decide(metrics, ["xgboost", "deep"], "champion", GatePolicy())
    assert (decision.champion, decision.replaced) == ("xgboost", True)
    assert "beats the naive floor naive_28d" in decision.reasons[0]


def test_gate_keeps_the_champion_when_a_cluster_gets_worse_or_the_margin_is_not_met():
    metrics = _metrics(
        {"xgboost": 0.80, "deep": 0.895, "naive_7d": 1.2, "naive_28d": 1.0, "champion": 0.9},
        {
            "xgboost": {"cluster 0": 0.7, "cluster 1": 1.2},
            "deep": {"cluster 0": 0.8, "cluster 1": 0.9},
            "champion": {"cluster 0": 0.8, "cluster 1": 0.9},
        },
    )
    decision = decide(metrics, ["xgboost", "deep"], "champion", GatePolicy(margin=0.02))
    assert (decision.champion, decision.replaced) == ("champion", False)
    assert "['cluster 1']" in decision.reasons[0] and "does not beat the champion" in decision.reasons[1]


def test_without_a_champion_the_naive_floor_serves_when_no_candidate_beats_it():
    metrics = _metrics({"xgboost": 1.0, "deep": 1.1, "naive_7d": 1.2, "naive_28d": 0.99})
    decision = decide(metrics, ["xgboost", "deep"], None, GatePolicy())
    assert (decision.champion, decision.replaced) == ("naive_28d", True)
    assert [r.split(" ")[0] for r in decision.reasons] == ["xgboost", "deep", "the"]
    assert "does not beat the naive floor naive_28d" in decision.reasons[0]
    assert decision.reasons[-1].startswith("the naive floor naive_28d serves")


def test_a_serving_floor_keeps_serving_until_a_candidate_beats_it():
    metrics = _metrics({"xgboost": 1.0, "deep": 0.985, "naive_7d": 1.2, "naive_28d": 0.99})
    kept = decide(metrics, ["xgboost", "deep"], "naive_28d", GatePolicy())
    assert (kept.champion, kept.replaced) == ("naive_28d", False)
    assert "keeps serving" in kept.reasons[-1]
    beaten = decide(
        _metrics({"xgboost": 0.9, "deep": 0.985, "naive_7d": 1.2, "naive_28d": 0.99}),
        ["xgboost", "deep"],
        "naive_28d",
        GatePolicy(),
    )
    assert (beaten.champion, beaten.replaced) == ("xgboost", True)


def test_the_floor_replaces_a_champion_it_beats_by_the_gates_rules_only():
    declined = _metrics({"xgboost": 1.3, "deep": 1.25, "naive_7d": 1.2, "naive_28d": 1.0, "champion": 1.4})
    decision = decide(declined, ["xgboost", "deep"], "champion", GatePolicy())
    assert (decision.champion, decision.replaced) == ("naive_28d", True)
    assert "and it beats the champion champion" in decision.reasons[-1]
    close = _metrics({"xgboost": 1.3, "deep": 1.25, "naive_7d": 1.2, "naive_28d": 1.0, "champion": 1.005})
    kept = decide(close, ["xgboost", "deep"], "champion", GatePolicy())
    assert (kept.champion, kept.replaced) == ("champion", False)
    assert "naive floor naive_28d rejected: deviance 1.0000 does not beat the champion" in kept.reasons[-2]


def test_gate_rejects_a_worse_calibration():
    metrics = _metrics(
        {"xgboost": 0.8, "deep": 0.9, "naive_7d": 1.2, "naive_28d": 1.0, "champion": 0.9},
        calibration={"xgboost": 1.3, "champion": 1.02, "deep": 1.0},
    )
    decision = decide(metrics, ["xgboost"], "champion", GatePolicy())
    assert decision.champion == "champion" and "calibration 1.300" in decision.reasons[0]


def test_cluster_value_per_click_is_the_click_weighted_mean_of_its_keywords():
    from daily_bids.models.prediction import cluster_values

    features = pd.DataFrame(
        {
            "keyword_id": [1, 2, 3, 4],
            "clicks_sum_28d": np.log1p([10.0, 30.0, 5.0, 7.0]),
            "value_per_click_28d": [1.0, 2.0, 4.0, 9.0],
        }
    )
    clusters = pd.DataFrame({"keyword_id": [1, 2, 3], "cluster": [0, 0, 1]})
    values = cluster_values(features, clusters)
    assert values.to_dict() == pytest.approx({0: 1.75, 1: 4.0})  # keyword 4 has no cluster: in none of them


def test_the_naive_floor_is_a_model_that_round_trips_and_predicts_the_window_means():
    from daily_bids.models.naive_model import NaiveModel

    floor = NaiveModel(28, dt.date(2025, 3, 1))
    features = pd.DataFrame(
        {f"{target}_mean_28d": np.log1p([2.0, 0.5]) for target in ("clicks", "conversions", "conversion_value")}
    )
    features["conversions_mean_28d"] = [np.nan, np.log1p(0.1)]  # not reported for the first keyword
    predicted = floor.predict(features)
    assert predicted["expected_clicks"].tolist() == pytest.approx([2.0, 0.5])
    assert np.isnan(predicted["expected_conversions"].iloc[0])
    restored = NaiveModel.from_bytes(floor.to_bytes())
    assert restored == floor and restored.version == "naive28d-20250301"
    assert set(json.loads(floor.registry_entry()["feature_versions"])) == {
        "clicks_mean_28d",
        "conversions_mean_28d",
        "conversion_value_mean_28d",
    }
    with pytest.raises(ValueError):
        NaiveModel(14, dt.date(2025, 3, 1))


def test_the_deep_model_on_a_young_account_stays_near_the_naive_floor():
    """30 days of a 50-keyword account, the window `run` gives it (22 training days). The deep model once scored
    5 to 8 times the floor's deviance here, at a calibration of 2 to 3 (200 clicks predicted where 27 came). On so few
    rows it still trails the floor (about 1.6 times), and the gate lets the floor serve; it must not be far off."""
    from daily_bids.features.keyword_features import roll
    from daily_bids.features.windows import plan_training_window
    from daily_bids.models.naive_model import naive_floors

    market = AdMarketSimulator(seed=3, keywords=300)
    account = market.keyword_dimensions["keyword_id"].to_numpy()[:50]
    days = [dt.date(2025, 5, 1) + dt.timedelta(days=n) for n in range(30)]
    reports = {day: (r := market.report(day))[r["keyword_id"].isin(account)] for day in days}
    features = pd.concat([f for _, f, _ in roll(days, reports.get, None, history_start=days[0])], ignore_index=True)
    frame = training_frame(features, pd.concat(reports.values(), ignore_index=True))
    window = plan_training_window(days[0], days[-1])
    assert window.training_days == 22
    dates = frame["date"].dt.date
    fit = frame[dates.isin(window.training_feature_days)]
    holdout = frame[dates.isin(window.holdout_feature_days)]
    profile_days = [d for d in days if d <= window.candidate_through]
    clusters = fit_clusters(behaviour_profiles(pd.concat([reports[d] for d in profile_days])))
    deep = train_deep(
        fit,
        clusters,
        window.candidate_through,
        DeepParameters(validation_days=window.validation_days),
        log=lambda _: None,
    )
    actual = holdout["clicks"].to_numpy(dtype="float64")
    from daily_bids.models.xgboost_model import regression_metrics

    scores = regression_metrics(actual, deep.predict(holdout)["expected_clicks"].to_numpy())
    floor = min(
        regression_metrics(actual, f.predict(holdout)["expected_clicks"].to_numpy())["poisson_deviance"]
        for f in naive_floors(window.candidate_through).values()
    )
    assert scores["poisson_deviance"] < 2 * floor, (scores, floor)
    assert 0.75 < scores["calibration"] < 1.33, scores


@pytest.mark.parametrize("text_dtype", ["object", "string[python]", "string[pyarrow]", "str"])
def test_network_inputs_give_the_ids_the_embeddings_learned_and_the_scaled_features(data, text_dtype):
    """The deep model's input preparation (distinct values hashed once, float32 scaling, sorted cluster arrays)
    against the straightforward row-by-row computation in float64: the same integer ids for every value, nulls
    and unknowns included, whatever the strings' storage; the numeric inputs within 1e-6 relative."""
    from daily_bids.features.keyword_features import FEATURE_NAMES
    from daily_bids.models.deep_model import AD_GROUP_BUCKETS, NetworkInputs
    from daily_bids.models.preprocessing import FeatureScaler
    from daily_bids.schema import MATCH_TYPES

    _, frame = data
    features = frame.iloc[:3000].reset_index(drop=True)
    columns = list(FEATURE_NAMES)
    # A feature far from 0 with a narrow spread: centring it in float32 would cancel most of its digits.
    features[columns[0]] = 1000.0 + np.random.default_rng(0).normal(0.0, 1e-3, len(features))
    features.loc[:3, columns[1]] = [np.nan, np.inf, -np.inf, 1e300]
    # Fitted on the later rows, so that some earlier ones fall outside the fitted range and are clipped.
    scaler = FeatureScaler.fit(features.iloc[1000:], columns, "standard", "test")
    ad_groups = features["ad_group"].astype(object)
    ad_groups[:5] = [None, np.nan, pd.NA, "an ad group never seen", ""]
    match_types = features["match_type"].astype(object)
    match_types[5:9] = [None, "exact", "Unknown", pd.NA]  # match types match exactly: "exact" is unknown
    if text_dtype == "object":
        ad_groups[9] = 42  # read as the text "42"
    features["ad_group"] = pd.Series(ad_groups, dtype=text_dtype)
    features["match_type"] = pd.Series(match_types, dtype=text_dtype)
    keyword_ids = features["keyword_id"].unique()
    clusters = pd.DataFrame(
        {
            "keyword_id": np.append(keyword_ids[:-7], [-1, 10**12])[::-1],  # 7 without a cluster
            "cluster": np.arange(len(keyword_ids) - 5) % 4,
        }
    )

    inputs = NetworkInputs(scaler, clusters, keyword_buckets=97)(features)

    cluster_of = dict(zip(clusters["keyword_id"], clusters["cluster"]))
    match_number = {name: number + 1 for number, name in enumerate(MATCH_TYPES)}
    expected_ids = {
        "keyword": features["keyword_id"] % 97,
        "ad_group": pd.util.hash_array(features["ad_group"].astype("string").to_numpy(dtype=object)) % AD_GROUP_BUCKETS,
        "match_type": [0 if pd.isna(name) else match_number.get(name, 0) for name in features["match_type"]],
        "cluster": [cluster_of.get(keyword, -1) + 1 for keyword in features["keyword_id"]],
        "day_of_week": features["target_day_of_week"],
    }
    for name, expected in expected_ids.items():
        assert inputs[name].dtype == np.int32, name
        np.testing.assert_array_equal(inputs[name], np.asarray(expected, dtype="int64"), err_msg=name)
    assert (inputs["match_type"][5:9] == 0).all() and (inputs["cluster"] == 0).sum() >= 7
    assert len(set(inputs["ad_group"][:3])) == 1  # None, NaN and NA: one null

    bounds = {"lower": pd.Series(scaler.lower, index=columns), "upper": pd.Series(scaler.upper, index=columns)}
    scaled = (features[columns].astype("float64") - np.asarray(scaler.center)) / np.asarray(scaler.scale)
    expected_numeric = scaled.clip(axis=1, **bounds).fillna(0.0).to_numpy()
    assert inputs["numeric"].dtype == np.float32 and inputs["numeric"].flags.c_contiguous
    np.testing.assert_allclose(inputs["numeric"], expected_numeric, rtol=1e-6, atol=0)
    assert (expected_numeric != scaled.fillna(0.0).to_numpy()).any()  # clipping was exercised

    with pytest.raises(ValueError, match="more than once"):
        NetworkInputs(scaler, pd.concat([clusters, clusters.iloc[:1]]), keyword_buckets=97)
