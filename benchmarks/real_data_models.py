"""Real-data bar: next-day clicks on the real AdWords sample (impressions and clicks only), the platform's way.

    .venv/bin/python benchmarks/real_data_models.py [--csv ../shared/data/adwords_keywords.csv.gz]
        [--validation-days 28] [--training-days 0] [--tune-trials 0] [--tune-timeout 300] [--retrain-every 0]
        [--seed 0] [--unseen-keywords 0.3] [--split-seed 0]

The test period is the last 60 days (outcome days 2013-01-31...2013-03-31), each day scored one day ahead from the
actual history. Nothing that picks or fits a model sees it: the benchmark runs the champion pipeline of
`assets/models.py` as if it ran on 2013-01-30 (outcomes through that day), with the platform's own windows
(`daily_bids.features.windows.plan_training_window`):

1. Candidates. XGBoost and the wide & deep model train on the feature days before the gate's holdout (outcomes
   through 2013-01-23), early-stopping on their last `--validation-days` (28 as before; the platform's default is
   7). `--training-days 0` takes every day with full 28-day feature windows (as before); the platform's default is
   56. With `--tune-trials N`, `tuning.tune` first runs an Optuna study per kind on that same training frame
   (validated on its last validation days only) and the candidates train with the best parameters, as the platform
   merges stored tuning results into the next training; the untuned models are shown beside them. The keyword
   clusters (the deep model's embedding, the gate's slices) profile the 56 report days through 2013-01-23, as the
   `keyword_clusters` asset does (before: every report day before the test period).
2. The blend (`blend.fit_blend`): its weight fit on the candidates' validation days, never on the holdout or test.
3. The gate (`evaluation.run_gate`, default `GatePolicy`, no incumbent): the candidates, the blend and the naive
   floors judged on the platform's holdout, the last `windows.HOLDOUT_DAYS` (7) feature days before the test period
   (outcomes 2013-01-24...2013-01-30). This is the honest mirror of the platform: an earlier version of this script
   judged the candidates on the test period itself, so its champion was picked on the data it was then scored on.
4. The refit (`refit.refit`): the gate's winner retrained with the rounds or epochs its early stopping chose, on a
   window of the same length moved on to the last day before the test period (outcomes through 2013-01-30), with no
   day held out. That refit is what the platform serves.

Every model is then scored on the test period. The table shows the naive floors, every candidate (and the tuned
ones), the blend with its weight, the champion as the gate judged it, and the champion as served (its refit): models
frozen on 2013-01-23 (the candidates, the judged champion) or 2013-01-30 (the served refit) and scored for 60 days.
The platform does not serve one model for 60 days: it retrains when its model is `BIDS_MODEL_MAX_AGE_DAYS` (7) days
old. `--retrain-every N` adds that row: the whole pipeline above (clusters, candidates with the first run's
parameters, tuned ones included, blend, gate against the serving champion as incumbent, refit of a new winner)
reruns through every Nth day of the test period, and each block of N test days is scored by the champion served the
day before it. A champion that keeps serving is refit too, and judged as the platform judges it (a refit that saw
the holdout's days by the model judged before it), as the platform does.

`--unseen-keywords F` also splits by keyword: a seeded share F of the keywords (`--split-seed`) is held out of every
step above (clustering, candidates, blend, gate, refit); their features are still computed from the account's
reports, as they would be for a keyword added to a live account. Every model is then scored on the test days of the
seen and of the unseen keywords separately, and the served champion's calibration on the unseen keywords is held to
the same 1 ± 0.05.
"""

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from daily_bids.features.keyword_features import compute_features
from daily_bids.features.windows import TrainingWindow, plan_training_window
from daily_bids.ingest.landing import read_landing_file
from daily_bids.ingest.validation import validate_report
from daily_bids.models import evaluation
from daily_bids.models.blend_model import fit_blend
from daily_bids.models.clustering import KeywordClusters, behaviour_profiles, fit_clusters
from daily_bids.models.deep_model import DeepParameters, train_deep
from daily_bids.models.naive_model import naive_floors
from daily_bids.models.refit import refit
from daily_bids.models.tuning import TuningBudget, tune
from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
from daily_bids.settings import Settings

FIRST_OUTCOME = dt.date(2013, 1, 31)
LAST_OUTCOME = dt.date(2013, 3, 31)
DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "adwords_keywords.csv.gz"
FULL_WINDOW_DAYS = 28  # feature days before this many report days have partial 28-day windows: not trained on
PROFILE_DAYS = 56  # report days the keyword clusters profile (assets.models.ClusterConfig.profile_days default)
ALL_HISTORY = 10**6  # --training-days 0: every day there is (plan_training_window caps it at the history)
COLUMNS = ["poisson_deviance", "mae", "rmse", "wape", "calibration"]
DEVIANCE_BAR, CALIBRATION_BAR = 0.80, 0.05  # the bar the served champion is held to
DEEP_EPOCHS, DEEP_PATIENCE = 40, 5  # the deep model's early-stopping budget, as before


def split_keywords(keyword_ids, share: float, seed: int) -> set:
    """A seeded `share` of the distinct `keyword_ids`: the keywords no step of the pipeline sees."""
    distinct = np.sort(pd.unique(np.asarray(keyword_ids)))
    count = int(round(len(distinct) * share))
    return set(np.random.default_rng(seed).choice(distinct, size=count, replace=False).tolist()) if count else set()


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


@dataclass
class PlatformRun:
    """One run of the champion pipeline for outcomes through `through`: what `assets/models.py` would do that day."""

    through: dt.date
    window: TrainingWindow
    clusters: KeywordClusters
    models: dict  # every model trained (the untuned ones too, when tuned), and the blend, by name
    parameters: dict  # kind -> the parameters the candidates trained with (tuned, if tuned)
    verdict: evaluation.GateVerdict
    served: object  # the refit of the gate's winner, or the incumbent that keeps serving
    served_note: str
    tuning_notes: list[str] = field(default_factory=list)


class Platform:
    """The champion pipeline on the benchmark's feature frame, for any day: windows, clusters, candidates, tuning,
    blend, gate and refit, each by the product's own function."""

    def __init__(self, frame: pd.DataFrame, reports: pd.DataFrame, history_start: dt.date, args):
        self.frame, self.reports, self.history_start, self.args = frame, reports, history_start, args
        self.feature_days = frame["date"].dt.date
        self.report_days = reports["date"].dt.date

    def rows(self, days: list[dt.date]) -> pd.DataFrame:
        return self.frame[self.feature_days.isin(set(days))].reset_index(drop=True)

    def run(
        self,
        through: dt.date,
        previous: PlatformRun | None = None,
        parameters: dict | None = None,
        budget: TuningBudget | None = None,
    ) -> PlatformRun:
        args = self.args
        window = plan_training_window(
            self.history_start, through, args.training_days or ALL_HISTORY, args.validation_days
        )
        # As ModelStore.incumbent_for: a served refit that trained on this holdout's days is judged as the model the
        # gate judged before refitting it.
        incumbent = None
        if previous is not None:
            first_outcome_day = window.holdout_feature_days[0] + dt.timedelta(days=1)
            incumbent = (
                previous.verdict.chosen if previous.served.trained_through >= first_outcome_day else previous.served
            )
        candidate_rows, holdout_rows = self.rows(window.training_feature_days), self.rows(window.holdout_feature_days)
        profile_days = {window.candidate_through - dt.timedelta(days=n) for n in range(PROFILE_DAYS)}
        clusters = fit_clusters(behaviour_profiles(self.reports[self.report_days.isin(profile_days)]))
        sizes = {"training_days": window.training_days, "validation_days": window.validation_days}
        if parameters is None:  # the first run: the benchmark's settings (then tuned, if asked)
            parameters = {
                "xgboost": TrainingParameters(**sizes, seed=args.seed),
                "deep": DeepParameters(**sizes, epochs=DEEP_EPOCHS, patience=DEEP_PATIENCE, seed=args.seed),
            }
        else:  # a later run: the same parameters (tuned ones stay stored), on this run's window
            parameters = {kind: type(p)(**{**p.model_dump(), **sizes}) for kind, p in parameters.items()}

        def trained(kind: str, kind_parameters):
            if kind == "xgboost":
                return train(candidate_rows, window.candidate_through, kind_parameters, log)
            return train_deep(candidate_rows, clusters, window.candidate_through, kind_parameters, log)

        models = {kind: trained(kind, kind_parameters) for kind, kind_parameters in parameters.items()}
        candidates, notes = dict(models), []
        if budget is not None:
            for kind, base in list(parameters.items()):
                tuning_started = time.perf_counter()
                result = tune(
                    kind,
                    candidate_rows,
                    window.candidate_through,
                    base,
                    budget,
                    clusters=clusters if kind == "deep" else None,
                    log=log,
                    on_trial=lambda n, p, v, s, kind=kind: log(f"{kind} trial {n}: {v:.4f} in {s:.0f} s {p}"),
                )
                parameters[kind] = type(base)(**{**base.model_dump(), **result.best_parameters})
                # Trial 0 is the base: when it wins, the tuned model is the untuned one (same data and seed).
                candidates[kind] = models[kind] if parameters[kind] == base else trained(kind, parameters[kind])
                models[f"{kind} (tuned)"] = candidates[kind]
                notes.append(
                    f"{kind}: {len(result.trials)} trials in {time.perf_counter() - tuning_started:.0f} s, "
                    f"validation deviance {result.best_value:.4f} (untuned {result.baseline_value:.4f}), "
                    f"best {result.best_parameters}"
                )

        candidates["blend"] = models["blend"] = fit_blend(candidates, self.rows(window.validation_feature_days))
        verdict = evaluation.run_gate(
            candidates,
            incumbent,
            holdout_rows,
            clusters.cluster_of(holdout_rows["keyword_id"]),
            naive_floors(window.candidate_through),
            evaluation.GatePolicy(),
        )
        # As the platform's _serve: the winner, a new one or the champion that keeps serving, is refit.
        kept = "kept serving, " if verdict.decision.champion == verdict.incumbent else ""
        served = refit(
            verdict.chosen,
            lambda days: self.rows(TrainingWindow(through, days, holdout_days=0).training_feature_days),
            through,
            log,
        )
        if served is None:
            return PlatformRun(
                through,
                window,
                clusters,
                models,
                parameters,
                verdict,
                verdict.chosen,
                "not refittable: served as judged",
                notes,
            )
        return PlatformRun(
            through,
            window,
            clusters,
            models,
            parameters,
            verdict,
            served,
            f"{kept}refit through {served.trained_through}",
            notes,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument(
        "--validation-days",
        type=int,
        default=28,
        help="last training days the candidates early-stop on (and the blend weighs on)",
    )
    parser.add_argument("--training-days", type=int, default=0, help="candidate training days; 0: all history")
    parser.add_argument("--tune-trials", type=int, default=0, help="Optuna trials per kind; 0: no tuning")
    parser.add_argument("--tune-timeout", type=float, default=300.0, help="no trial of a kind starts after this")
    parser.add_argument(
        "--retrain-every",
        type=int,
        default=0,
        help="also rerun the whole pipeline every N days of the test period (the platform retrains "
        f"when its model is {Settings().model_max_age_days} days old); 0: no",
    )
    parser.add_argument(
        "--unseen-keywords",
        type=float,
        default=0.0,
        help="share of keywords held out of every clustering, training, blending, gate and refit step, and scored "
        "apart on the test days; 0: no keyword split",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="the seed that picks the unseen keywords")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the candidates' seed (XGBoost's sampling, the deep model's initialisation): the spread "
        "over seeds says how much of a difference between two runs is noise",
    )
    args = parser.parse_args()
    started = time.perf_counter()

    raw = read_landing_file(pafs.LocalFileSystem(), str(args.csv.resolve()))
    days = sorted(raw["date"].dt.date.unique())
    reports = validate_report(raw, days).valid
    frame = training_frame(compute_features(reports, days[:-1]), reports)
    unseen = split_keywords(reports["keyword_id"], args.unseen_keywords, args.split_seed)
    platform = Platform(
        frame[~frame["keyword_id"].isin(unseen)].reset_index(drop=True),
        reports[~reports["keyword_id"].isin(unseen)].reset_index(drop=True),
        days[0] + dt.timedelta(days=FULL_WINDOW_DAYS - 1),
        args,
    )

    # The platform run on 2013-01-30: holdout, then the candidates' training and validation days before it.
    through = FIRST_OUTCOME - dt.timedelta(days=1)
    budget = (
        TuningBudget(trials=args.tune_trials, timeout_seconds=args.tune_timeout, seed=0) if args.tune_trials else None
    )
    first = platform.run(through, budget=budget)
    window, verdict, served, clusters = first.window, first.verdict, first.served, first.clusters
    feature_days = frame["date"].dt.date
    test_rows = frame[(feature_days >= through) & (feature_days < LAST_OUTCOME)].reset_index(drop=True)
    print(
        f"{len(reports):,} report rows. Candidates: {window.describe()}, the last {window.validation_days} "
        f"validation days; {len(platform.rows(window.training_feature_days)):,} rows. "
        f"Refit: {window.serving().describe()}. "
        f"Test: outcomes {FIRST_OUTCOME}...{LAST_OUTCOME}, {len(test_rows):,} rows."
        + (
            f" Unseen keywords: {len(unseen)} of {reports['keyword_id'].nunique()} (split seed {args.split_seed}), "
            "held out of every step and scored apart."
            if unseen
            else ""
        )
    )

    # Every model scored on the test period.
    floors = naive_floors(window.candidate_through)
    blend, champion = first.models["blend"], verdict.decision.champion
    weights = ", ".join(f"{name} {weight:.2f}" for name, weight in blend.weights.items())
    labels = {
        "xgboost": "XGBoost",
        "deep": "deep (wide & deep)",
        "xgboost (tuned)": "XGBoost (tuned)",
        "deep (tuned)": "deep (wide & deep, tuned)",
        "blend": f"blend ({weights})",
    }
    scored = {"naive 7-day mean": floors["naive_7d"], "naive 28-day mean": floors["naive_28d"]}
    scored |= {labels[name]: model for name, model in first.models.items()}
    scored[f"champion as judged ({champion}, through {verdict.chosen.trained_through})"] = verdict.chosen
    served_label = f"**champion as served** ({champion} {first.served_note})"
    predictions = {name: model.predict(test_rows) for name, model in scored.items()}
    predictions[served_label] = served.predict(test_rows)
    for name, component in getattr(served, "components", {}).items():  # a served blend: each refit component alone
        predictions[f"served {name} component (refit through {component.trained_through})"] = component.predict(
            test_rows
        )
    bar_rows = [served_label]

    if args.retrain_every:  # the platform moving on: each block of test days scored by the run the day before it
        walk_label = f"**champion as served, retrained every {args.retrain_every} days**"
        walked = predictions[served_label].copy()
        test_days = test_rows["date"].dt.date
        run, walk_notes = first, []
        for start in range(args.retrain_every, (LAST_OUTCOME - through).days, args.retrain_every):
            day = through + dt.timedelta(days=start)
            run = platform.run(day, previous=run, parameters=run.parameters)
            block = (test_days >= day).to_numpy()
            walked.loc[block] = run.served.predict(test_rows.loc[block]).to_numpy()
            walk_notes.append(f"{day}: {run.verdict.decision.champion} {run.served_note}")
        predictions[walk_label] = walked
        bar_rows.append(walk_label)

    is_unseen = test_rows["keyword_id"].isin(unseen).to_numpy()
    groups = {"": np.ones(len(test_rows), dtype=bool)}
    if unseen:
        groups = {"seen keywords": ~is_unseen, "unseen keywords": is_unseen}
    tables = {group: scored_table(predictions, test_rows, mask, clusters) for group, mask in groups.items()}
    for group, group_table in tables.items():
        group_table.index.name = f"test{', ' + group if group else ''}: outcomes {FIRST_OUTCOME}...{LAST_OUTCOME}"
        print()
        print(group_table.round(3).to_markdown())

    gate = verdict.metrics[(verdict.metrics["slice"] == "all") & (verdict.metrics["target"] == "clicks")]
    gate = gate.set_index("model")[["poisson_deviance", "calibration"]]
    gate.index.name = f"gate holdout: outcomes {window.holdout_feature_days[0] + dt.timedelta(days=1)}...{through}"
    print()
    print(gate.round(3).to_markdown())
    print(f"\ngate: {' '.join(verdict.decision.reasons)}")
    for note in first.tuning_notes:
        print(f"tuning {note}")
    print(
        f"blend: weights {weights}, validation clicks deviance "
        f"{blend.validation_metrics['clicks_poisson_deviance']:.4f}"
    )
    print(f"served: {verdict.chosen.version} -> {served.version}")
    if args.retrain_every:
        print("retrained: " + "; ".join(walk_notes))
    for group, table in tables.items():
        floor = table.loc["naive 28-day mean", "poisson_deviance"]
        for label in bar_rows:
            deviance, calibration = table.loc[label, ["poisson_deviance", "calibration"]]
            met = deviance <= DEVIANCE_BAR and abs(calibration - 1) <= CALIBRATION_BAR
            print(
                f"bar ({label.strip('*').split('**')[0].strip()}{', ' + group if group else ''}): deviance ≤ "
                f"{DEVIANCE_BAR} and calibration within 1 ± {CALIBRATION_BAR}: {deviance:.3f}, {calibration:.3f}: "
                f"{'met' if met else 'NOT met'} ({deviance / floor - 1:+.1%} vs the naive 28-day mean)"
            )
    print(f"{time.perf_counter() - started:.0f} s")


def scored_table(
    predictions: dict, test_rows: pd.DataFrame, mask: np.ndarray, clusters: KeywordClusters
) -> pd.DataFrame:
    """Clicks metrics of every model on the test rows in `mask`, with each model's deviance against the naive
    28-day mean's on the same rows."""
    rows = test_rows[mask].reset_index(drop=True)
    metrics = pd.concat(
        [
            evaluation.evaluate(
                name, predicted[mask].reset_index(drop=True), rows, clusters.cluster_of(rows["keyword_id"])
            )
            for name, predicted in predictions.items()
        ]
    )
    table = metrics[(metrics["slice"] == "all") & (metrics["target"] == "clicks")].set_index("model")[COLUMNS]
    floor = table.loc["naive 28-day mean", "poisson_deviance"]
    table["vs naive 28-day mean"] = (table["poisson_deviance"] / floor - 1).map(lambda v: f"{v:+.1%}")
    return table


if __name__ == "__main__":
    main()
