"""A user's own Keras model: loading, the input and output contract, scoring and the bundle."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.features.keyword_features import FEATURE_NAMES
from daily_bids.models.protocol import ServableModel
from daily_bids.models.user_keras_model import UserKerasModel, load_user_keras

keras = pytest.importorskip("keras")
# Raised inside Keras' saving code under NumPy 2; nothing for this project to change.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")

TRAINED_THROUGH = dt.date(2024, 3, 31)
WIDTH = len(FEATURE_NAMES)


def feature_frame(rows: int = 50, seed: int = 0) -> pd.DataFrame:
    """Every feature column (random non-negative floats, a few nulls), keyword ids and a non-default index."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.uniform(0, 3, size=(rows, WIDTH)), columns=list(FEATURE_NAMES), index=pd.RangeIndex(100, 100 + rows)
    )
    frame.iloc[::7, 3] = np.nan  # the network is given 0 for a null
    frame["keyword_id"] = np.arange(rows, dtype="int64")
    if "value_per_conversion_28d" not in FEATURE_NAMES:
        frame["value_per_conversion_28d"] = rng.uniform(1, 50, rows)
    return frame


def clicks_model(width: int = WIDTH, activation: str = "exponential", seed: int = 1):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((width,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    head = keras.layers.Dense(1, activation=activation, kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))
    return keras.Model(inputs, head(hidden))


def two_head_model():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((WIDTH,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(
        inputs,
        {
            "clicks": keras.layers.Dense(1, activation="softplus")(hidden),
            "conversions": keras.layers.Dense(1, activation="relu")(hidden),
        },
    )


def saved(network, tmp_path, name: str = "model.keras"):
    path = tmp_path / name
    network.save(path)
    return path


def test_clicks_only_model_predicts_non_negative_clicks_and_null_conversions(tmp_path):
    features = feature_frame()
    model = load_user_keras(saved(clicks_model(), tmp_path), TRAINED_THROUGH, sample_features=features)
    assert isinstance(model, ServableModel)
    assert model.outputs == ("clicks",) and model.source_name == "model.keras"
    predicted = model.predict(features)
    assert list(predicted.columns) == ["expected_clicks", "expected_conversions", "expected_value"]
    assert predicted.index.equals(features.index)
    assert (predicted["expected_clicks"] >= 0).all() and predicted["expected_clicks"].notna().all()
    assert predicted["expected_conversions"].isna().all() and predicted["expected_value"].isna().all()
    assert model.version.startswith("keras-20240331-") and len(model.version.rsplit("-", 1)[1]) == 8
    entry = model.registry_entry()
    assert entry["scaler_version"] == "" and entry["version"] == model.version
    # Fed raw float32 columns in FEATURE_NAMES order, nulls as 0: the network's own output on that matrix.
    matrix = features[list(FEATURE_NAMES)].fillna(0).to_numpy("float32")
    direct = keras.ops.convert_to_numpy(model.network(matrix)).reshape(-1)
    np.testing.assert_allclose(predicted["expected_clicks"].to_numpy(), direct, rtol=1e-5)
    assert len(model.predict(features.iloc[:0])) == 0


def test_two_head_model_predicts_conversions_and_value(tmp_path):
    features = feature_frame()
    model = load_user_keras(saved(two_head_model(), tmp_path), TRAINED_THROUGH, sample_features=features)
    assert model.outputs == ("clicks", "conversions")
    predicted = model.predict(features)
    assert predicted["expected_conversions"].notna().all() and (predicted["expected_conversions"] >= 0).all()
    np.testing.assert_allclose(
        predicted["expected_value"], predicted["expected_conversions"] * features["value_per_conversion_28d"]
    )


def test_named_feature_inputs_are_fed_their_columns(tmp_path):
    names = ["clicks_mean_7d", "ctr_28d", "history_days"]
    inputs = {name: keras.Input((1,) if i else (), name=name) for i, name in enumerate(names)}
    columns = [keras.layers.Reshape((1,))(inputs[names[0]]), inputs[names[1]], inputs[names[2]]]
    joined = keras.layers.Concatenate()(columns)
    network = keras.Model(inputs, {"clicks": keras.layers.Dense(1, activation="exponential")(joined)})
    features = feature_frame()
    model = load_user_keras(saved(network, tmp_path), TRAINED_THROUGH, sample_features=features)
    assert set(model.feature_names) == set(names) and set(model.feature_versions) == set(names)
    columns = {name: features[name].fillna(0).to_numpy("float32") for name in names}
    fed = {name: column if i == 0 else column[:, None] for i, (name, column) in enumerate(columns.items())}
    expected = keras.ops.convert_to_numpy(network(fed)["clicks"]).reshape(-1)
    np.testing.assert_allclose(model.predict(features)["expected_clicks"], expected, rtol=1e-5)


def test_bytes_round_trip_predicts_identically_and_keeps_the_version(tmp_path):
    features = feature_frame()
    model = load_user_keras(saved(two_head_model(), tmp_path), TRAINED_THROUGH)
    model.validation_metrics = {"clicks_poisson_deviance": 0.5}
    restored = UserKerasModel.from_bytes(model.to_bytes())
    assert restored.version == model.version
    assert (restored.trained_through, restored.source_name, restored.outputs) == (
        model.trained_through,
        model.source_name,
        model.outputs,
    )
    assert restored.validation_metrics == model.validation_metrics
    assert restored.feature_versions == model.feature_versions
    pd.testing.assert_frame_equal(restored.predict(features), model.predict(features))


def test_the_version_changes_with_the_weights(tmp_path):
    network = clicks_model()
    before = load_user_keras(saved(network, tmp_path, "a.keras"), TRAINED_THROUGH).version
    weights = network.get_weights()
    network.set_weights([w + 0.01 for w in weights])
    after = load_user_keras(saved(network, tmp_path, "b.keras"), TRAINED_THROUGH).version
    assert before != after
    network.set_weights(weights)
    assert load_user_keras(saved(network, tmp_path, "c.keras"), TRAINED_THROUGH).version == before


def test_a_wrong_input_width_is_rejected_naming_file_and_width(tmp_path):
    with pytest.raises(ValueError) as error:
        load_user_keras(saved(clicks_model(width=WIDTH - 3), tmp_path, "narrow.keras"), TRAINED_THROUGH)
    message = str(error.value)
    assert "narrow.keras" in message and str(WIDTH - 3) in message and str(WIDTH) in message
    assert FEATURE_NAMES[0] in message and "features list" in message


def test_a_model_without_a_clicks_output_is_rejected(tmp_path):
    inputs = keras.Input((WIDTH,))
    network = keras.Model(inputs, {"sales": keras.layers.Dense(1, activation="relu")(inputs)})
    with pytest.raises(ValueError, match=r"headless\.keras.*'clicks'"):
        load_user_keras(saved(network, tmp_path, "headless.keras"), TRAINED_THROUGH)


def test_negative_outputs_on_the_sample_are_rejected(tmp_path):
    inputs = keras.Input((WIDTH,))
    linear = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(-5.0))
    network = keras.Model(inputs, linear(inputs))
    features = feature_frame()
    features.loc[:, list(FEATURE_NAMES)] = 0.0
    features.loc[100:103, list(FEATURE_NAMES)] = 1.0  # sum - 5 > 0 on the first four rows; -5 from row 104 on
    path = saved(network, tmp_path, "negative.keras")
    with pytest.raises(ValueError) as error:
        load_user_keras(path, TRAINED_THROUGH, sample_features=features)
    message = str(error.value)
    assert "negative.keras" in message and "'clicks'" in message and "negative" in message and "104" in message
    load_user_keras(path, TRAINED_THROUGH)  # without a sample, only the structure is checked


def test_a_missing_or_foreign_file_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere\.keras.*no such file"):
        load_user_keras(tmp_path / "nowhere.keras", TRAINED_THROUGH)
    foreign = tmp_path / "notes.keras"
    foreign.write_text("not a model")
    with pytest.raises(ValueError, match=r"notes\.keras.*not a Keras model file"):
        load_user_keras(foreign, TRAINED_THROUGH)
