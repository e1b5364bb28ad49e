"""The served champion on keywords the models never saw, on the real AdWords sample (issue #27, item 5).

The keywords are split, seeded, into three parts. For each part, the champion pipeline (clusters, candidates, blend,
gate, refit) runs without it, as the platform runs it on 2013-01-30 with its default window (56 training days, 7
validation days, 7 holdout days) and the candidates' default parameters, and the served refit forecasts that part's
clicks on the 60 test days 2013-01-31...2013-03-31, one day ahead (as `benchmarks/real_data_models.py
--unseen-keywords 0.3` does with its longer window). Pooled over the parts, every keyword is forecast by a champion
that never saw it: those forecasts must add up to the real clicks within 5%. (One random part alone is a noisier
judge: its total swings by several percent with the few large keywords it happens to hold.)

Skipped when the data file (`../shared/data/adwords_keywords.csv.gz`, never copied into the repo) is absent.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "adwords_keywords.csv.gz"
THROUGH = dt.date(2013, 1, 30)  # the platform runs on this day: outcomes through it
LAST_OUTCOME = dt.date(2013, 3, 31)
FOLDS, SPLIT_SEED = 3, 0
PROFILE_DAYS = 56  # report days the keyword clusters profile (assets.models.ClusterConfig.profile_days)
CALIBRATION_TOLERANCE = 0.05

pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason=f"the real AdWords sample is not here ({DATA}): nothing to split by keyword"
)


def test_the_served_champion_is_calibrated_on_keywords_it_never_saw():
    import pyarrow.fs as pafs

    from daily_bids.features.keyword_features import LOOKBACK_DAYS, compute_features
    from daily_bids.features.windows import days_between, plan_training_window
    from daily_bids.ingest.landing import read_landing_file
    from daily_bids.ingest.validation import validate_report
    from daily_bids.models.naive_model import naive_floors
    from daily_bids.models.xgboost_model import regression_metrics, training_frame

    window = plan_training_window(THROUGH - dt.timedelta(days=200), THROUGH)  # the platform's default window
    first_feature_day = window.training_feature_days[0]
    report_start = first_feature_day - dt.timedelta(days=LOOKBACK_DAYS - 1)  # full 28-day windows from there on

    raw = read_landing_file(pafs.LocalFileSystem(), str(DATA))
    raw = raw[(raw["date"].dt.date >= report_start) & (raw["date"].dt.date <= LAST_OUTCOME)]
    report_days = days_between(report_start, LAST_OUTCOME)
    reports = validate_report(raw.reset_index(drop=True), report_days).valid
    frame = training_frame(compute_features(reports, report_days[:-1]), reports)
    frame = frame[frame["date"].dt.date >= first_feature_day].reset_index(drop=True)

    # Every keyword is unseen once: FOLDS seeded parts, the pipeline run once per part on the others.
    keywords = np.random.default_rng(SPLIT_SEED).permutation(np.sort(reports["keyword_id"].unique()))
    dates = frame["date"].dt.date
    test = frame[(dates >= THROUGH) & (dates < LAST_OUTCOME)].reset_index(drop=True)
    predicted = np.full(len(test), np.nan)
    for unseen in np.array_split(keywords, FOLDS):
        served = served_champion(
            frame[~frame["keyword_id"].isin(unseen)].reset_index(drop=True),
            reports[~reports["keyword_id"].isin(unseen)].reset_index(drop=True),
            window,
        )
        rows = test["keyword_id"].isin(unseen).to_numpy()
        predicted[rows] = served.predict(test[rows])["expected_clicks"].to_numpy()

    actual = test["clicks"].to_numpy(dtype="float64")
    scores = regression_metrics(actual, predicted)
    floor = regression_metrics(actual, naive_floors(THROUGH)["naive_28d"].predict(test)["expected_clicks"].to_numpy())
    assert not np.isnan(predicted).any() and test["keyword_id"].nunique() == len(keywords) == 452
    assert abs(scores["calibration"] - 1) <= CALIBRATION_TOLERANCE, scores
    assert scores["poisson_deviance"] < 0.8 * floor["poisson_deviance"], (scores, floor)  # and a real forecast


def served_champion(frame, reports, window):
    """What the champion pipeline of assets/models.py serves after a run on `window.train_through`, from these
    features (with next-day outcomes) and reports: clusters, candidates, blend, gate, refit."""
    from daily_bids.features.windows import TrainingWindow
    from daily_bids.models import evaluation
    from daily_bids.models.blend_model import fit_blend
    from daily_bids.models.clustering import behaviour_profiles, fit_clusters
    from daily_bids.models.deep_model import DeepParameters, train_deep
    from daily_bids.models.naive_model import naive_floors
    from daily_bids.models.refit import refit
    from daily_bids.models.xgboost_model import TrainingParameters, train

    quiet = lambda _: None  # noqa: E731
    feature_days, report_days = frame["date"].dt.date, reports["date"].dt.date

    def rows(days):
        return frame[feature_days.isin(set(days))].reset_index(drop=True)

    profile_days = {window.candidate_through - dt.timedelta(days=n) for n in range(PROFILE_DAYS)}
    clusters = fit_clusters(behaviour_profiles(reports[report_days.isin(profile_days)]))
    candidate_rows = rows(window.training_feature_days)
    sizes = {"training_days": window.training_days, "validation_days": window.validation_days}
    candidates = {
        "xgboost": train(candidate_rows, window.candidate_through, TrainingParameters(**sizes), quiet),
        "deep": train_deep(candidate_rows, clusters, window.candidate_through, DeepParameters(**sizes), quiet),
    }
    candidates["blend"] = fit_blend(candidates, rows(window.validation_feature_days))
    holdout = rows(window.holdout_feature_days)
    verdict = evaluation.run_gate(
        candidates,
        None,
        holdout,
        clusters.cluster_of(holdout["keyword_id"]),
        naive_floors(window.candidate_through),
        evaluation.GatePolicy(),
    )
    through = window.train_through
    served = refit(
        verdict.chosen,
        lambda days: rows(TrainingWindow(through, days, holdout_days=0).training_feature_days),
        through,
        quiet,
    )
    return verdict.chosen if served is None else served
