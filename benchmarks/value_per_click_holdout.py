"""Benchmark: what a click is worth, on held-out days: the model's own forecast, the pooled estimate, and both.

    .venv/bin/python benchmarks/value_per_click_holdout.py [--keywords 2000] [--seed 7] [--test-days 28]

On the default simulated account in each auction shape: 90 days of reports at the advertiser's manual bids, the
features, and an XGBoost champion trained on the last 56 feature days before the test days (the platform's own
code). Each test day D is then scored one day ahead, as the platform scores it, from the history through D only:

- `model`: the champion's expected conversion value of D+1, and its value per click as the platform had it before
  the pooled estimate (expected value / expected clicks, shrunk towards the ad group's by one click);
- `pooled`: the value per click of `keyword_value` (`daily_bids.models.value_per_click`, each keyword's whole history
  through D), times each keyword's mean daily clicks over the 28 days through D;
- `model clicks x pooled`: the champion's expected clicks times the pooled value per click, what the bids use.

Judged against the realized conversion value of each keyword on D+1 (root mean squared error per keyword-day, the
error a forecast of the mean minimizes; mean absolute error, which the median minimizes, and most keyword-days earn
nothing; and the ratio of predicted to realized totals), and the value per click against the simulator's true value per click
(click-weighted mean absolute error, and the share of keywords whose estimate is more than 1.5x or less than 1/1.5x
the truth).
"""

import argparse
import datetime as dt

import numpy as np
import pandas as pd

from daily_bids.features.keyword_features import roll
from daily_bids.models.prediction import predict_next_day
from daily_bids.models.value_per_click import add_reports, posterior
from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
from daily_bids.simulator.auctions import MARKETS
from daily_bids.simulator.market import AdMarketSimulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keywords", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-days", type=int, default=28)
    args = parser.parse_args()
    rows = []
    for market in MARKETS:
        print(f"{market}: simulating, training, scoring {args.test_days} held-out days ...", flush=True)
        rows += run(AdMarketSimulator(seed=args.seed, keywords=args.keywords, market=market), args.test_days)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))


def run(simulator: AdMarketSimulator, test_days: int) -> list[dict]:
    first = dt.date(2025, 1, 1)
    all_days = [first + dt.timedelta(days=n) for n in range(90 + test_days + 1)]
    reports = {day: simulator.report(day) for day in all_days}
    features = {day: frame for day, frame, _ in roll(all_days[28:], reports.get, history_start=first)}
    training = [day for day in sorted(features) if day < all_days[89]][-56:]
    frame = training_frame(
        pd.concat([features[d] for d in training]), pd.concat([reports[d + dt.timedelta(days=1)] for d in training])
    )
    model = train(frame, training[-1], TrainingParameters(training_days=56), log=lambda message: None)
    truth = pd.Series(simulator.true_value_per_click, index=simulator.keyword_dimensions["keyword_id"].to_numpy())
    totals = add_reports(None, [reports[day] for day in all_days[:89]])
    scored = []
    for day in all_days[89 : 89 + test_days]:
        totals = add_reports(totals, [reports[day]])
        pooled = posterior(totals)[0].set_index("keyword_id")
        predictions = predict_next_day(features[day], model).set_index("keyword_id")
        recent = pd.concat([reports[day - dt.timedelta(days=n)] for n in range(28)])
        mean_clicks = recent.groupby("keyword_id")["clicks"].sum() / 28.0
        outcome = reports[day + dt.timedelta(days=1)].set_index("keyword_id")
        ids = predictions.index
        scored.append(
            pd.DataFrame(
                {
                    "model_value": predictions["expected_value"],
                    "model_value_per_click": predictions["expected_value_per_click"],
                    "model_clicks": predictions["expected_clicks"],
                    "pooled_value_per_click": pooled["value_per_click"].reindex(ids),
                    "mean_clicks": mean_clicks.reindex(ids).fillna(0.0),
                    "realized_value": outcome["conversion_value"].reindex(ids).fillna(0.0),
                    "realized_clicks": outcome["clicks"].reindex(ids).fillna(0.0),
                    "true_value_per_click": truth.reindex(ids),
                },
                index=ids,
            )
        )
    held_out = pd.concat(scored)
    forecasts = {
        "model": (held_out["model_value"], held_out["model_value_per_click"]),
        "pooled": (held_out["pooled_value_per_click"] * held_out["mean_clicks"], held_out["pooled_value_per_click"]),
        "model clicks x pooled": (
            held_out["pooled_value_per_click"] * held_out["model_clicks"],
            held_out["pooled_value_per_click"],
        ),
    }
    rows = []
    for name, (value, value_per_click) in forecasts.items():
        ratio = value_per_click / held_out["true_value_per_click"]
        rows.append(
            {
                "market": simulator.market,
                "forecast": name,
                "value RMSE per keyword-day": float(np.sqrt(np.mean((value - held_out["realized_value"]) ** 2))),
                "value MAE per keyword-day": float(np.mean(np.abs(value - held_out["realized_value"]))),
                "predicted / realized value": float(value.sum() / held_out["realized_value"].sum()),
                "value per click MAE vs truth (click-weighted)": float(
                    np.average(
                        np.abs(value_per_click - held_out["true_value_per_click"]), weights=held_out["model_clicks"]
                    )
                ),
                "off by more than 1.5x": float(((ratio > 1.5) | (ratio < 1 / 1.5)).mean()),
            }
        )
    return rows


if __name__ == "__main__":
    main()
