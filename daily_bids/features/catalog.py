"""The feature catalog: every feature's definition (from `FEATURES`, never a second list), its statistics per
partition, its drift, and which models used which version of it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from daily_bids.features.keyword_features import FEATURES, FEATURES_BY_NAME

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DRIFT_WARN = 0.5  # standardized mean shift against the previous 7 days above which a feature counts as drifting
STAT_COLUMNS = ("count", "nulls", "mean", "std", "min", *(f"p{int(q * 100):02d}" for q in QUANTILES), "max")


def definitions() -> pd.DataFrame:
    """One row per feature: its definition, straight from the code."""
    return pd.DataFrame(
        [
            {
                "feature": f.name,
                "description": f.description,
                "dtype": "float64",
                "unit": f.unit,
                "source_columns": ", ".join(f.source_columns),
                "transformation": f.transformation,
                "window_days": f.window_days,
                "owner": f.owner,
                "tags": ", ".join(f.tags),
                "version": f.version,
            }
            for f in FEATURES
        ]
    )


# One feature's values in a partition: a frame's column, or one column read from the warehouse (a column at a time
# keeps a 10M-keyword day at 80 MB).
FeatureValues = Callable[[str], np.ndarray]


def statistics(values_of: FeatureValues) -> pd.DataFrame:
    """Per-feature statistics of one partition of `keyword_features`, two features at a time: reading a column and
    its quantiles let go of Python, so both cores share the work (12 s for a 10M-keyword day on one)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="feature-statistics") as pool:
        rows = list(pool.map(lambda feature: _feature_statistics(feature.name, values_of), FEATURES))
    return pd.DataFrame(rows).reindex(columns=["feature", *STAT_COLUMNS])


def _feature_statistics(name: str, values_of: FeatureValues) -> dict[str, object]:
    values = np.asarray(values_of(name), dtype="float64")
    known = values[~np.isnan(values)]
    row = {"feature": name, "count": int(len(values)), "nulls": int(len(values) - len(known))}
    if len(known):
        quantiles = np.quantile(known, QUANTILES)
        row |= {
            "mean": float(known.mean()),
            "std": float(known.std()),
            "min": float(known.min()),
            "max": float(known.max()),
            **{f"p{int(q * 100):02d}": float(v) for q, v in zip(QUANTILES, quantiles)},
        }
    return row


def drift(today: pd.DataFrame, previous: pd.DataFrame) -> pd.Series:
    """Standardized mean shift of each feature against the previous days' statistics: |mean − mean of the previous
    days' means| / mean of their standard deviations. Cheap: it reads statistics, not the previous partitions."""
    if previous.empty:
        return pd.Series(np.nan, index=today["feature"])
    reference = previous.groupby("feature")[["mean", "std"]].mean()
    aligned = reference.reindex(today["feature"])
    shift = (today.set_index("feature")["mean"] - aligned["mean"]).abs()
    # Null where there is no reference or it did not vary (calendar features are constant within a day).
    return shift / aligned["std"].where(aligned["std"] > 1e-9)


def catalog_partition(
    day: dt.date,
    values_of: FeatureValues,
    previous_stats: pd.DataFrame,
    materialized_days: list[dt.date],
    registry: pd.DataFrame,
) -> pd.DataFrame:
    """The catalog rows of one day: definition + statistics + drift + first/last partition + models using it."""
    stats = statistics(values_of)
    stats["drift_vs_previous_7d"] = drift(stats, previous_stats).to_numpy()
    table = definitions().merge(stats, on="feature")
    table.insert(0, "date", pd.Timestamp(day))
    table["first_partition"] = min(materialized_days).isoformat() if materialized_days else day.isoformat()
    table["last_partition"] = max(materialized_days).isoformat() if materialized_days else day.isoformat()
    table["models_using_this_version"] = [
        ", ".join(models_using(name, version, registry)) for name, version in zip(table["feature"], table["version"])
    ]
    return table


def models_using(feature: str, version: str, registry: pd.DataFrame) -> list[str]:
    """Model versions (from the model registry) trained on exactly this version of `feature`."""
    if registry.empty:
        return []
    return [
        row["version"] for _, row in registry.iterrows() if json.loads(row["feature_versions"]).get(feature) == version
    ]


def versions_used(feature: str, registry: pd.DataFrame) -> dict[str, list[str]]:
    """Every version of `feature` any registered model used, with those models, each once (a champion is registered
    under its candidate's asset and again under `champion_model`)."""
    out: dict[str, list[str]] = {}
    for _, row in registry.iterrows():
        version = json.loads(row["feature_versions"]).get(feature)
        if version and row["version"] not in out.get(version, []):
            out.setdefault(version, []).append(row["version"])
    return out


def search(term: str) -> list[str]:
    """Feature names whose name, description, owner or tags contain `term` (case-insensitive)."""
    needle = term.lower()
    return [
        f.name for f in FEATURES if any(needle in text.lower() for text in (f.name, f.description, f.owner, *f.tags))
    ]


def describe(name: str) -> dict:
    if name not in FEATURES_BY_NAME:
        close = search(name.split("_")[0]) if name else []
        raise KeyError(f"no feature named {name!r}" + (f"; did you mean {close[:5]}?" if close else ""))
    return definitions().set_index("feature").loc[name].to_dict()
