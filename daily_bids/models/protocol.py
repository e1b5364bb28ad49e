"""What every model kind offers the gate, the scoring engines, the store and MLflow.

Imports nothing from the project, so that any module may depend on the protocol without depending on a model."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class ServableModel(Protocol):
    """What the gate, the scoring engines, the store and MLflow need of a model."""

    kind: ClassVar[str]  # its key in daily_bids.models.kinds.MODEL_KINDS, and the MLflow run's `model_kind` tag
    # Largest relative difference the engines' parity check allows (daily_bids.serving.scoring).
    parity_tolerance: ClassVar[float]
    trained_through: dt.date  # the last outcome day it learned from
    feature_versions: dict[str, str]
    validation_metrics: dict[str, float]

    @property
    def version(self) -> str: ...

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """expected_clicks, expected_conversions and expected_value per feature row (null where not modelled)."""

    def registry_entry(self) -> dict: ...

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> ServableModel: ...
