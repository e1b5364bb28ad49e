"""The XGBoost baseline: next-day clicks, conversions and conversion value per keyword.

Training pairs the features of day t (which read report days up to t) with the report of day t+1; a keyword with no
report row on t+1 had no impressions, so its targets are zero. Clicks and conversions are counts and get a Poisson
objective; conversion value is zero-inflated and skewed and gets a Tweedie objective. The last `validation_days` of
the window are held out in time order for early stopping and for the metrics recorded with the model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from daily_bids.features.keyword_features import FEATURE_NAMES, feature_versions
from daily_bids.models.preprocessing import FeatureScaler
from daily_bids.schema import as_day, numeric

TARGET_OBJECTIVES: dict[str, str] = {
    "clicks": "count:poisson",
    "conversions": "count:poisson",
    "conversion_value": "reg:tweedie",
}
PREDICTION_COLUMNS: dict[str, str] = {
    "clicks": "expected_clicks",
    "conversions": "expected_conversions",
    "conversion_value": "expected_value",
}


class TrainingParameters(BaseModel):
    """Window and hyperparameters. Also the `xgboost_model` asset's run configuration."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)  # inf and nan are never a setting

    training_days: int = Field(56, ge=14, description="Days of features (with next-day targets) to train on.")
    validation_days: int = Field(7, ge=1, description="Last days of the window held out for early stopping.")
    n_estimators: int = Field(400, ge=1, description="Upper bound on boosting rounds.")
    early_stopping_rounds: int = Field(30, ge=1)
    max_depth: int = Field(6, ge=1, le=16)
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    seed: int = Field(0, description="Seed for XGBoost's sampling; same data and seed give the same model.")
    scaling: Literal["standard", "minmax"] = Field("standard", description="Feature scaling fitted on the window.")


def training_days(train_through: dt.date, parameters: TrainingParameters) -> list[dt.date]:
    """Feature days in the window; each needs the report of the following day, up to `train_through`."""
    return [train_through - dt.timedelta(days=offset) for offset in range(parameters.training_days, 0, -1)]


def unreported_targets(reports: pd.DataFrame) -> dict[str, str]:
    """Targets the source never reported, with why: all null, or all zero in reports that carry no cost or value
    (an export of impressions and clicks only, whose conversion columns were filled with zeros). None is trained."""

    def values(column: str) -> np.ndarray:
        return numeric(reports[column]) if column in reports else np.full(len(reports), np.nan)

    carries_money = any(np.nan_to_num(values(column)).any() for column in ("cost", "conversion_value"))
    found = {}
    for target in TARGET_OBJECTIVES:
        if np.isnan(values(target)).all():
            found[target] = "never reported (every value is null)"
        elif target != "clicks" and not carries_money and not np.nan_to_num(values(target)).any():
            found[target] = "never reported (all zero, and the reports carry no cost or conversion value)"
    return found


def training_frame(features: pd.DataFrame, reports: pd.DataFrame) -> pd.DataFrame:
    """Features of day t joined with targets from the report of day t+1.

    A keyword with no report row on t+1 had no impressions: its targets are zero. A metric the source did not
    report stays null, and that target is not trained on those rows; a target the reports never carry at all
    (`unreported_targets`) is null everywhere, so no model trains on it.
    """
    targets = pd.DataFrame(
        {
            "date": as_day(reports["date"]).to_numpy() - np.timedelta64(1, "D"),  # t+1 → t
            "keyword_id": reports["keyword_id"].to_numpy(),
            "reported": True,
        }
    )
    for target in TARGET_OBJECTIVES:
        targets[target] = numeric(reports[target])
    frame = features.merge(targets, on=["date", "keyword_id"], how="left", validate="one_to_one")
    no_row = frame["reported"].isna().to_numpy()
    frame.loc[no_row, list(TARGET_OBJECTIVES)] = 0.0
    frame.loc[:, list(unreported_targets(reports))] = np.nan
    return frame.drop(columns="reported")


@dataclass
class KeywordModel:
    kind: ClassVar[str] = "xgboost"  # its name in daily_bids.models.kinds.MODEL_KINDS
    # Largest relative difference the engines' parity check allows (daily_bids.serving.scoring): trees sum exactly.
    parity_tolerance: ClassVar[float] = 1e-6
    boosters: dict  # target name -> xgboost.Booster
    trained_through: dt.date
    parameters: dict
    scaler: FeatureScaler
    feature_names: tuple[str, ...] = FEATURE_NAMES
    feature_versions: dict[str, str] = field(default_factory=feature_versions)
    validation_metrics: dict[str, float] = field(default_factory=dict)

    @cached_property  # a hash of every tree or weight: computed once, not for every scored batch
    def version(self) -> str:
        digest = hashlib.sha256(self.scaler.to_json().encode())
        for target in sorted(self.boosters):
            digest.update(bytes(self.boosters[target].save_raw("ubj")))
        return f"xgb-{self.trained_through:%Y%m%d}-{digest.hexdigest()[:8]}"

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Expected next-day clicks, conversions and conversion value for each row of `features`; null for a
        target the model was not trained on (its source never reported it)."""
        matrix = self.scaler.transform(features)
        predicted = pd.DataFrame({column: np.nan for column in PREDICTION_COLUMNS.values()}, index=features.index)
        for target, booster in self.boosters.items():
            predicted[PREDICTION_COLUMNS[target]] = np.asarray(booster.inplace_predict(matrix), dtype="float64")
        return predicted

    def registry_entry(self) -> dict:
        """What the model registry records of this model: enough to tell which feature versions it used."""
        return {
            "version": self.version,
            "trained_through": self.trained_through.isoformat(),
            "scaler_version": self.scaler.version,
            "feature_versions": json.dumps(self.feature_versions),
        }

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            for target, booster in self.boosters.items():
                bundle.writestr(f"{target}.ubj", bytes(booster.save_raw("ubj")))
            bundle.writestr("scaler.json", self.scaler.to_json())
            bundle.writestr(
                "model.json",
                json.dumps(
                    {
                        "targets": list(self.boosters),
                        "trained_through": self.trained_through.isoformat(),
                        "parameters": self.parameters,
                        "feature_names": list(self.feature_names),
                        "feature_versions": self.feature_versions,
                        "scaler_version": self.scaler.version,
                        "validation_metrics": self.validation_metrics,
                    },
                    indent=2,
                ),
            )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeywordModel:
        import xgboost as xgb  # imported where used: keeps Definitions loading fast

        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            meta = json.loads(bundle.read("model.json"))
            scaler_json = bundle.read("scaler.json").decode()
            boosters = {}
            for target in meta["targets"]:
                booster = xgb.Booster()
                booster.load_model(bytearray(bundle.read(f"{target}.ubj")))
                boosters[target] = booster
        return cls(
            boosters=boosters,
            trained_through=dt.date.fromisoformat(meta["trained_through"]),
            parameters=meta["parameters"],
            scaler=FeatureScaler.from_json(scaler_json),
            feature_names=tuple(meta["feature_names"]),
            feature_versions=meta["feature_versions"],
            validation_metrics=meta["validation_metrics"],
        )


def train(
    frame: pd.DataFrame,
    trained_through: dt.date,
    parameters: TrainingParameters,
    log=print,
    rounds: dict[str, int] | None = None,
) -> KeywordModel:
    """Fit one booster per target on `frame` (from `training_frame`), early-stopped on the last days.

    With `rounds` (target → boosting rounds, those an early-stopped fit chose: the refit after the gate), every day
    is fitted for exactly that many rounds, and nothing is held out."""
    import xgboost as xgb

    days = np.sort(as_day(frame["date"]).unique())
    if rounds is None and len(days) <= parameters.validation_days:
        raise ValueError(
            f"training needs more than validation_days={parameters.validation_days} days of features, got {len(days)}"
        )
    is_validation = (
        as_day(frame["date"]).isin(days[-parameters.validation_days :]).to_numpy()
        if rounds is None
        else np.zeros(len(frame), dtype=bool)
    )
    fit, holdout = frame.loc[~is_validation], frame.loc[is_validation]
    fit_days = as_day(fit["date"])
    scaler = FeatureScaler.fit(
        fit, FEATURE_NAMES, parameters.scaling, f"{fit_days.min().date()}...{fit_days.max().date()}"
    )
    fit_matrix, holdout_matrix = scaler.transform(fit), scaler.transform(holdout)

    boosters, metrics = {}, {}
    for target, objective in TARGET_OBJECTIVES.items():
        fit_known, holdout_known = fit[target].notna().to_numpy(), holdout[target].notna().to_numpy()
        if not fit_known.any() or (rounds is None and not holdout_known.any()) or (rounds and target not in rounds):
            log(f"not training {target}: the reports do not carry it in this window")
            continue
        if rounds is not None:
            boosters[target] = xgb.train(
                _booster_parameters(objective, parameters),
                xgb.DMatrix(
                    fit_matrix[fit_known],
                    label=fit.loc[fit_known, target].to_numpy(dtype="float64"),
                    feature_names=list(FEATURE_NAMES),
                ),
                num_boost_round=rounds[target],
            )
            log(f"refit {target}: {rounds[target]} rounds on {len(days)} days")
            continue
        train_set = xgb.DMatrix(
            fit_matrix[fit_known],
            label=fit.loc[fit_known, target].to_numpy(dtype="float64"),
            feature_names=list(FEATURE_NAMES),
        )
        valid_set = xgb.DMatrix(
            holdout_matrix[holdout_known],
            label=holdout.loc[holdout_known, target].to_numpy(dtype="float64"),
            feature_names=list(FEATURE_NAMES),
        )
        booster = xgb.train(
            _booster_parameters(objective, parameters),
            train_set,
            num_boost_round=parameters.n_estimators,
            evals=[(valid_set, "validation")],
            early_stopping_rounds=parameters.early_stopping_rounds,
            verbose_eval=False,
        )
        # Keep only the rounds up to the best validation score.
        booster = booster[: booster.best_iteration + 1]
        boosters[target] = booster
        predicted = booster.inplace_predict(holdout_matrix[holdout_known])
        actual = holdout.loc[holdout_known, target].to_numpy(dtype="float64")
        metrics |= {f"{target}_{name}": value for name, value in regression_metrics(actual, predicted).items()}
        metrics[f"{target}_rounds"] = float(booster.num_boosted_rounds())
        log(
            f"trained {target}: {booster.num_boosted_rounds()} rounds, "
            f"validation deviance {metrics[f'{target}_poisson_deviance']:.4f}"
        )
    if "clicks" not in boosters:
        raise ValueError("no clicks to train on in the window: every report needs clicks")
    return KeywordModel(
        boosters=boosters,
        trained_through=trained_through,
        parameters=parameters.model_dump(),
        scaler=scaler,
        validation_metrics=metrics,
    )


def _booster_parameters(objective: str, parameters: TrainingParameters) -> dict:
    return {
        "objective": objective,
        "max_depth": parameters.max_depth,
        "eta": parameters.learning_rate,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 5.0,
        "seed": parameters.seed,
        "nthread": 2,
        "eval_metric": "poisson-nloglik" if objective.startswith("count") else "tweedie-nloglik@1.5",
    }


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    actual = np.asarray(actual, dtype="float64")
    predicted = np.clip(np.asarray(predicted, dtype="float64"), 1e-9, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(actual > 0, actual * np.log(actual / predicted), 0.0)
    return {
        "mae": float(np.mean(np.abs(actual - predicted))),
        "rmse": float(np.sqrt(np.mean((actual - predicted) ** 2))),
        "poisson_deviance": float(np.mean(2.0 * (log_term - (actual - predicted)))),
        "calibration": float(predicted.sum() / actual.sum()) if actual.sum() > 0 else float("nan"),
    }
