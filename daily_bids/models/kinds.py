"""The one map from a model kind's name (in bundles, pointers and MLflow tags) to its class.

The model modules import TensorFlow and Keras lazily themselves, so importing every kind here stays cheap."""

from __future__ import annotations

from daily_bids.models.blend_model import BlendModel
from daily_bids.models.deep_model import DeepKeywordModel
from daily_bids.models.naive_model import NaiveModel
from daily_bids.models.protocol import ServableModel
from daily_bids.models.user_keras_model import UserKerasModel
from daily_bids.models.xgboost_model import KeywordModel

MODEL_KINDS: dict[str, type[ServableModel]] = {
    kind.kind: kind for kind in (KeywordModel, DeepKeywordModel, NaiveModel, BlendModel, UserKerasModel)
}


def model_from_bundle(kind: str, data: bytes) -> ServableModel:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: the kinds are {sorted(MODEL_KINDS)}")
    if kind == BlendModel.kind:  # a blend's bundle holds its components' bundles, each read back by its own kind
        return BlendModel.from_bytes(data, load_component=model_from_bundle)
    return MODEL_KINDS[kind].from_bytes(data)
