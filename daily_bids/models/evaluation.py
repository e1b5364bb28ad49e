"""Honest comparison of models on one time-based holdout, and the champion gate.

Every candidate is scored on the same holdout days, which no candidate trained or early-stopped on, next to the
naive floors (each keyword's mean daily clicks over the last 7 and 28 days). A candidate replaces the serving
champion only if it beats both the champion and the best naive floor on mean Poisson deviance of clicks by
`margin`, is not worse calibrated beyond `calibration_tolerance`, and is not worse on any cluster beyond
`cluster_tolerance`. When no learned candidate passes, the better naive floor is judged by the same rules against
the champion (or serves outright when there is none yet): a young account gets bids from day one, and a model worse
than a 28-day mean never serves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from daily_bids.charts import figure_png, pyplot
from daily_bids.models.clustering import UNKNOWN_CLUSTER
from daily_bids.models.naive_model import FLOOR_NAMES, NaiveModel, floor_name
from daily_bids.models.xgboost_model import regression_metrics

HEADS = ("clicks", "conversions")


class GatePolicy(BaseModel):
    """When a candidate may replace the champion. Also the `champion_model` asset's run configuration."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)  # inf and nan are never a setting

    margin: float = Field(
        0.01, ge=0.0, lt=1.0, description="Relative deviance improvement needed over the champion and the naive floor."
    )
    calibration_tolerance: float = Field(
        0.05, ge=0.0, description="How much further from 1 the candidate's calibration may be than the champion's."
    )
    cluster_tolerance: float = Field(0.05, ge=0.0, description="Relative deviance worsening allowed on any cluster.")


def evaluate(name: str, predicted: pd.DataFrame, holdout: pd.DataFrame, clusters: np.ndarray) -> pd.DataFrame:
    """Metrics of one model on the holdout, overall and per cluster, for clicks and (where reported) conversions."""
    rows = []
    for head in HEADS:
        column = f"expected_{head}"
        if column not in predicted.columns:
            continue
        actual = holdout[head].to_numpy(dtype="float64")
        values = predicted[column].to_numpy(dtype="float64")
        known = ~np.isnan(actual) & ~np.isnan(values)
        if not known.any():
            continue
        slices = {"all": known} | {f"cluster {c}": known & (clusters == c) for c in np.unique(clusters)}
        for slice_name, mask in slices.items():
            if mask.sum() == 0:
                continue
            metrics = regression_metrics(actual[mask], values[mask])
            total = np.abs(actual[mask]).sum()
            metrics["wape"] = float(np.abs(actual[mask] - values[mask]).sum() / total) if total else float("nan")
            rows.append({"model": name, "target": head, "slice": slice_name, "rows": int(mask.sum()), **metrics})
    return pd.DataFrame(rows)


@dataclass
class GateDecision:
    champion: str  # the name of the model that serves from now on
    replaced: bool
    reasons: list[str]


def decide(metrics: pd.DataFrame, candidates: list[str], incumbent: str | None, policy: GatePolicy) -> GateDecision:
    """Pick the serving model from `metrics` (from `evaluate`, naive floors included): the best learned candidate
    that passes, else the better naive floor if it passes against the champion (or there is none), else the
    champion keeps serving."""
    clicks = metrics[metrics["target"] == "clicks"]
    overall = clicks[clicks["slice"] == "all"].set_index("model")
    floor_name = overall.loc[list(FLOOR_NAMES), "poisson_deviance"].idxmin()
    floor = overall.loc[floor_name, "poisson_deviance"]
    reasons: list[str] = []

    def failures_against_champion(candidate: str) -> list[str]:
        if incumbent is None or incumbent == candidate:
            return []
        failures = []
        deviance, champion_deviance = (
            overall.loc[candidate, "poisson_deviance"],
            overall.loc[incumbent, "poisson_deviance"],
        )
        if deviance > champion_deviance * (1 - policy.margin):
            failures.append(
                f"deviance {deviance:.4f} does not beat the champion {incumbent} "
                f"({champion_deviance:.4f}) by {policy.margin:.0%}"
            )
        candidate_error = abs(overall.loc[candidate, "calibration"] - 1)
        champion_error = abs(overall.loc[incumbent, "calibration"] - 1)
        if candidate_error > champion_error + policy.calibration_tolerance:
            failures.append(
                f"calibration {overall.loc[candidate, 'calibration']:.3f} is worse than the "
                f"champion's {overall.loc[incumbent, 'calibration']:.3f}"
            )
        slices = clicks[(clicks["slice"] != "all") & clicks["model"].isin([candidate, incumbent])]
        by_slice = slices.pivot_table(index="slice", columns="model", values="poisson_deviance")
        worse = (
            by_slice[by_slice[candidate] > by_slice[incumbent] * (1 + policy.cluster_tolerance)]
            if {candidate, incumbent} <= set(by_slice.columns)
            else by_slice.iloc[0:0]
        )
        if len(worse):
            failures.append(f"worse than the champion beyond {policy.cluster_tolerance:.0%} on {list(worse.index)}")
        return failures

    for candidate in sorted(candidates, key=lambda c: overall.loc[c, "poisson_deviance"]):
        deviance = overall.loc[candidate, "poisson_deviance"]
        failures = []
        if deviance > floor * (1 - policy.margin):
            failures.append(
                f"deviance {deviance:.4f} does not beat the naive floor {floor_name} ({floor:.4f}) "
                f"by {policy.margin:.0%}"
            )
        failures += failures_against_champion(candidate)
        if not failures:
            reasons.append(
                f"{candidate}: deviance {deviance:.4f} beats the naive floor {floor_name} ({floor:.4f})"
                + (f" and the champion {incumbent}" if incumbent and incumbent != candidate else "")
            )
            return GateDecision(candidate, candidate != incumbent, reasons)
        reasons.append(f"{candidate} rejected: " + "; ".join(failures))
    floor_failures = failures_against_champion(floor_name)
    if not floor_failures:
        if incumbent == floor_name:
            reasons.append(f"the naive floor {floor_name} keeps serving: no learned model beats it yet")
        else:
            reasons.append(
                f"the naive floor {floor_name} serves (deviance {floor:.4f}): no learned model beats it "
                "yet" + (f", and it beats the champion {incumbent}" if incumbent else "")
            )
        return GateDecision(floor_name, floor_name != incumbent, reasons)
    reasons.append(f"naive floor {floor_name} rejected: " + "; ".join(floor_failures))
    reasons.append(f"{incumbent} keeps serving")
    return GateDecision(incumbent, False, reasons)


@dataclass
class GateVerdict:
    decision: GateDecision
    chosen: object  # the ServableModel named decision.champion
    incumbent: str | None  # the serving champion's name in `metrics` (None: there was none)
    metrics: pd.DataFrame  # from `evaluate`, for every model judged
    predictions: dict[str, pd.DataFrame]


def run_gate(
    candidates: dict,
    incumbent,
    holdout: pd.DataFrame,
    clusters: np.ndarray,
    floors: dict[str, NaiveModel],
    policy: GatePolicy,
) -> GateVerdict:
    """Judge `candidates` (name → model), the naive `floors` and the serving `incumbent` (or None) on `holdout`,
    and pick the model that serves by `decide`'s rules.

    The incumbent is named as what it is: a naive floor is today's floor of the same window (a floor predicts the
    same whenever it was judged), a candidate of the same version is that candidate, and any other model is judged
    beside them as "champion (<version>)"."""
    models = {**candidates, **floors}
    if incumbent is None:
        incumbent_name = None
    elif isinstance(incumbent, NaiveModel):
        incumbent_name = floor_name(incumbent.window_days)
    else:
        incumbent_name = next(
            (name for name, model in candidates.items() if model.version == incumbent.version),
            f"champion ({incumbent.version})",
        )
        models.setdefault(incumbent_name, incumbent)
    predictions = {name: model.predict(holdout) for name, model in models.items()}
    metrics = pd.concat([evaluate(name, predicted, holdout, clusters) for name, predicted in predictions.items()])
    decision = decide(metrics, list(candidates), incumbent_name, policy)
    return GateVerdict(decision, models[decision.champion], incumbent_name, metrics, predictions)


def real_vs_predicted_png(
    holdout: pd.DataFrame,
    predictions: dict[str, np.ndarray],
    clusters: np.ndarray,
    cluster_names: dict[int, str] | None = None,
) -> bytes:
    """Daily real vs predicted clicks over the holdout, and mean residual by cluster (named by `cluster_names`,
    from `KeywordClusters.names`), for each model."""
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(11, 4))
    days = holdout["date"].to_numpy()
    actual = holdout["clicks"].to_numpy(dtype="float64")
    left.plot(*_daily(days, actual), color="black", linewidth=2, label="real")
    width = 0.8 / max(len(predictions), 1)
    cluster_ids = np.unique(clusters)
    for number, (name, values) in enumerate(predictions.items()):
        left.plot(*_daily(days, values), label=name)
        residual = [float(np.mean(actual[clusters == c] - values[clusters == c])) for c in cluster_ids]
        right.bar(np.arange(len(cluster_ids)) + number * width, residual, width, label=name)
    left.set_title("clicks per day on the holdout: real vs predicted")
    left.legend(fontsize=8)
    left.tick_params(axis="x", labelrotation=45)
    names = {UNKNOWN_CLUSTER: f"{UNKNOWN_CLUSTER}: new keywords", **(cluster_names or {})}
    labels = [names.get(int(c), str(c)).replace(", ", "\n") for c in cluster_ids]
    right.set_xticks(np.arange(len(cluster_ids)) + 0.4 - width / 2, labels, fontsize=7)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_title("mean residual (real − predicted) by cluster")
    right.legend(fontsize=8)
    return figure_png(figure)


def _daily(days, values):
    series = pd.Series(values).groupby(pd.to_datetime(days)).sum()
    return series.index, series.to_numpy()
