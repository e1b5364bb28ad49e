"""Real-data bar: next-day clicks on the real AdWords sample (impressions and clicks only).

    .venv/bin/python benchmarks/real_data_models.py [--csv ../shared/data/adwords_keywords.csv.gz]

Models train only on days before 2013-01-31 and are scored one day ahead from actual history over the last 60 days
(outcome days 2013-01-31...2013-03-31). Prints the table the README shows: naive floors, XGBoost, deep, champion.
"""

import argparse
import datetime as dt
import time
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs

from daily_bids import evaluation
from daily_bids.clustering import behaviour_profiles, fit_clusters
from daily_bids.deep_model import DeepParameters, train_deep
from daily_bids.features import compute_features
from daily_bids.landing import read_landing_file
from daily_bids.model import TrainingParameters, train, training_frame
from daily_bids.naive_model import naive_floors
from daily_bids.validation import validate_report

FIRST_OUTCOME = dt.date(2013, 1, 31)
LAST_OUTCOME = dt.date(2013, 3, 31)
DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "adwords_keywords.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    started = time.perf_counter()
    raw = read_landing_file(pafs.LocalFileSystem(), str(args.csv.resolve()))
    days = sorted(raw["date"].dt.date.unique())
    reports = validate_report(raw, days).valid
    features = compute_features(reports, days[:-1])
    frame = training_frame(features, reports)
    dates = frame["date"].dt.date
    train_rows = frame[dates < FIRST_OUTCOME - dt.timedelta(days=1)]  # outcomes before 2013-01-31
    test_rows = frame[(dates >= FIRST_OUTCOME - dt.timedelta(days=1)) & (dates < LAST_OUTCOME)].reset_index(drop=True)
    train_rows = train_rows[train_rows["date"] >= train_rows["date"].min() + pd.Timedelta(days=27)]  # full windows
    print(f"{len(reports):,} report rows; training rows {len(train_rows):,} "
          f"({train_rows['date'].min().date()}...{train_rows['date'].max().date()}); test rows {len(test_rows):,}")

    through = FIRST_OUTCOME - dt.timedelta(days=1)
    xgb = train(train_rows, through, TrainingParameters(training_days=len(days), validation_days=28))
    clusters = fit_clusters(behaviour_profiles(reports[reports["date"] < pd.Timestamp(FIRST_OUTCOME)]))
    deep = train_deep(train_rows, clusters, through, DeepParameters(validation_days=28, epochs=40, patience=5))
    cluster_ids = clusters.cluster_of(test_rows["keyword_id"])
    predictions = {"xgboost": xgb.predict(test_rows), "deep": deep.predict(test_rows)}
    predictions |= {name: floor.predict(test_rows) for name, floor in naive_floors(through).items()}
    metrics = pd.concat([evaluation.evaluate(n, p, test_rows, cluster_ids) for n, p in predictions.items()])
    decision = evaluation.decide(metrics, ["xgboost", "deep"], None, evaluation.GatePolicy())
    overall = metrics[(metrics["slice"] == "all") & (metrics["target"] == "clicks")].set_index("model")
    champion = overall.loc[decision.champion].copy()
    champion.name = f"champion ({decision.champion})"
    table = pd.concat([overall, champion.to_frame().T])
    floor = overall.loc["naive_28d", "poisson_deviance"]
    table["vs naive_28d"] = (table["poisson_deviance"] / floor - 1).map(lambda v: f"{v:+.1%}")
    print(table[["poisson_deviance", "mae", "rmse", "wape", "calibration", "vs naive_28d"]].round(3)
          .to_markdown())
    print(f"\ngate: {' '.join(decision.reasons)}")
    print(f"bar: champion must be ≤ {0.8 * floor:.3f} (20% below naive_28d): "
          f"{'met' if champion['poisson_deviance'] <= 0.8 * floor else 'NOT met'}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
