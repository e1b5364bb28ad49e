"""Benchmark: training clusters and both models on one year × 2,000 keywords.

    .venv/bin/python benchmarks/training_1y_2000.py [--keywords 2000] [--days 365]

Set-up (not timed): a year of simulated reports and its features. Timed: keyword clusters, the XGBoost candidate and
the deep candidate, each trained on the whole year (the last 7 days held out for early stopping), with the
asset defaults otherwise.
"""

import argparse
import datetime as dt
import time

import pandas as pd

from daily_bids.features.keyword_features import compute_features
from daily_bids.models.clustering import behaviour_profiles, fit_clusters
from daily_bids.models.deep_model import DeepParameters, train_deep
from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
from daily_bids.simulator.market import AdMarketSimulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keywords", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    simulator = AdMarketSimulator(seed=7, keywords=args.keywords)
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(args.days + 29)]
    print(f"set-up: {len(days)} days × {args.keywords:,} keywords and their features (not timed) ...", flush=True)
    reports = pd.concat([simulator.report(day) for day in days], ignore_index=True)
    feature_days = days[28:-1]
    frame = training_frame(compute_features(reports, feature_days), reports)
    through = days[-1]
    print(f"training rows: {len(frame):,} ({feature_days[0]}...{feature_days[-1]})", flush=True)

    timings = {}
    start = time.perf_counter()
    clusters = fit_clusters(behaviour_profiles(reports[reports["date"] >= pd.Timestamp(feature_days[0])]))
    timings["keyword clusters (k by silhouette)"] = time.perf_counter() - start
    start = time.perf_counter()
    xgb = train(frame, through, TrainingParameters(training_days=len(feature_days)), log=lambda _: None)
    timings["XGBoost (3 targets, early stopping)"] = time.perf_counter() - start
    start = time.perf_counter()
    deep = train_deep(frame, clusters, through, DeepParameters(), log=lambda _: None)
    timings["deep model (early stopping)"] = time.perf_counter() - start
    for name, seconds in timings.items():
        print(f"  {name:<40} {seconds:6.1f} s")
    print(
        f"total: {sum(timings.values()):.0f} s; clusters k={clusters.k}; "
        f"validation clicks deviance: xgboost {xgb.validation_metrics['clicks_poisson_deviance']:.4f}, "
        f"deep {deep.validation_metrics['clicks_poisson_deviance']:.4f} ({int(deep.validation_metrics['epochs'])} epochs)"
    )


if __name__ == "__main__":
    main()
