"""Bring your own Keras model: a network a data scientist trained in a notebook, registered as a challenger.

The platform validates the network's inputs and outputs when it is registered, stores it like any model, and the
gate judges it like any candidate: it serves only if it beats the naive floor, the champion, the calibration and
the clusters by the same rules.

A notebook, with `features` a frame of the feature table and `next_day_clicks` the clicks of each row's next day:

    import keras
    from daily_bids.features.keyword_features import FEATURE_NAMES

    x = features[list(FEATURE_NAMES)].fillna(0).to_numpy("float32")     # the columns as stored, in this order
    inputs = keras.Input((len(FEATURE_NAMES),))
    hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Normalization()(inputs))
    model = keras.Model(inputs, {"clicks": keras.layers.Dense(1, activation="exponential", name="clicks")(hidden)})
    model.layers[1].adapt(x)                                             # the model does its own scaling
    model.compile("adam", loss={"clicks": "poisson"})
    model.fit(x, {"clicks": next_day_clicks}, epochs=5)
    model.save("model.keras")

then `python -m daily_bids models register-keras model.keras --trained-through YYYY-MM-DD` (the last outcome day it
trained on: the gate holds out only later days).

Input contract. The network is given the platform's feature columns as the feature table stores them (counts
log1p'd as the catalog says; no platform scaling: the model does its own), as float32, NaN replaced by 0, either

- as ONE input of shape (None, len(FEATURE_NAMES)), the columns in `FEATURE_NAMES` order
  (`python -m daily_bids features list` lists them), or
- as named inputs, each named exactly after a feature column and of shape (None,) or (None, 1): the network may
  then read any subset of the columns, in any order.

Output contract. Either a single output, the expected next-day clicks, of shape (None,) or (None, 1); or named
outputs (a dict, or a list of outputs whose layers are named) holding "clicks" and optionally "conversions", each of
shape (None,) or (None, 1); other outputs are ignored. Every prediction must be finite and non-negative: `predict`
raises otherwise. Expected conversion value is expected conversions × the keyword's `value_per_conversion_28d`, and
null (like conversions) for a clicks-only model.

Only built-in Keras layers load: a .keras file is loaded in Keras' safe mode (no Lambda layers, whose code would run
here) and without the notebook's custom classes.

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
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from daily_bids.features.keyword_features import FEATURE_NAMES, feature_versions
from daily_bids.models.deep_model import count_head_predictions
from daily_bids.models.xgboost_model import PREDICTION_COLUMNS

SCORING_BATCH = 65_536
HEADS = ("clicks", "conversions")
_SHOWN_FEATURES = 5  # feature names an error message quotes before "…"


@dataclass(frozen=True)
class NetworkContract:
    """How the platform feeds a network and reads its heads, read from the network's structure."""

    named_inputs: bool  # True: one input per feature column; False: one (None, width) matrix
    input_keys: tuple[str, ...]  # the named inputs' keys (feature names), or () for the matrix
    input_ranks: tuple[int, ...]  # per named input: 1 for (None,), 2 for (None, 1)
    width: int  # columns the network reads
    heads: dict  # head -> its output's key: a dict key, a list position, or 0 for a single output


class ContractError(ValueError):
    """The network does not fit the input or output contract (the message says what is wrong)."""


@dataclass
class UserKerasModel:
    kind: ClassVar[str] = "keras"  # its name in daily_bids.models.kinds.MODEL_KINDS
    # Largest relative difference the engines' parity check allows (daily_bids.serving.scoring): float32 products round
    # differently with the batch's shape.
    parity_tolerance: ClassVar[float] = 1e-4
    network: object  # keras.Model
    trained_through: dt.date  # the last outcome day the user trained on, as given at registration
    source_name: str  # the file it was registered from
    feature_names: tuple[str, ...] = FEATURE_NAMES  # the columns the network reads (in order, for a single input)
    feature_versions: dict[str, str] = field(default_factory=feature_versions)
    validation_metrics: dict[str, float] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("clicks",)  # the heads it predicts: ("clicks",) or ("clicks", "conversions")
    _scorer: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.feature_names, self.outputs = tuple(self.feature_names), tuple(self.outputs)
        if self.outputs not in (("clicks",), HEADS):
            raise ValueError(f"a Keras model predicts ('clicks',) or {HEADS}, not {self.outputs}")
        contract = self.contract
        missing = [head for head in self.outputs if head not in contract.heads]
        if missing:
            raise ContractError(f"the network has no {missing[0]!r} output")
        if contract.named_inputs:
            if set(self.feature_names) != set(contract.input_keys):
                raise ContractError(
                    f"the network's inputs {list(contract.input_keys)} are not its feature_names "
                    f"{list(self.feature_names)}"
                )
        elif len(self.feature_names) != contract.width:
            raise ContractError(
                f"the network's input has width {contract.width}, not the "
                f"{len(self.feature_names)} of its feature_names"
            )

    @cached_property
    def contract(self) -> NetworkContract:
        return network_contract(self.network)

    @cached_property  # a hash of every weight: computed once, not for every scored batch
    def version(self) -> str:
        digest = hashlib.sha256()
        for weights in self.network.get_weights():
            digest.update(np.ascontiguousarray(weights).tobytes())
        return f"keras-{self.trained_through:%Y%m%d}-{digest.hexdigest()[:8]}"

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Expected next-day clicks, conversions and value, scored in large batches through one compiled function
        (no per-call `model.predict` overhead). Raises ValueError when an output is not one finite, non-negative
        value per row."""
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise ValueError(
                f"the features lack {len(missing)} column(s) the Keras model reads: {missing[:_SHOWN_FEATURES]}"
            )
        values = features.loc[:, list(self.feature_names)].to_numpy(dtype="float32")
        if not values.flags.writeable:  # a view of pandas' own block (copy-on-write): not ours to write
            values = values.copy()
        np.copyto(values, 0.0, where=np.isnan(values))
        outputs = {head: [] for head in self.outputs}
        for start in range(0, len(features), SCORING_BATCH):
            for head, result in self._score(values[start : start + SCORING_BATCH]).items():
                outputs[head].append(result)
        predicted = count_head_predictions(outputs, self.outputs, features)
        for head in self.outputs:
            _check_output(head, predicted[PREDICTION_COLUMNS[head]].to_numpy(), features.index)
        return predicted

    def _score(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Each head's values (flattened) for one batch of the feature block."""
        tf = _tensorflow()
        contract = self.contract
        if contract.named_inputs:
            position = {name: i for i, name in enumerate(self.feature_names)}
            columns = {key: batch[:, position[key]] for key in contract.input_keys}
            inputs = {
                key: tf.constant(columns[key] if rank == 1 else columns[key][:, None])
                for key, rank in zip(contract.input_keys, contract.input_ranks)
            }
        else:
            inputs = tf.constant(batch)
        if self._scorer is None:
            # Not XLA-compiled: a user's network may hold ops XLA cannot compile, and it is judged, not served at
            # the 10M scale.
            self._scorer = self._compile()
        result = self._scorer(inputs)
        return {head: values.numpy() for head, values in result.items()}

    def _compile(self):
        tf = _tensorflow()
        contract, network = self.contract, self.network
        heads = {head: contract.heads[head] for head in self.outputs}
        if contract.named_inputs:
            signature = {
                key: tf.TensorSpec((None,) if rank == 1 else (None, 1), tf.float32)
                for key, rank in zip(contract.input_keys, contract.input_ranks)
            }
        else:
            signature = tf.TensorSpec((None, contract.width), tf.float32)

        def score(inputs):
            result = network(inputs, training=False)
            return {
                head: tf.reshape(result if not isinstance(result, (dict, list, tuple)) else result[key], [-1])
                for head, key in heads.items()
            }

        # One trace for every batch length (the last batch is shorter).
        return tf.function(score, input_signature=[signature])

    def registry_entry(self) -> dict:
        return {
            "version": self.version,
            "trained_through": self.trained_through.isoformat(),
            "scaler_version": "",  # the user's network does its own scaling
            "feature_versions": json.dumps(self.feature_versions),
        }

    def to_bytes(self) -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "network.keras")
            self.network.save(path)
            network = Path(path).read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("network.keras", network)
            bundle.writestr(
                "model.json",
                json.dumps(
                    {
                        "trained_through": self.trained_through.isoformat(),
                        "source_name": self.source_name,
                        "feature_names": list(self.feature_names),
                        "feature_versions": self.feature_versions,
                        "validation_metrics": self.validation_metrics,
                        "outputs": list(self.outputs),
                    },
                    indent=2,
                ),
            )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> UserKerasModel:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle, tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "network.keras")
            Path(path).write_bytes(bundle.read("network.keras"))
            network = _load_network(path)
            meta = json.loads(bundle.read("model.json"))
        return cls(
            network=network,
            trained_through=dt.date.fromisoformat(meta["trained_through"]),
            source_name=meta["source_name"],
            feature_names=tuple(meta["feature_names"]),
            feature_versions=meta["feature_versions"],
            validation_metrics=meta["validation_metrics"],
            outputs=tuple(meta["outputs"]),
        )


def load_user_keras(
    path: str | os.PathLike, trained_through: dt.date, sample_features: pd.DataFrame | None = None
) -> UserKerasModel:
    """The user's .keras file as a model the gate can judge, once its inputs and outputs fit the contract (see the
    module's docstring). Raises ValueError naming the file and what is wrong. With `sample_features` (feature rows,
    e.g. a recent day's), also runs the network on them and rejects outputs that are not one finite, non-negative
    value per row."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (save the model with `model.save('model.keras')`)")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a Keras model file: save it with `model.save('model.keras')` (the Keras 3 .keras format)"
        )
    try:
        network = _load_network(str(path))
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise ValueError(
            f"{path}: Keras could not load it ({type(error).__name__}: {error}); only built-in layers "
            "load here: no Lambda layers, custom layers, activations or losses"
        ) from error
    try:
        contract = network_contract(network)
    except ContractError as error:
        raise ValueError(f"{path}: {error}") from None
    feature_names = contract.input_keys if contract.named_inputs else FEATURE_NAMES
    if not contract.named_inputs and contract.width != len(FEATURE_NAMES):
        raise ValueError(
            f"{path}: the model's input has width {contract.width}, but the platform gives it "
            f"{len(FEATURE_NAMES)} feature columns, in this order: {', '.join(FEATURE_NAMES[:_SHOWN_FEATURES])}, … "
            "(`python -m daily_bids features list` lists them); build it on "
            f"`keras.Input(({len(FEATURE_NAMES)},))` fed `features[list(FEATURE_NAMES)]`"
        )
    versions = feature_versions()
    model = UserKerasModel(
        network=network,
        trained_through=trained_through,
        source_name=path.name,
        feature_names=feature_names,
        feature_versions={name: versions[name] for name in feature_names},
        outputs=tuple(head for head in HEADS if head in contract.heads),
    )
    if sample_features is not None:
        try:
            model.predict(sample_features)
        except (ValueError, _tensorflow().errors.OpError) as error:  # TensorFlow's own errors: the file's too
            raise ValueError(f"{path}: on the sample features, {error}") from error
    return model


def network_contract(network) -> NetworkContract:
    """How to feed `network` and read its heads; ContractError when it does not fit the contract."""
    heads = _heads(network)
    try:
        inputs = list(network.inputs)
    except (AttributeError, ValueError):
        raise ContractError(
            "the model has no defined input: build it on `keras.Input((N,))` (or call it on data) before saving it"
        ) from None
    if not inputs:
        raise ContractError("the model has no input")
    try:
        structure = network.input
    except (AttributeError, ValueError):
        structure = None
    keys = list(structure) if isinstance(structure, dict) else [tensor.name for tensor in inputs]
    shapes = [tuple(tensor.shape) for tensor in inputs]
    if isinstance(structure, dict):
        shapes = [tuple(structure[key].shape) for key in keys]
    named = len(inputs) > 1 or (keys[0] in FEATURE_NAMES and _column_rank(shapes[0]) is not None)
    if not named:
        shape = shapes[0]
        if len(shape) != 2 or shape[1] is None:
            raise ContractError(
                f"the model's input has shape {_shape_text(shape)}: it must be (None, "
                f"{len(FEATURE_NAMES)}), one row of the {len(FEATURE_NAMES)} feature columns per "
                "keyword, or one input per feature column, named after it"
            )
        return NetworkContract(False, (), (), int(shape[1]), heads)
    unknown = [key for key in keys if key not in FEATURE_NAMES]
    if unknown:
        raise ContractError(
            f"the model's inputs {unknown[:_SHOWN_FEATURES]} are not feature columns: named inputs "
            "must be named exactly after feature columns (`python -m daily_bids features list` "
            f"lists them: {', '.join(FEATURE_NAMES[:_SHOWN_FEATURES])}, …)"
        )
    ranks = []
    for key, shape in zip(keys, shapes):
        rank = _column_rank(shape)
        if rank is None:
            raise ContractError(
                f"the model's input {key!r} has shape {_shape_text(shape)}: a feature column's input "
                "must be (None,) or (None, 1)"
            )
        ranks.append(rank)
    return NetworkContract(True, tuple(keys), tuple(ranks), len(keys), heads)


def _heads(network) -> dict:
    """Head -> its output's key: a dict key, a list position, or 0 for a single output."""
    try:
        structure = network.output
    except (AttributeError, ValueError):
        try:
            structure = list(network.outputs)
        except (AttributeError, ValueError):
            raise ContractError(
                "the model has no defined output: build it on `keras.Input((N,))` before saving it"
            ) from None
    if isinstance(structure, (list, tuple)) and len(structure) == 1:
        structure = structure[0]
    if isinstance(structure, dict):  # named outputs: by their keys
        keyed = {name: (name, tensor) for name, tensor in structure.items()}
    elif isinstance(structure, (list, tuple)):  # a list of outputs: by their layers' names
        names = list(getattr(network, "output_names", None) or [])
        if len(names) != len(structure):
            names = [tensor.name for tensor in structure]
        keyed = {name: (position, tensor) for position, (name, tensor) in enumerate(zip(names, structure))}
    else:  # one output: clicks
        keyed = {"clicks": (0, structure)}
    if "clicks" not in keyed:
        raise ContractError(
            f"the model has no 'clicks' output (its outputs are {sorted(map(str, keyed))}): return a "
            "dict {'clicks': ..., 'conversions': ...}, name the clicks output's layer 'clicks', or "
            "give a single output (clicks)"
        )
    heads = {}
    for head in HEADS:
        if head in keyed:
            key, tensor = keyed[head]
            _check_output_shape(head, tensor)
            heads[head] = key
    return heads


def _check_output_shape(head: str, tensor) -> None:
    shape = tuple(tensor.shape)
    if _column_rank(shape) is None:
        raise ContractError(
            f"the model's {head!r} output has shape {_shape_text(shape)}: it must be (None,) or "
            "(None, 1), one value per keyword"
        )


def _column_rank(shape: tuple) -> int | None:
    """1 for (batch,), 2 for (batch, 1), None for any other shape."""
    if len(shape) == 1:
        return 1
    if len(shape) == 2 and shape[1] == 1:
        return 2
    return None


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("None" if size is None else str(size) for size in shape) + (",)" if len(shape) == 1 else ")")


def _check_output(head: str, values: np.ndarray, index: pd.Index) -> None:
    if len(values) != len(index):
        raise ValueError(
            f"the model's {head!r} output has {len(values)} values for {len(index)} feature rows: it "
            "must give one value per row"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(f"the model's {head!r} output is not finite ({values[first]}) at row index {index[first]!r}")
    bad = values < 0
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"the model's {head!r} output is negative ({values[first]:.6g}) at row index "
            f"{index[first]!r}: expected counts must be non-negative (e.g. an exponential or softplus "
            "output)"
        )


def _load_network(path: str):
    _tensorflow()
    import keras

    # compile=False: the platform only scores, and the user's loss or optimizer need not load here.
    return keras.models.load_model(path, compile=False, safe_mode=True)


def _tensorflow():
    """TensorFlow, imported on first use (its start-up notices are silenced in `daily_bids/__init__.py`)."""
    import tensorflow as tf

    return tf
