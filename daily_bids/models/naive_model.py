"""The naive floor as a model that can serve: each keyword's mean daily outcomes over its last 7 or 28 days.

The gate scores both floors on every holdout, and no learned model may serve unless it beats the better one. On a
young account no learned model may beat it yet; then the floor itself serves, as a stored and registered model like
any other, until a candidate beats it by the gate's rules. It learns nothing: its "training" is the day it was
judged on, and its predictions read the features of the day they are made from.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from daily_bids.features.keyword_features import FEATURES_BY_NAME
from daily_bids.models.xgboost_model import PREDICTION_COLUMNS

WINDOWS_DAYS = (7, 28)


def floor_name(window_days: int) -> str:
    return f"naive_{window_days}d"


FLOOR_NAMES: tuple[str, ...] = tuple(floor_name(days) for days in WINDOWS_DAYS)


@dataclass(frozen=True)
class NaiveModel:
    kind: ClassVar[str] = "naive"  # its name in daily_bids.models.kinds.MODEL_KINDS
    # Largest relative difference the engines' parity check allows (daily_bids.serving.scoring): trees sum exactly.
    parity_tolerance: ClassVar[float] = 1e-6
    window_days: int
    trained_through: dt.date  # the last outcome day of the window it was judged before (like the candidates)

    def __post_init__(self):
        if self.window_days not in WINDOWS_DAYS:
            raise ValueError(f"the naive floor averages {WINDOWS_DAYS} days, not {self.window_days}")

    @property
    def name(self) -> str:
        return floor_name(self.window_days)

    @property
    def version(self) -> str:
        return f"naive{self.window_days}d-{self.trained_through:%Y%m%d}"

    @property
    def feature_columns(self) -> dict[str, str]:
        """Target → the feature holding its mean over the window (log1p-scaled)."""
        return {target: f"{target}_mean_{self.window_days}d" for target in PREDICTION_COLUMNS}

    @property
    def feature_versions(self) -> dict[str, str]:
        return {column: FEATURES_BY_NAME[column].version for column in self.feature_columns.values()}

    @property
    def validation_metrics(self) -> dict[str, float]:
        return {}  # nothing is fitted, so nothing is validated: the gate's holdout is its only judge

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Expected next-day clicks, conversions and value: the window's daily means (null where not reported)."""
        return pd.DataFrame(
            {
                PREDICTION_COLUMNS[target]: np.expm1(features[column].to_numpy(dtype="float64"))
                for target, column in self.feature_columns.items()
            },
            index=features.index,
        )

    def registry_entry(self) -> dict:
        return {
            "version": self.version,
            "trained_through": self.trained_through.isoformat(),
            "scaler_version": "",
            "feature_versions": json.dumps(self.feature_versions),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "window_days": self.window_days,
                "trained_through": self.trained_through.isoformat(),
                "feature_versions": self.feature_versions,
            },
            indent=2,
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> NaiveModel:
        meta = json.loads(data)
        return cls(meta["window_days"], dt.date.fromisoformat(meta["trained_through"]))


def naive_floors(trained_through: dt.date) -> dict[str, NaiveModel]:
    """Both floors, by name (naive_7d, naive_28d)."""
    floors = [NaiveModel(days, trained_through) for days in WINDOWS_DAYS]
    return {floor.name: floor for floor in floors}
