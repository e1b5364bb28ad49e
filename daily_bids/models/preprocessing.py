"""Feature scaling fitted on a training window: a versioned artifact that training and scoring both load.

Counts in the feature table are already log1p-scaled (a fixed transform). This scaler then standardizes (or min-max
scales) every feature with statistics of the training window only, so scoring never sees statistics from days the
model did not train on. Nulls stay null (XGBoost and the deep model handle them).

The scaler also remembers each feature's range in the training window. A network extrapolates linearly (and then
exponentially, through a Poisson head) beyond what it saw, so the deep model clips its inputs to that range; trees
split inside it anyway, so clipping changes nothing for XGBoost.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

METHODS = ("standard", "minmax")


@dataclass(frozen=True)
class FeatureScaler:
    method: str
    columns: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    fitted_on: str  # the window of days the statistics come from, e.g. "2025-01-01...2025-02-25"
    # Each feature's smallest and largest scaled value in the training window (empty for scalers saved before).
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns, method: str, fitted_on: str) -> FeatureScaler:
        if method not in METHODS:
            raise ValueError(f"scaling method {method!r} is not one of {METHODS}")
        values = frame.loc[:, list(columns)].to_numpy(dtype="float64")
        # All-null columns (metrics a source does not report) are expected: NumPy's "empty slice" warnings are noise.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if method == "standard":
                center, scale = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
            else:
                center = np.nanmin(values, axis=0)
                scale = np.nanmax(values, axis=0) - center
        # A constant (or all-null) column is left unscaled rather than divided by zero.
        center = np.where(np.isfinite(center), center, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scaled = (values - center) / scale
            lower, upper = np.nanmin(scaled, axis=0), np.nanmax(scaled, axis=0)
        lower, upper = np.where(np.isfinite(lower), lower, 0.0), np.where(np.isfinite(upper), upper, 0.0)
        return cls(
            method,
            tuple(columns),
            tuple(map(float, center)),
            tuple(map(float, scale)),
            fitted_on,
            tuple(map(float, lower)),
            tuple(map(float, upper)),
        )

    def transform(self, frame: pd.DataFrame, clip_to_fitted_range: bool = False) -> np.ndarray:
        """Scaled features as float32; with `clip_to_fitted_range`, each clipped to its training window's range."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"feature table lacks columns the scaler was fitted on: {missing}")
        # One column at a time into a row-major float32 matrix, the layout tree models read fastest: no float64
        # copy of the whole block. Each value is still scaled in float64 and rounded once, as it was in training.
        scaled = np.empty((len(frame), len(self.columns)), dtype="float32")
        clip = clip_to_fitted_range and bool(self.lower)
        for position, column in enumerate(self.columns):
            values = frame[column].to_numpy(dtype="float64", na_value=np.nan)
            values = (values - self.center[position]) / self.scale[position]
            if clip:
                values = np.clip(values, self.lower[position], self.upper[position])  # NaN stays NaN
            scaled[:, position] = values
        return scaled

    def to_json(self) -> str:
        return json.dumps(
            {
                "method": self.method,
                "columns": list(self.columns),
                "center": list(self.center),
                "scale": list(self.scale),
                "fitted_on": self.fitted_on,
                "lower": list(self.lower),
                "upper": list(self.upper),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureScaler:
        data = json.loads(text)
        return cls(
            data["method"],
            tuple(data["columns"]),
            tuple(data["center"]),
            tuple(data["scale"]),
            data["fitted_on"],
            tuple(data.get("lower", ())),
            tuple(data.get("upper", ())),
        )

    @property
    def version(self) -> str:
        return f"scaler-{hashlib.sha256(self.to_json().encode()).hexdigest()[:10]}"
