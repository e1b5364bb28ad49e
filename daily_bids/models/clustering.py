"""Keyword clusters from behaviour profiles: volume, click-through rate, conversion rate and weekly shape.

The cluster id is an input of the deep model (an embedding), and cluster-level slices are what the champion gate
checks a candidate against. k is chosen by silhouette on a sample, unless configured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.charts import figure_png, pyplot
from daily_bids.schema import as_day, numeric

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PROFILE_COLUMNS = ("log_volume", "ctr", "conversion_rate", *(f"share_{d}" for d in WEEKDAYS))
SILHOUETTE_SAMPLE = 5_000
UNKNOWN_CLUSTER = -1  # keywords not seen in the training window (cold starts)


@dataclass
class KeywordClusters:
    assignments: pd.DataFrame  # keyword_id, cluster
    centers: pd.DataFrame  # cluster × profile column, in original units
    k: int
    silhouette_by_k: dict[int, float]

    def names(self) -> dict[int, str]:
        """Each cluster's number and what it is, e.g. "2: high volume, low CTR" (see `cluster_names`)."""
        return cluster_names(self.centers)

    def cluster_of(self, keyword_ids) -> np.ndarray:
        lookup = pd.Series(self.assignments["cluster"].to_numpy(), index=self.assignments["keyword_id"].to_numpy())
        return lookup.reindex(np.asarray(keyword_ids)).fillna(UNKNOWN_CLUSTER).to_numpy(dtype="int64")


def behaviour_profiles(reports: pd.DataFrame) -> pd.DataFrame:
    """One row per keyword: log mean daily impressions, CTR, conversion rate (0 where not reported), and the share of
    its impressions on each weekday."""
    frame = pd.DataFrame(
        {
            "keyword_id": reports["keyword_id"].to_numpy(),
            "weekday": as_day(reports["date"]).dt.weekday.to_numpy(),
            "impressions": numeric(reports["impressions"]),
            "clicks": numeric(reports["clicks"]),
            "conversions": np.nan_to_num(numeric(reports["conversions"])),
        }
    )
    days = as_day(reports["date"]).nunique()
    totals = frame.groupby("keyword_id")[["impressions", "clicks", "conversions"]].sum()
    weekly = frame.pivot_table(index="keyword_id", columns="weekday", values="impressions", aggfunc="sum", fill_value=0)
    weekly = weekly.reindex(columns=range(7), fill_value=0)
    profiles = pd.DataFrame(index=totals.index)
    profiles["log_volume"] = np.log1p(totals["impressions"] / max(days, 1))
    profiles["ctr"] = totals["clicks"] / totals["impressions"].where(totals["impressions"] > 0)
    profiles["conversion_rate"] = totals["conversions"] / totals["clicks"].where(totals["clicks"] > 0)
    shares = weekly.div(weekly.sum(axis=1).where(lambda s: s > 0), axis=0)
    for number, name in enumerate(WEEKDAYS):
        profiles[f"share_{name}"] = shares[number].to_numpy()
    return profiles.fillna(0.0).reset_index()


def fit_clusters(profiles: pd.DataFrame, k: int | None = None, k_range=range(3, 9), seed: int = 0) -> KeywordClusters:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    values = profiles.loc[:, list(PROFILE_COLUMNS)].to_numpy(dtype="float64")
    scaled = StandardScaler().fit_transform(values)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(scaled), size=min(len(scaled), SILHOUETTE_SAMPLE), replace=False)
    silhouettes: dict[int, float] = {}
    if k is None:
        for candidate in k_range:
            if candidate >= len(scaled):
                break
            labels = KMeans(candidate, n_init=4, random_state=seed).fit_predict(scaled)
            silhouettes[candidate] = float(silhouette_score(scaled[sample], labels[sample]))
        if not silhouettes:
            raise ValueError(f"too few keywords ({len(scaled)}) to cluster")
        k = max(silhouettes, key=silhouettes.get)
    model = KMeans(k, n_init=8, random_state=seed).fit(scaled)
    assignments = pd.DataFrame({"keyword_id": profiles["keyword_id"].to_numpy(), "cluster": model.labels_})
    centers = profiles.assign(cluster=model.labels_).groupby("cluster")[list(PROFILE_COLUMNS)].mean()
    return KeywordClusters(assignments, centers, int(k), silhouettes)


# The profile columns a cluster is named by, and the word for each.
_NAMED_BY = {"log_volume": "volume", "ctr": "CTR", "conversion_rate": "conversion rate"}
# How far, in standard deviations of the clusters' centers, a cluster's center stands out to be named by it.
_STANDS_OUT = 0.75
# A week's share of weekend days in a flat week, and how far from it a cluster must be to be named by it.
_WEEKEND_SHARE, _WEEKEND_MARGIN = 2 / 7, 0.05


def cluster_names(centers: pd.DataFrame) -> dict[int, str]:
    """A name per cluster from its profile against the other clusters': "high" or "low" volume, CTR and conversion
    rate where its center stands out from theirs (by more than `_STANDS_OUT` standard deviations of the clusters'
    centers), and its week where most of its impressions fall on weekdays or weekends. People read
    "2: high volume, low CTR" where they could not read "2"."""
    named = centers[list(_NAMED_BY)]
    spread = named.std(ddof=0).replace(0.0, np.inf)  # a column all clusters share names none of them
    scores = (named - named.mean()) / spread
    names = {}
    for cluster, row in centers.iterrows():
        words = [
            f"{'high' if scores.loc[cluster, column] > 0 else 'low'} {word}"
            for column, word in _NAMED_BY.items()
            if abs(scores.loc[cluster, column]) > _STANDS_OUT
        ]
        weekend = row.get("share_sat", 0.0) + row.get("share_sun", 0.0)
        if weekend > _WEEKEND_SHARE + _WEEKEND_MARGIN:
            words.append("weekend-heavy")
        elif 0 < weekend < _WEEKEND_SHARE - _WEEKEND_MARGIN:
            words.append("weekday-heavy")
        names[int(cluster)] = f"{cluster}: {', '.join(words) or 'typical'}"
    return names


def profile_plot_png(clusters: KeywordClusters) -> bytes:
    """Cluster profiles: volume, CTR and conversion rate, and the weekly shape of each cluster."""
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(11, 4))
    centers = clusters.centers
    sizes = clusters.assignments["cluster"].value_counts().reindex(centers.index).fillna(0).astype(int)
    summary = centers[["log_volume", "ctr", "conversion_rate"]]
    normalized = summary / summary.abs().max().replace(0, 1)
    normalized.plot.bar(ax=left)
    left.set_title("cluster profiles (scaled to the largest)")
    names = clusters.names()
    left.set_xticklabels(
        [f"{names[c]}\n({sizes[c]} kw)".replace(", ", "\n") for c in centers.index], fontsize=7, rotation=0
    )
    for cluster, row in centers[[f"share_{d}" for d in WEEKDAYS]].iterrows():
        right.plot(WEEKDAYS, row.to_numpy(), marker="o", label=names[cluster])
    right.set_title("weekly shape (share of impressions)")
    right.legend(fontsize=8)
    return figure_png(figure)
