"""The blend challenger: a weighted mean of the XGBoost and deep candidates' predictions.

Boosted trees and the wide & deep network make different errors, so their mean often beats both. The weight is fit
on the candidates' validation days (the last days of their training window, never the gate's holdout), by the mean
Poisson deviance of clicks over a grid of weights. The blend then faces the gate like any candidate: it serves only
if it beats the naive floor, the champion, the calibration and the clusters by the same rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd

from daily_bids.models.xgboost_model import PREDICTION_COLUMNS, regression_metrics

WEIGHT_STEP = 0.01


@dataclass
class BlendModel:
    kind: ClassVar[str] = "blend"
    components: dict  # name -> ServableModel
    weights: dict[str, float]  # name -> weight; they sum to 1
    validation_metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if set(self.components) != set(self.weights) or abs(sum(self.weights.values()) - 1) > 1e-9:
            raise ValueError(f"a blend needs one weight per component, summing to 1: {self.weights}")

    @property
    def parity_tolerance(self) -> float:  # the loosest of its components': the sum adds no error of its own
        return max(model.parity_tolerance for model in self.components.values())

    @property
    def trained_through(self) -> dt.date:
        return min(model.trained_through for model in self.components.values())

    @property
    def feature_versions(self) -> dict[str, str]:
        return {name: version for model in self.components.values() for name, version in model.feature_versions.items()}

    @cached_property
    def version(self) -> str:
        digest = hashlib.sha256(
            json.dumps(
                {name: [model.version, self.weights[name]] for name, model in sorted(self.components.items())}
            ).encode()
        )
        return f"blend-{self.trained_through:%Y%m%d}-{digest.hexdigest()[:8]}"

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """The weighted mean of the components' predictions, per column. A column a component leaves null (deep
        models no conversion value the source never reported) is the mean of the others, re-weighted."""
        predictions = {name: model.predict(features) for name, model in self.components.items()}
        blended = {}
        for column in PREDICTION_COLUMNS.values():
            values = np.stack([predictions[name][column].to_numpy(dtype="float64") for name in self.components])
            weights = np.asarray([self.weights[name] for name in self.components])[:, None] * ~np.isnan(values)
            with np.errstate(invalid="ignore", divide="ignore"):
                blended[column] = np.nansum(values * weights, axis=0) / weights.sum(axis=0)
        return pd.DataFrame(blended, index=features.index)

    def with_components(self, components: dict) -> BlendModel:
        """The same weights over other fits of the same kinds (the refit after the gate)."""
        return BlendModel(components, dict(self.weights), dict(self.validation_metrics))

    def registry_entry(self) -> dict:
        return {
            "version": self.version,
            "trained_through": self.trained_through.isoformat(),
            "scaler_version": "",
            "feature_versions": json.dumps(self.feature_versions),
            "components": json.dumps({name: model.version for name, model in self.components.items()}),
        }

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr(
                "blend.json",
                json.dumps(
                    {
                        "weights": self.weights,
                        "kinds": {name: model.kind for name, model in self.components.items()},
                        "validation_metrics": self.validation_metrics,
                    },
                    indent=2,
                ),
            )
            for name, model in self.components.items():
                bundle.writestr(f"components/{name}.zip", model.to_bytes())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, load_component: Callable[[str, bytes], object]) -> BlendModel:
        """The blend in `data`; `load_component(kind, bundle)` reads each component back by its kind."""
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            meta = json.loads(bundle.read("blend.json"))
            components = {
                name: load_component(kind, bundle.read(f"components/{name}.zip"))
                for name, kind in meta["kinds"].items()
            }
        return cls(components, meta["weights"], meta["validation_metrics"])


def fit_blend(components: dict, validation: pd.DataFrame) -> BlendModel:
    """The blend of two models whose weight gives the lowest mean Poisson deviance of clicks on `validation`
    (feature rows with their next-day clicks), on a grid of `WEIGHT_STEP`."""
    if len(components) != 2:
        raise ValueError(f"a blend weighs two models, got {sorted(components)}")
    first, second = components
    actual = validation["clicks"].to_numpy(dtype="float64")
    known = ~np.isnan(actual)
    clicks = {
        name: model.predict(validation)[PREDICTION_COLUMNS["clicks"]].to_numpy(dtype="float64")[known]
        for name, model in components.items()
    }
    grid = np.round(np.arange(0.0, 1.0 + WEIGHT_STEP / 2, WEIGHT_STEP), 6)
    deviances = [
        regression_metrics(actual[known], w * clicks[first] + (1 - w) * clicks[second])["poisson_deviance"]
        for w in grid
    ]
    weight = float(grid[int(np.argmin(deviances))])
    blended = weight * clicks[first] + (1 - weight) * clicks[second]
    metrics = {f"clicks_{name}": value for name, value in regression_metrics(actual[known], blended).items()}
    metrics |= {f"weight_{first}": weight, f"weight_{second}": 1 - weight}
    return BlendModel(dict(components), {first: weight, second: 1 - weight}, metrics)
