"""Benchmark: the model optimisations of issue #12 item 5, each against the plain path it would replace.

    .venv/bin/python benchmarks/model_optimisation.py [--keywords 1000000] [--account 20000]

What it measures, on one scoring day of --keywords rows and on one simulated account's training window:

1. XGBoost as served: the project's three boosters (`model.train`: clicks and conversions Poisson, value Tweedie),
   timed as `model.predict` and as raw `inplace_predict` per booster, with the holdout metrics the champion gate
   compares (`evaluation.evaluate`: clicks' Poisson deviance, calibration, deviance per cluster; conversions too)
   and the value target's deviance and MAE.
2. Option A, one booster for the three targets. XGBoost's multi-target training takes one objective for all the
   targets, so this is Poisson for all three (value included), each target divided by its mean on the fitting days
   (so that no target dominates the shared gain) and multiplied back at predict; one early stopping for all.
   A1: `multi_strategy="one_output_per_tree"` (one tree per target per round, in one booster);
   A2: `multi_strategy="multi_output_tree"` (one vector-leaf tree per round for all three).
3. Option B, conversions and value from rates: the served clicks booster only; expected conversions = expected
   clicks × `conversion_rate_28d`, expected value = expected clicks × `value_per_click_28d` (the smoothed ratios
   of the feature table, not log-scaled; each falls back to its ad group's ratio, then 0).
4. The deep model's cheaper input preparation, the one option kept, as the product now serves it (the scoring
   benchmark's cached bundle if present, else trained here): `model.predict` end to end; its input preparation,
   `model.network_inputs` (daily_bids.models.deep_model's NetworkInputs, shared by training and serving), whole and step by
   step through the steps it exposes (numeric, ad_group, match_type, cluster; the keyword bucket and the day of week
   by difference); the tensors and the compiled network on inputs prepared beforehand, sliced as predict slices
   them; each part's share of `model.predict`. Checked: the timed network path gives predict's outputs (within the
   model's parity tolerance), and NetworkInputs' float32 scaling stays within float32 rounding of the scaler's own
   transform. The parts are timed in turn, --repeats rounds, and each keeps its best wall time.

Training data: --account keywords of the simulator (seed 7), 84 days (manual bids, then two weeks of bids moved by up
to ±20% a week), as benchmarks/scoring_10m.py builds its account; the candidates train on 21 feature days (the last 4
early-stop), and the next 7 feature days are the holdout, as the champion gate holds them out (daily_bids.features.windows).
The account, its frames and the trained boosters are cached in --workdir (--retrain trains again; the training time
shown is the one measured when they were trained). Scoring rows: the scoring benchmark's tiled day in
/tmp/bids-scoring-bench if it has been built for --keywords rows (`benchmarks/scoring_10m.py --keywords N`), else this
account's last feature day tiled in memory. Predictions run in the serving batches (scoring.BATCH_ROWS). The XGBoost
timings go round robin over the models, --repeats rounds, and keep each one's best wall time, so that a neighbour's
load weighs on every model alike; "measured in" is the wall time spent measuring that model.
"""

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

START = dt.date(2025, 1, 1)
HISTORY_DAYS, VARIED_DAYS = 84, 14
TRAINING_DAYS, VALIDATION_DAYS, HOLDOUT_DAYS = 21, 4, 7
SCORING_BENCH = Path("/tmp/bids-scoring-bench")
COPY_STRIDE = 10**8
# "Equal accuracy": no worse than the plain path beyond the gate's own tolerances (evaluation.GatePolicy).
DEVIANCE_TOLERANCE, CALIBRATION_TOLERANCE, CLUSTER_TOLERANCE = 0.01, 0.05, 0.05
TARGETS = ("clicks", "conversions", "conversion_value")
COLUMNS = {"clicks": "expected_clicks", "conversions": "expected_conversions", "conversion_value": "expected_value"}


def log(message: str) -> None:
    print(message, flush=True)


def best_of(repeats: int, fn):
    """(result of the last call, best wall time over `repeats` calls)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


# --- the account, its window and the scoring rows -------------------------------------------------------------


def account(workdir: Path, keywords: int) -> dict:
    """Training frame (21 feature days), holdout frame (7 days), cluster assignments, last feature day; cached."""
    folder = workdir / f"account-{keywords}"
    names = ("train", "holdout", "clusters", "last_day")
    if all((folder / f"{name}.parquet").exists() for name in names):
        log(f"set-up: reusing {folder}")
        data = {name: pd.read_parquet(folder / f"{name}.parquet") for name in names}
        data["k"] = json.loads((folder / "meta.json").read_text())["k"]
        return data
    from daily_bids.features.keyword_features import roll
    from daily_bids.models.clustering import behaviour_profiles, fit_clusters
    from daily_bids.models.xgboost_model import training_frame
    from daily_bids.simulator.market import AdMarketSimulator

    started = time.perf_counter()
    log(f"set-up (not timed): {HISTORY_DAYS} days of a {keywords:,}-keyword account ...")
    reports = AdMarketSimulator(seed=7, keywords=keywords).reports_with_varied_bids(START, HISTORY_DAYS, VARIED_DAYS)
    days = sorted(reports)
    feature_days = days[-(TRAINING_DAYS + HOLDOUT_DAYS + 1) :]  # the last one has no next-day report
    features = {day: frame for day, frame, _ in roll(feature_days, reports.get, history_start=START)}

    def frame(part):
        return training_frame(
            pd.concat([features[d] for d in part], ignore_index=True),
            pd.concat([reports[d + dt.timedelta(days=1)] for d in part], ignore_index=True),
        )

    train_days, holdout_days = feature_days[:TRAINING_DAYS], feature_days[TRAINING_DAYS:-1]
    history = pd.concat([reports[d] for d in days], ignore_index=True)
    candidate_through = train_days[-1] + dt.timedelta(days=1)  # the last outcome the candidates learn from
    profile = history[
        (history["date"] > pd.Timestamp(candidate_through - dt.timedelta(days=28)))
        & (history["date"] <= pd.Timestamp(candidate_through))
    ]
    clusters = fit_clusters(behaviour_profiles(profile))
    data = {
        "train": frame(train_days),
        "holdout": frame(holdout_days),
        "clusters": clusters.assignments,
        "last_day": features[feature_days[-1]],
        "k": clusters.k,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        data[name].to_parquet(folder / f"{name}.parquet")
    (folder / "meta.json").write_text(json.dumps({"k": clusters.k}))
    log(
        f"set-up: {len(data['train']):,} training rows, {len(data['holdout']):,} holdout rows, k={clusters.k}, "
        f"{time.perf_counter() - started:.0f} s"
    )
    return data


def scoring_batches(keywords: int, last_day: pd.DataFrame) -> tuple[list[pd.DataFrame], str]:
    """The day's feature rows in serving batches, read beforehand (reading is not what is measured)."""
    from daily_bids.serving import scoring

    ready = SCORING_BENCH / f"ready-{keywords}.json"
    if ready.exists():
        from daily_bids.storage.warehouse import Warehouse

        day = dt.date.fromisoformat(json.loads(ready.read_text())["day"])
        store = Warehouse(str(SCORING_BENCH / f"warehouse-{keywords}"))
        batches = list(store.iter_partition("keyword_features", day, scoring.BATCH_ROWS))
        return batches, f"{SCORING_BENCH}/warehouse-{keywords} ({day})"
    copies = -(-keywords // len(last_day))
    tiled = pd.concat(
        [last_day.assign(keyword_id=last_day["keyword_id"].to_numpy() + copy * COPY_STRIDE) for copy in range(copies)],
        ignore_index=True,
    ).iloc[:keywords]
    batches = [
        tiled.iloc[start : start + scoring.BATCH_ROWS].reset_index(drop=True)
        for start in range(0, len(tiled), scoring.BATCH_ROWS)
    ]
    return batches, f"this account's last feature day tiled ×{copies}"


# --- accuracy --------------------------------------------------------------------------------------------------


def holdout_metrics(predicted: pd.DataFrame, holdout: pd.DataFrame, cluster: np.ndarray) -> dict:
    """The gate's metrics (evaluation.evaluate) for clicks and conversions, plus the value target's."""
    from daily_bids.models import evaluation
    from daily_bids.models.xgboost_model import regression_metrics

    table = evaluation.evaluate("m", predicted, holdout, cluster)
    out = {}
    for head in ("clicks", "conversions"):
        rows = table[table["target"] == head].set_index("slice")
        out[f"{head}_deviance"] = float(rows.loc["all", "poisson_deviance"])
        out[f"{head}_mae"] = float(rows.loc["all", "mae"])
        out[f"{head}_calibration"] = float(rows.loc["all", "calibration"])
        out[f"{head}_by_cluster"] = rows.drop(index="all")["poisson_deviance"].to_dict()
        out[f"{head}_rows"] = rows.drop(index="all")["rows"].to_dict()
    actual = holdout["conversion_value"].to_numpy(dtype="float64")
    known = ~np.isnan(actual)
    value = regression_metrics(actual[known], predicted["expected_value"].to_numpy(dtype="float64")[known])
    out |= {
        "value_deviance": value["poisson_deviance"],
        "value_mae": value["mae"],
        "value_calibration": value["calibration"],
    }
    return out


def against_plain(option: dict, plain: dict) -> tuple[dict, list[str]]:
    """Relative changes against the plain path, and what moves beyond the tolerances."""
    changes, failures = {}, []
    for name in (
        "clicks_deviance",
        "conversions_deviance",
        "value_deviance",
        "clicks_mae",
        "conversions_mae",
        "value_mae",
    ):
        changes[name] = option[name] / plain[name] - 1
    for name in ("clicks_deviance", "conversions_deviance", "value_deviance"):
        if changes[name] > DEVIANCE_TOLERANCE:
            failures.append(f"{name} {changes[name]:+.1%}")
    for head in ("clicks", "conversions"):
        by_cluster = {
            c: option[f"{head}_by_cluster"][c] / plain[f"{head}_by_cluster"][c] - 1 for c in plain[f"{head}_by_cluster"]
        }
        where = max(by_cluster, key=by_cluster.get)
        worst = by_cluster[where]
        changes[f"{head}_worst_cluster"] = worst
        changes[f"{head}_worst_cluster_detail"] = (
            f"{head}: {where} ({plain[f'{head}_rows'][where]:,} rows), "
            f"deviance {plain[f'{head}_by_cluster'][where]:.4f} → "
            f"{option[f'{head}_by_cluster'][where]:.4f}"
        )
        if worst > CLUSTER_TOLERANCE:
            failures.append(f"{head} worst cluster {worst:+.1%}")
        if abs(option[f"{head}_calibration"] - 1) > abs(plain[f"{head}_calibration"] - 1) + CALIBRATION_TOLERANCE:
            failures.append(f"{head} calibration {option[f'{head}_calibration']:.3f}")
    return changes, failures


# --- XGBoost: the plain path and the options --------------------------------------------------------------------


def train_plain(train_frame: pd.DataFrame, through: dt.date):
    from daily_bids.models.xgboost_model import TrainingParameters, train

    parameters = TrainingParameters(training_days=TRAINING_DAYS, validation_days=VALIDATION_DAYS)
    return train(train_frame, through, parameters, log=lambda message: log(f"    {message}"))


def train_one_booster(train_frame: pd.DataFrame, plain, strategy: str):
    """One booster for the three targets, Poisson for all (XGBoost's multi-target training takes one objective),
    each target divided by its mean on the fitting days; the plain model's split, scaler and hyperparameters."""
    import xgboost as xgb

    from daily_bids.features.keyword_features import FEATURE_NAMES
    from daily_bids.schema import as_day

    p = plain.parameters
    days = np.sort(as_day(train_frame["date"]).unique())
    is_validation = as_day(train_frame["date"]).isin(days[-p["validation_days"] :]).to_numpy()
    fit, holdout = train_frame.loc[~is_validation], train_frame.loc[is_validation]
    labels = {
        name: part.loc[:, list(TARGETS)].to_numpy(dtype="float64")
        for name, part in (("fit", fit), ("validation", holdout))
    }
    if any(np.isnan(values).any() for values in labels.values()):
        raise ValueError("a multi-target booster needs every target on every row (XGBoost's labels are dense)")
    means = labels["fit"].mean(axis=0)
    sets = {
        name: xgb.DMatrix(plain.scaler.transform(part), label=labels[name] / means, feature_names=list(FEATURE_NAMES))
        for name, part in (("fit", fit), ("validation", holdout))
    }
    booster = xgb.train(
        {
            "objective": "count:poisson",
            "multi_strategy": strategy,
            "tree_method": "hist",
            "max_depth": p["max_depth"],
            "eta": p["learning_rate"],
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "min_child_weight": 5.0,
            "seed": p["seed"],
            "nthread": 2,
            "eval_metric": "poisson-nloglik",
        },
        sets["fit"],
        num_boost_round=p["n_estimators"],
        evals=[(sets["validation"], "validation")],
        early_stopping_rounds=p["early_stopping_rounds"],
        verbose_eval=False,
    )
    return booster[: booster.best_iteration + 1], means


class OneBoosterModel:
    """Option A as a served model: one pass of one booster gives the three predictions."""

    def __init__(self, booster, means, scaler):
        self.booster, self.means, self.scaler = booster, means, scaler

    def raw(self, matrix):
        return self.booster.inplace_predict(matrix)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        values = np.asarray(self.raw(self.scaler.transform(features)), dtype="float64") * self.means
        return pd.DataFrame({COLUMNS[t]: values[:, i] for i, t in enumerate(TARGETS)}, index=features.index)


def rate(features: pd.DataFrame, name: str) -> np.ndarray:
    own = features[f"{name}_28d"].to_numpy(dtype="float64")
    group = features[f"ad_group_{name}_28d"].to_numpy(dtype="float64")
    return np.nan_to_num(np.where(np.isnan(own), group, own))


class RatesModel:
    """Option B as a served model: the clicks booster, then conversions and value from the keyword's rates."""

    def __init__(self, plain):
        self.booster, self.scaler = plain.boosters["clicks"], plain.scaler

    def raw(self, matrix):
        return self.booster.inplace_predict(matrix)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        clicks = np.asarray(self.raw(self.scaler.transform(features)), dtype="float64")
        return pd.DataFrame(
            {
                "expected_clicks": clicks,
                "expected_conversions": clicks * rate(features, "conversion_rate"),
                "expected_value": clicks * rate(features, "value_per_click"),
            },
            index=features.index,
        )


def time_xgboost(models: dict, batches: list[pd.DataFrame], repeats: int) -> dict:
    """model.predict over the batches, the raw booster pass(es) on matrices scaled beforehand, and the scaling, for
    every model in turn, `repeats` rounds (round robin: a neighbour's load weighs on every model alike); best kept."""
    matrices = [models[next(iter(models))].scaler.transform(batch) for batch in batches]  # one scaler for all
    calls = {}
    for name, model in models.items():
        model.predict(batches[0])  # warm-up: first-call costs are not what is measured
        if hasattr(model, "boosters"):  # the served KeywordModel: one pass per booster
            raw = lambda model=model: [b.inplace_predict(m) for m in matrices for b in model.boosters.values()]  # noqa: E731
        else:
            raw = lambda model=model: [model.raw(m) for m in matrices]  # noqa: E731
        calls[name] = {
            "predict": lambda model=model: [model.predict(batch) for batch in batches],
            "raw": raw,
            "scaling": lambda model=model: [model.scaler.transform(batch) for batch in batches],
        }
    best = {name: {what: float("inf") for what in ("predict", "raw", "scaling")} | {"measure": 0.0} for name in models}
    for _ in range(repeats):
        for name, what_calls in calls.items():
            for what, call in what_calls.items():
                started = time.perf_counter()
                call()
                seconds = time.perf_counter() - started
                best[name][what] = min(best[name][what], seconds)
                best[name]["measure"] += seconds
    for name, timing in best.items():
        log(
            f"  {name}: model.predict {timing['predict']:.2f} s, raw {timing['raw']:.2f} s, "
            f"scaling {timing['scaling']:.2f} s"
        )
    return best


def trees(booster) -> int:
    return len(booster.get_dump())


# --- the deep model: the product's input preparation, its network and its predict -------------------------------


def deep_model(data: dict, through: dt.date):
    bundle = SCORING_BENCH / "deep.bundle"
    from daily_bids.models.deep_model import DeepKeywordModel, DeepParameters, train_deep

    if bundle.exists():
        return DeepKeywordModel.from_bytes(bundle.read_bytes()), f"cached {bundle}"
    from daily_bids.models.clustering import KeywordClusters

    clusters = KeywordClusters(data["clusters"], pd.DataFrame(), data["k"], {})
    model = train_deep(
        data["train"],
        clusters,
        through,
        DeepParameters(epochs=8, validation_days=VALIDATION_DAYS),
        log=lambda message: log(f"    {message}"),
    )
    return model, "trained here on the account's window"


# The steps NetworkInputs exposes as methods, called as its __call__ calls them. The other two inputs (the keyword's
# hash bucket, the day of week) are one expression each inside __call__: the report shows them by difference.
PREPARATION_STEPS = ("numeric", "ad_group", "match_type", "cluster")


def preparation_steps(prepare, features: pd.DataFrame) -> dict:
    """Seconds of each of NetworkInputs' own steps on one batch."""
    calls = {
        "numeric": lambda: prepare.numeric(features),
        "ad_group": lambda: prepare.ad_group(features["ad_group"]),
        "match_type": lambda: prepare.match_type(features["match_type"]),
        "cluster": lambda: prepare.cluster(features["keyword_id"].to_numpy(dtype="int64")),
    }
    steps = {}
    for name in PREPARATION_STEPS:
        started = time.perf_counter()
        calls[name]()
        steps[name] = time.perf_counter() - started
    return steps


def network_outputs(model, inputs: dict, n: int) -> tuple[dict, float, float]:
    """The compiled network over SCORING_BATCH slices of prepared inputs, as DeepKeywordModel.predict runs it:
    (outputs per head, seconds to make the tensors, seconds in the network)."""
    import tensorflow as tf

    from daily_bids.models.deep_model import HEADS, SCORING_BATCH

    tensors = network = 0.0
    outputs = {head: [] for head in HEADS}
    for start in range(0, n, SCORING_BATCH):
        started = time.perf_counter()
        batch = {name: tf.constant(values[start : start + SCORING_BATCH]) for name, values in inputs.items()}
        tensors += time.perf_counter() - started
        started = time.perf_counter()
        result = model._scorer(batch)
        for head in HEADS:
            outputs[head].append(np.asarray(result[head]).reshape(-1))
        network += time.perf_counter() - started
    return {head: np.concatenate(parts) for head, parts in outputs.items()}, tensors, network


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """As scoring.parity_report measures it: |a − b| / max(|a|, |b|, 1e-6); NaN on both sides counts as equal."""
    both_null = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        relative = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-6)
    relative = np.where(both_null, 0.0, np.where(np.isnan(a) != np.isnan(b), np.inf, relative))
    return float(np.max(relative)) if relative.size else 0.0


def measure_deep(model, batches: list[pd.DataFrame], repeats: int) -> dict:
    """model.predict end to end, its input preparation (model.network_inputs: whole, and step by step) and its
    compiled network on inputs prepared beforehand, `repeats` rounds in turn (a neighbour's load weighs on each
    alike); the best of each kept."""
    from daily_bids.models.deep_model import NetworkInputs

    for batch in batches:  # builds the scorer, and compiles every batch shape before any clock starts
        model.predict(batch)
    prepare = model.network_inputs  # the instance predict uses (built once per model)
    buckets = model.parameters["keyword_buckets"]
    _, build_seconds = best_of(repeats, lambda: NetworkInputs(model.scaler, model.clusters, buckets))
    prepared = [prepare(batch) for batch in batches]  # what the network alone is timed on

    def preparation():
        return [prepare(batch) for batch in batches]

    def steps():
        totals = dict.fromkeys(PREPARATION_STEPS, 0.0)
        for batch in batches:
            for name, seconds in preparation_steps(prepare, batch).items():
                totals[name] += seconds
        return totals

    def network():
        outputs, tensors, seconds = [], 0.0, 0.0
        for inputs, batch in zip(prepared, batches):
            result, batch_tensors, batch_seconds = network_outputs(model, inputs, len(batch))
            outputs.append(result)
            tensors += batch_tensors
            seconds += batch_seconds
        return outputs, tensors, seconds

    best = dict.fromkeys(("predict", "preparation", "tensors", "network", *PREPARATION_STEPS), float("inf"))
    served = outputs = None
    for _ in range(repeats):
        served, seconds = best_of(1, lambda: [model.predict(batch) for batch in batches])
        best["predict"] = min(best["predict"], seconds)
        _, seconds = best_of(1, preparation)
        best["preparation"] = min(best["preparation"], seconds)
        for name, seconds in steps().items():
            best[name] = min(best[name], seconds)
        outputs, tensors, seconds = network()
        best["tensors"], best["network"] = min(best["tensors"], tensors), min(best["network"], seconds)

    # The timed network path must be predict's own: its outputs against predict's, on every row, for each head the
    # model was trained for (predict leaves any other head null).
    from daily_bids.models.xgboost_model import PREDICTION_COLUMNS

    heads = [head for head in outputs[0] if head in getattr(model, "trained_heads", outputs[0])]
    differences = {
        PREDICTION_COLUMNS[head]: relative_difference(
            pd.concat([p[PREDICTION_COLUMNS[head]] for p in served]).to_numpy(dtype="float64"),
            np.concatenate([o[head] for o in outputs]).astype("float64"),
        )
        for head in heads
    }
    # NetworkInputs' float32 scaling against the scaler's own float64 transform (nulls as 0), on the first batch.
    reference = np.nan_to_num(model.scaler.transform(batches[0], clip_to_fitted_range=True), nan=0.0)
    numeric_difference = relative_difference(reference.astype("float64"), prepared[0]["numeric"].astype("float64"))
    return best | {
        "build": build_seconds,
        "network_vs_predict": differences,
        "numeric_vs_scaler": numeric_difference,
        "parity_tolerance": model.parity_tolerance,
    }


# --- the report --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keywords", type=int, default=1_000_000, help="scoring rows (at most 1M advised)")
    parser.add_argument("--account", type=int, default=20_000, help="keywords of the simulated training account")
    parser.add_argument("--repeats", type=int, default=3, help="passes per timing; the best is kept")
    parser.add_argument("--workdir", default="/tmp/bids-model-optimisation")
    parser.add_argument("--retrain", action="store_true", help="train again instead of reusing --workdir's models")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a1,a2,deep")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()

    data = account(workdir, args.account)
    train_frame, holdout = data["train"], data["holdout"]
    through = pd.Timestamp(train_frame["date"].max()).date()
    lookup = pd.Series(data["clusters"]["cluster"].to_numpy(), index=data["clusters"]["keyword_id"].to_numpy())
    holdout_cluster = lookup.reindex(holdout["keyword_id"].to_numpy()).fillna(-1).to_numpy(dtype="int64")
    batches, source = scoring_batches(args.keywords, data["last_day"])
    rows = sum(len(b) for b in batches)
    log(
        f"scoring rows: {rows:,} from {source}, {len(batches)} batches; training {len(train_frame):,} rows, "
        f"holdout {len(holdout):,} rows"
    )

    results = {}  # name -> dict(train, trees, metrics, and the timing below)
    models = {}
    cache = workdir / f"models-{args.account}"
    cache.mkdir(exist_ok=True)

    def option(name, key, fit, save, load, make_model, tree_count):
        meta = cache / f"{key}.json"
        if meta.exists() and not args.retrain:
            fitted, train_seconds = load(cache / key), json.loads(meta.read_text())["train_seconds"]
            log(f"{name}: reusing {cache / key} (trained in {train_seconds:.0f} s)")
        else:
            log(f"{name}: training ...")
            started = time.perf_counter()
            fitted = fit()
            train_seconds = time.perf_counter() - started
            if save:
                save(fitted, cache / key)
                meta.write_text(json.dumps({"train_seconds": train_seconds}))
        model = make_model(fitted)
        metrics = holdout_metrics(model.predict(holdout), holdout, holdout_cluster)
        results[name] = {"train": train_seconds, "trees": tree_count(fitted), "metrics": metrics}
        models[name] = model
        return fitted

    from daily_bids.models.xgboost_model import KeywordModel

    def save_booster(fitted, path):
        path.with_suffix(".ubj").write_bytes(bytes(fitted[0].save_raw("ubj")))
        np.save(path.with_suffix(".npy"), fitted[1])

    def load_booster(path):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(path.with_suffix(".ubj").read_bytes()))
        return booster, np.load(path.with_suffix(".npy"))

    plain = option(
        "served: 3 boosters",
        "plain",
        lambda: train_plain(train_frame, through),
        lambda m, path: path.with_suffix(".bundle").write_bytes(m.to_bytes()),
        lambda path: KeywordModel.from_bytes(path.with_suffix(".bundle").read_bytes()),
        lambda m: m,
        lambda m: sum(trees(b) for b in m.boosters.values()),
    )
    for booster in plain.boosters.values():
        booster.set_param({"nthread": 2})
    option(
        "B: clicks booster + rates", "b", lambda: plain, None, None, RatesModel, lambda m: trees(m.boosters["clicks"])
    )
    results["B: clicks booster + rates"]["train"] = 0.0  # the served clicks booster
    for key, strategy in (("a1", "one_output_per_tree"), ("a2", "multi_output_tree")):
        if key not in skip:
            option(
                f"{key.upper()}: 1 booster, {strategy}",
                key,
                lambda s=strategy: train_one_booster(train_frame, plain, s),
                save_booster,
                load_booster,
                lambda fitted: OneBoosterModel(fitted[0], fitted[1], plain.scaler),
                lambda fitted: trees(fitted[0]),
            )
    served_bundle = SCORING_BENCH / "xgboost.bundle"
    if served_bundle.exists():
        cached = KeywordModel.from_bytes(served_bundle.read_bytes())
        for booster in cached.boosters.values():
            booster.set_param({"nthread": 2})
        results["cached bundle (timing only)"] = {
            "train": float("nan"),
            "metrics": None,
            "trees": sum(trees(b) for b in cached.boosters.values()),
        }
        models["cached bundle (timing only)"] = cached
    log(f"timing {len(models)} models, {args.repeats} rounds ...")
    for name, timing in time_xgboost(models, batches, args.repeats).items():
        results[name]["timing"] = timing
        results[name]["measure"] = timing["measure"]

    deep = None
    if "deep" not in skip:
        log("deep model ...")
        model, origin = deep_model(data, through)
        started = time.perf_counter()
        deep = measure_deep(model, batches, args.repeats) | {"origin": origin, "measure": time.perf_counter() - started}

    print()
    print(
        f"XGBoost, {rows:,} scoring rows ({len(batches)} batches of ≤{len(batches[0]):,}), best of {args.repeats}; "
        f"holdout {len(holdout):,} rows ({HOLDOUT_DAYS} days), training {len(train_frame):,} rows"
    )
    print(
        "| model | trees | train | model.predict | raw booster pass | rows/s (predict) | clicks dev | clicks MAE "
        "| clicks calib | conv dev | conv MAE | value dev | value MAE | worst cluster (clicks / conv) "
        "| within tolerance | measured in |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    reference = results["served: 3 boosters"]["metrics"]
    for name, r in results.items():
        t, m = r["timing"], r["metrics"]
        head = (
            f"| {name} | {r['trees']} | {r['train']:.0f} s | {t['predict']:.2f} s | {t['raw']:.2f} s "
            f"| {rows / t['predict']:,.0f} "
        )
        if m is None:
            print(head + "| | | | | | | | | | " + f"{r['measure']:.0f} s |")
            continue
        changes, failures = against_plain(m, reference)

        def cell(metric, change=None):
            return f"{m[metric]:.4f}" + (
                f" ({changes[change]:+.1%})" if change and name != "served: 3 boosters" else ""
            )

        worst = (
            ""
            if name == "served: 3 boosters"
            else f"{changes['clicks_worst_cluster']:+.1%} / {changes['conversions_worst_cluster']:+.1%}"
        )
        verdict = (
            "(reference)" if name == "served: 3 boosters" else ("yes" if not failures else "no: " + "; ".join(failures))
        )
        print(
            head + f"| {cell('clicks_deviance', 'clicks_deviance')} | {cell('clicks_mae', 'clicks_mae')} "
            f"| {m['clicks_calibration']:.3f} | {cell('conversions_deviance', 'conversions_deviance')} "
            f"| {cell('conversions_mae', 'conversions_mae')} | {cell('value_deviance', 'value_deviance')} "
            f"| {cell('value_mae', 'value_mae')} | {worst} | {verdict} | {r['measure']:.0f} s |"
        )
    for name, r in results.items():
        if r["metrics"] is not None and name != "served: 3 boosters":
            changes, _ = against_plain(r["metrics"], reference)
            print(
                f"worst cluster, {name}: {changes['clicks_worst_cluster_detail']}; "
                f"{changes['conversions_worst_cluster_detail']}"
            )
    print(
        f"Tolerance (the gate's own, evaluation.GatePolicy): holdout deviance of each target ≤ +{DEVIANCE_TOLERANCE:.0%} "
        f"vs the served model, each cluster's clicks/conversions deviance ≤ +{CLUSTER_TOLERANCE:.0%}, calibration "
        f"error ≤ the served one's + {CALIBRATION_TOLERANCE}."
    )

    if deep is not None:
        from daily_bids.models.deep_model import SCORING_BATCH

        d, per_row = deep, lambda seconds: f"{rows / seconds:,.0f} rows/s"
        steps = sum(d[name] for name in PREPARATION_STEPS)
        parts = d["preparation"] + d["tensors"] + d["network"]
        print()
        print(
            f"Deep model ({d['origin']}), {rows:,} rows ({len(batches)} batches), best of {args.repeats}, "
            f"measured in {d['measure']:.0f} s"
        )
        print("| part of model.predict | seconds | share of model.predict | rows/s |")
        print("|---|---:|---:|---:|")
        print(
            f"| input preparation, `model.network_inputs(features)` (NetworkInputs) | {d['preparation']:.3f} s "
            f"| {d['preparation'] / d['predict']:.0%} | {per_row(d['preparation'])} |"
        )
        for name in PREPARATION_STEPS:
            print(f"| — NetworkInputs.{name} | {d[name]:.3f} s | {d[name] / d['predict']:.0%} | |")
        print(
            f"| — the rest of the call: keyword bucket, day of week (by difference) "
            f"| {d['preparation'] - steps:.3f} s | {(d['preparation'] - steps) / d['predict']:.0%} | |"
        )
        print(
            f"| tensors (`tf.constant` per {SCORING_BATCH:,} rows) | {d['tensors']:.3f} s "
            f"| {d['tensors'] / d['predict']:.0%} | |"
        )
        print(
            f"| compiled network on prepared inputs | {d['network']:.3f} s | {d['network'] / d['predict']:.0%} "
            f"| {per_row(d['network'])} |"
        )
        # Not subtracted from predict: timed apart, the network reads inputs prepared beforehand (no longer in cache),
        # so the parts can add up to more than predict, which also builds the prediction frame and the value.
        print(f"| sum of the three parts, timed apart | {parts:.3f} s | {parts / d['predict']:.0%} | |")
        print(f"| **model.predict, end to end** | {d['predict']:.3f} s | 100% | {per_row(d['predict'])} |")
        print(
            f"input preparation vs network: {d['preparation'] / d['network']:.2f}× the network's time; "
            f"building NetworkInputs (once per model): {d['build'] * 1000:.1f} ms"
        )
        diffs = d["network_vs_predict"]
        print(
            "max relative difference, the timed network path vs model.predict: "
            + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
            + f" (parity tolerance {d['parity_tolerance']:.0e}: "
            f"{'met' if max(diffs.values()) <= d['parity_tolerance'] else 'NOT met'}); "
            f"NetworkInputs.numeric vs scaler.transform (scaled in float64, nulls as 0), first batch: "
            f"{d['numeric_vs_scaler']:.2e}"
        )
    print(f"\nwall time of the whole benchmark: {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
