"""The deep model: a wide & deep Keras network with count heads for next-day clicks and conversions.

Embeddings of the keyword (hashed), ad group (hashed), match type, cluster and day of week join the scaled numeric
features in an MLP; the wide part is a linear term on the numeric features. Each head outputs a Poisson rate
(exponential activation) and trains on Poisson loss; the conversion head is masked where conversions are not
reported. Conversion value is expected conversions × the keyword's smoothed value per conversion.

Training and serving prepare the network's inputs through one `NetworkInputs`, built once per model: hashing and
cluster ids cannot drift between them. It hashes each distinct ad group once (not each row) and scales in float32.

TensorFlow is imported inside the functions that use it: it takes seconds, and Definitions must load fast.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from daily_bids.features.keyword_features import FEATURE_NAMES, feature_versions
from daily_bids.models.clustering import KeywordClusters
from daily_bids.models.preprocessing import FeatureScaler
from daily_bids.models.xgboost_model import PREDICTION_COLUMNS, regression_metrics
from daily_bids.schema import MATCH_TYPES, as_day

SCORING_BATCH = 65_536
AD_GROUP_BUCKETS = 4_096
HEADS = ("clicks", "conversions")
# Embeddings of who a row is (not of what it is, like its match type or weekday): a keyword the model never saw
# has no trained vector in them. UNKNOWN_IDENTITY_SHARE of the training rows see them as unknown (see build_network).
IDENTITY_EMBEDDINGS = ("keyword", "ad_group", "cluster")
UNKNOWN_IDENTITY_SHARE = 0.1


class DeepParameters(BaseModel):
    """Architecture and training. Also the `deep_model` asset's run configuration."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)  # inf and nan are never a setting

    training_days: int = Field(56, ge=14, description="Days of features (with next-day targets) to train on.")
    epochs: int = Field(25, ge=1, description="Upper bound on epochs; early stopping picks the best.")
    patience: int = Field(3, ge=1, description="Epochs without validation improvement before stopping.")
    batch_size: int = Field(2048, ge=32)
    learning_rate: float = Field(0.003, gt=0)
    keyword_buckets: int = Field(20_000, ge=16, description="Hash buckets of the keyword embedding.")
    hidden_units: list[int] = Field([64, 32], description="Widths of the MLP layers.")
    validation_days: int = Field(7, ge=1)
    seed: int = Field(0, description="Seeds TensorFlow, NumPy and Python; ops run deterministically.")
    scaling: Literal["standard", "minmax"] = "standard"


@dataclass
class DeepKeywordModel:
    kind: ClassVar[str] = "deep"  # its name in daily_bids.models.kinds.MODEL_KINDS
    # Largest relative difference the engines' parity check allows (daily_bids.serving.scoring): float32 products round
    # differently with the batch's shape.
    parity_tolerance: ClassVar[float] = 1e-4
    network: object  # keras.Model
    trained_through: dt.date
    parameters: dict
    scaler: FeatureScaler
    clusters: pd.DataFrame  # keyword_id, cluster
    feature_names: tuple[str, ...] = FEATURE_NAMES
    feature_versions: dict[str, str] = field(default_factory=feature_versions)
    validation_metrics: dict[str, float] = field(default_factory=dict)
    trained_heads: tuple[str, ...] = HEADS  # a head whose target the reports never carry predicts null
    _scorer: object = None

    @cached_property  # a hash of every tree or weight: computed once, not for every scored batch
    def version(self) -> str:
        digest = hashlib.sha256(self.scaler.to_json().encode())
        for weights in self.network.get_weights():
            digest.update(np.ascontiguousarray(weights).tobytes())
        return f"deep-{self.trained_through:%Y%m%d}-{digest.hexdigest()[:8]}"

    @cached_property  # the scaler's constants and the cluster table as arrays: built once, not for every batch
    def network_inputs(self) -> NetworkInputs:
        return NetworkInputs(self.scaler, self.clusters, self.parameters["keyword_buckets"])

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Expected next-day clicks, conversions and value, scored in large batches through one compiled function
        (no per-call `model.predict` overhead)."""
        tf = _tensorflow()
        if self._scorer is None:
            self._scorer = tf.function(lambda inputs: self.network(inputs, training=False), jit_compile=True)
        inputs = self.network_inputs(features)
        outputs = {head: [] for head in HEADS}
        for start in range(0, len(features), SCORING_BATCH):
            batch = {name: tf.constant(values[start : start + SCORING_BATCH]) for name, values in inputs.items()}
            result = self._scorer(batch)
            for head in HEADS:
                outputs[head].append(np.asarray(result[head]).reshape(-1))
        return count_head_predictions(outputs, self.trained_heads, features)

    def registry_entry(self) -> dict:
        return {
            "version": self.version,
            "trained_through": self.trained_through.isoformat(),
            "scaler_version": self.scaler.version,
            "feature_versions": json.dumps(self.feature_versions),
        }

    def to_bytes(self) -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "network.keras")
            self.network.save(path)
            network = open(path, "rb").read()
        clusters = io.BytesIO()
        self.clusters.to_parquet(clusters, index=False)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("network.keras", network)
            bundle.writestr("scaler.json", self.scaler.to_json())
            bundle.writestr("clusters.parquet", clusters.getvalue())
            bundle.writestr(
                "model.json",
                json.dumps(
                    {
                        "trained_through": self.trained_through.isoformat(),
                        "parameters": self.parameters,
                        "feature_names": list(self.feature_names),
                        "feature_versions": self.feature_versions,
                        "validation_metrics": self.validation_metrics,
                        "trained_heads": list(self.trained_heads),
                    },
                    indent=2,
                ),
            )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DeepKeywordModel:
        _tensorflow()
        import keras

        with zipfile.ZipFile(io.BytesIO(data)) as bundle, tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "network.keras")
            with open(path, "wb") as sink:
                sink.write(bundle.read("network.keras"))
            network = keras.models.load_model(path)
            meta = json.loads(bundle.read("model.json"))
            return cls(
                network=network,
                trained_through=dt.date.fromisoformat(meta["trained_through"]),
                parameters=meta["parameters"],
                scaler=FeatureScaler.from_json(bundle.read("scaler.json").decode()),
                clusters=pd.read_parquet(io.BytesIO(bundle.read("clusters.parquet"))),
                feature_names=tuple(meta["feature_names"]),
                feature_versions=meta["feature_versions"],
                validation_metrics=meta["validation_metrics"],
                trained_heads=tuple(meta.get("trained_heads", HEADS)),
            )


def count_head_predictions(
    outputs: dict[str, list[np.ndarray]], modelled: tuple[str, ...], features: pd.DataFrame
) -> pd.DataFrame:
    """The prediction columns from a network's count heads (each head's batches of rates): a head not `modelled`
    is null, and conversion value is expected conversions × the keyword's smoothed value per conversion."""
    expected = {
        head: np.concatenate(outputs[head]).astype("float64") if outputs.get(head) else np.zeros(0) for head in modelled
    }
    for head in set(HEADS) - set(modelled):
        expected[head] = np.full(len(features), np.nan)
    value_per_conversion = features["value_per_conversion_28d"].to_numpy(dtype="float64")
    return pd.DataFrame(
        {
            PREDICTION_COLUMNS["clicks"]: expected["clicks"],
            PREDICTION_COLUMNS["conversions"]: expected["conversions"],
            PREDICTION_COLUMNS["conversion_value"]: expected["conversions"] * value_per_conversion,
        },
        index=features.index,
    )


def _tensorflow():
    """TensorFlow, imported on first use (its start-up notices are silenced in `daily_bids/__init__.py`)."""
    import tensorflow as tf

    return tf


class NetworkInputs:
    """The network's named input arrays for feature rows: the one preparation that training and serving share.

    Built once per model (the scaler's constants as column vectors, the cluster table as sorted arrays), called on
    every batch. Its ids are those the embeddings were trained on: a null or unknown match type and a keyword
    without a cluster are 0, ad groups hash as `pd.util.hash_array` hashes their text (nulls included)."""

    def __init__(self, scaler: FeatureScaler, clusters: pd.DataFrame, keyword_buckets: int):
        self.columns = list(scaler.columns)
        # Column vectors: the scaling works on the transposed feature block, one contiguous row per feature.
        self.center = np.asarray(scaler.center, dtype="float64")[:, None]
        self.scale = np.asarray(scaler.scale, dtype="float32")[:, None]
        self.clip = (
            None
            if not scaler.lower
            else (
                np.asarray(scaler.lower, dtype="float32")[:, None],
                np.asarray(scaler.upper, dtype="float32")[:, None],
            )
        )
        keyword_ids = clusters["keyword_id"].to_numpy(dtype="int64")
        order = np.argsort(keyword_ids, kind="stable")
        self.clustered_keyword_ids = keyword_ids[order]
        if (np.diff(self.clustered_keyword_ids) == 0).any():
            raise ValueError("the cluster table assigns a keyword more than once")
        # 0 is the unknown cluster: a keyword not in the table, or one whose cluster is null.
        self.cluster_ids = (clusters["cluster"].fillna(-1).to_numpy(dtype="int64")[order] + 1).astype("int32")
        self.keyword_buckets = keyword_buckets

    def __call__(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        keyword_ids = features["keyword_id"].to_numpy(dtype="int64")
        return {
            "numeric": self.numeric(features),
            "keyword": (keyword_ids % self.keyword_buckets).astype("int32"),
            "ad_group": self.ad_group(features["ad_group"]),
            "match_type": self.match_type(features["match_type"]),
            "cluster": self.cluster(keyword_ids),
            "day_of_week": features["target_day_of_week"].to_numpy(dtype="int32"),
        }

    def numeric(self, features: pd.DataFrame) -> np.ndarray:
        """`scaler.transform(clip_to_fitted_range=True)` with nulls as 0, within two float32 roundings of it:
        the network reads float32, and float32 arithmetic moves half the bytes. Built a column at a time, the layout
        the network reads: a frame read from Parquet holds each column apart, so a whole float64 block would be one
        more copy of every feature."""
        values = np.empty((len(features), len(self.columns)), dtype="float32")
        column = np.empty(len(features), dtype="float32")
        for position, name in enumerate(self.columns):
            # Centred in float64, written as float32: a feature near its mean keeps its precision (float32 operands
            # would cancel), at no extra pass. A value beyond float32's range becomes an infinity, then the bound.
            with np.errstate(over="ignore"):
                np.subtract(
                    features[name].to_numpy(dtype="float64", na_value=np.nan),
                    self.center[position, 0],
                    out=column,
                    casting="same_kind",
                )
                np.divide(column, self.scale[position, 0], out=column)
            if self.clip:
                # Clipped to the training window's range: the network must not extrapolate (see
                # daily_bids.models.preprocessing). NaN stays NaN; infinities become the bounds.
                np.clip(column, self.clip[0][position, 0], self.clip[1][position, 0], out=column)
                np.copyto(column, 0.0, where=np.isnan(column))  # much cheaper than nan_to_num; no infinity is left
            else:  # a scaler saved before ranges were recorded: infinities become float32's extremes, as they did
                np.nan_to_num(column, copy=False, nan=0.0)
            values[:, position] = column
        return values

    @staticmethod
    def ad_group(ad_groups: pd.Series) -> np.ndarray:
        codes, names = _distinct_strings(ad_groups)
        # pd.NA appended last: a null's code (-1) picks it, with the hash hash_array gives a null.
        buckets = pd.util.hash_array(np.append(names, pd.NA)) % AD_GROUP_BUCKETS
        return buckets.astype("int32")[codes]

    @staticmethod
    def match_type(match_types: pd.Series) -> np.ndarray:
        codes, names = _distinct_strings(match_types)
        # 0 for an unknown match type and (appended last, for code -1) for a null.
        numbers = [MATCH_TYPES.index(name) + 1 if name in MATCH_TYPES else 0 for name in names]
        return np.asarray([*numbers, 0], dtype="int32")[codes]

    def cluster(self, keyword_ids: np.ndarray) -> np.ndarray:
        if not len(self.clustered_keyword_ids):
            return np.zeros(len(keyword_ids), dtype="int32")
        at = np.minimum(np.searchsorted(self.clustered_keyword_ids, keyword_ids), len(self.clustered_keyword_ids) - 1)
        return np.where(self.clustered_keyword_ids[at] == keyword_ids, self.cluster_ids[at], 0).astype("int32")


def _distinct_strings(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(a code per row, the distinct values as an object array) of a column read as text the way
    `astype("string")` reads it, whatever its dtype or storage; a null's code is -1. Per-value work then runs once
    per distinct value; pandas factorizes Arrow-backed strings in Arrow."""
    codes, distinct = pd.factorize(column.astype("string"))
    return codes, np.asarray(distinct, dtype=object)


def model_inputs(features: pd.DataFrame, scaler: FeatureScaler, clusters: pd.DataFrame, keyword_buckets: int) -> dict:
    """Named input arrays of the network for each feature row (a `NetworkInputs` built for one call)."""
    return NetworkInputs(scaler, clusters, keyword_buckets)(features)


def build_network(n_numeric: int, n_clusters: int, parameters: DeepParameters, mean_targets: dict[str, float]):
    _tensorflow()
    import keras
    from keras import layers

    numeric = keras.Input((n_numeric,), name="numeric")
    categorical = {
        # name: (vocabulary size, embedding width)
        "keyword": (parameters.keyword_buckets, 16),
        "ad_group": (AD_GROUP_BUCKETS, 8),
        "match_type": (len(MATCH_TYPES) + 1, 2),
        "cluster": (n_clusters + 1, 4),
        "day_of_week": (7, 3),
    }
    inputs = {"numeric": numeric}
    embedded = []
    for name, (size, width) in categorical.items():
        inputs[name] = keras.Input((), dtype="int32", name=name)
        if name not in IDENTITY_EMBEDDINGS:
            embedded.append(layers.Embedding(size, width, name=f"{name}_embedding")(inputs[name]))
            continue
        # An identity the network never trained on (a new keyword's hash bucket, a new ad group, the unknown
        # cluster) keeps its initial vector: zeros, not random numbers that move its level at random. Whole
        # vectors are dropped to zero on a share of the training rows, so zero means "an unknown keyword" and
        # the network learns to predict one from its numeric features alone, at the level of the keywords it saw.
        vector = layers.Embedding(size, width, embeddings_initializer="zeros", name=f"{name}_embedding")(inputs[name])
        embedded.append(layers.Dropout(UNKNOWN_IDENTITY_SHARE, noise_shape=(None, 1), name=f"{name}_unknown")(vector))
    deep = layers.Concatenate()([numeric, *embedded])
    for units in parameters.hidden_units:
        deep = layers.Dense(units, activation="relu")(deep)
    wide_and_deep = layers.Concatenate()([deep, numeric])  # the wide part: a linear path from the numeric features
    # Each head starts at the window's mean rate (log of it, under the exponential), not at exp(0) = 1 per row:
    # training then refines a calibrated model instead of spending its first epochs finding the level.
    outputs = {
        head: layers.Dense(
            1,
            activation="exponential",
            name=head,
            bias_initializer=keras.initializers.Constant(float(np.log(max(mean_targets[head], 1e-6)))),
        )(wide_and_deep)
        for head in HEADS
    }
    network = keras.Model(inputs, outputs)
    network.compile(optimizer=keras.optimizers.Adam(parameters.learning_rate), loss={head: "poisson" for head in HEADS})
    return network


def train_deep(
    frame: pd.DataFrame,
    clusters: KeywordClusters,
    trained_through: dt.date,
    parameters: DeepParameters,
    log=print,
    epochs: int | None = None,
) -> DeepKeywordModel:
    """Fit on `frame` (from `model.training_frame`), early-stopped on the last `validation_days`.

    With `epochs` (those an early-stopped fit chose: the refit after the gate), every day is fitted for exactly
    that many epochs, and nothing is held out."""
    tf = _tensorflow()
    import keras

    keras.utils.set_random_seed(parameters.seed)
    tf.config.experimental.enable_op_determinism()
    days = np.sort(as_day(frame["date"]).unique())
    if epochs is None and len(days) <= parameters.validation_days:
        raise ValueError(f"training needs more than validation_days={parameters.validation_days} days of features")
    is_validation = (
        as_day(frame["date"]).isin(days[-parameters.validation_days :]).to_numpy()
        if epochs is None
        else np.zeros(len(frame), dtype=bool)
    )
    fit, holdout = frame.loc[~is_validation], frame.loc[is_validation]
    fit_days = as_day(fit["date"])
    scaler = FeatureScaler.fit(
        fit, FEATURE_NAMES, parameters.scaling, f"{fit_days.min().date()}...{fit_days.max().date()}"
    )
    assignments = clusters.assignments
    network_inputs = NetworkInputs(scaler, assignments, parameters.keyword_buckets)  # the one predict uses

    def arrays(part: pd.DataFrame):
        inputs = network_inputs(part)
        targets, weights = {}, {}
        for head in HEADS:
            values = part[head].to_numpy(dtype="float64")
            weights[head] = (~np.isnan(values)).astype("float32")  # unreported conversions do not train
            targets[head] = np.nan_to_num(values).astype("float32")
        return inputs, targets, weights

    fit_inputs, fit_targets, fit_weights = arrays(fit)
    holdout_inputs, holdout_targets, holdout_weights = arrays(holdout)
    mean_targets = {
        head: float(np.average(fit_targets[head], weights=fit_weights[head])) if fit_weights[head].sum() > 0 else 0.0
        for head in HEADS
    }
    network = build_network(len(FEATURE_NAMES), clusters.k, parameters, mean_targets)
    trained_heads = tuple(head for head in HEADS if fit_weights[head].sum() > 0)
    if "clicks" not in trained_heads:
        raise ValueError("no clicks to train on in the window: every report needs clicks")
    if epochs is not None:
        network.fit(
            fit_inputs,
            fit_targets,
            sample_weight=fit_weights,
            epochs=epochs,
            batch_size=parameters.batch_size,
            shuffle=True,
            verbose=0,
        )
        log(f"refit deep model: {epochs} epochs on {len(days)} days")
        return DeepKeywordModel(
            network=network,
            trained_through=trained_through,
            parameters=parameters.model_dump(),
            scaler=scaler,
            clusters=assignments,
            trained_heads=trained_heads,
            validation_metrics={"best_epoch": float(epochs)},
        )
    stopper = keras.callbacks.EarlyStopping(patience=parameters.patience, restore_best_weights=True)
    history = network.fit(
        fit_inputs,
        fit_targets,
        sample_weight=fit_weights,
        epochs=parameters.epochs,
        batch_size=parameters.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[stopper],
        validation_data=(holdout_inputs, holdout_targets, holdout_weights),
    )
    epochs = len(history.history["loss"])
    # The weights kept are those of the best validation epoch (restore_best_weights): a refit trains that many.
    best_epoch = int(np.argmin(history.history["val_loss"])) + 1
    model = DeepKeywordModel(
        network=network,
        trained_through=trained_through,
        parameters=parameters.model_dump(),
        scaler=scaler,
        clusters=assignments,
        trained_heads=trained_heads,
    )
    predicted = model.predict(holdout)
    metrics = {"epochs": float(epochs), "best_epoch": float(best_epoch)}
    for head in HEADS:
        known = holdout_weights[head] > 0
        if known.any():
            metrics |= {
                f"{head}_{name}": value
                for name, value in regression_metrics(
                    holdout_targets[head][known], predicted[PREDICTION_COLUMNS[head]].to_numpy()[known]
                ).items()
            }
    model.validation_metrics = metrics
    log(
        f"trained deep model: {epochs} epochs, validation clicks deviance {metrics.get('clicks_poisson_deviance', float('nan')):.4f}"
    )
    return model
