"""Benchmark: predictions plus bids for a 10M-keyword day, end to end (read features → Parquet predictions and bids
written), per engine and per model, with the raw predict of the same model on the same rows beside it.

    .venv/bin/python benchmarks/scoring_10m.py [--keywords 10000000] [--engines local,spark] [--models xgboost,deep]

Set-up (not timed, kept in --workdir and reused by later runs): the simulator's account of --base keywords over 84
days (manual bids, then two weeks of bids moved by up to ±20% a week, so that a bid landscape can be learnt); its
features; an XGBoost and a deep model trained on its last 14 feature days; clusters, the landscape and the bids'
context of the last day. That day's features are then tiled to --keywords rows (copies of the account under new
keyword IDs), and so are the context and the clusters.

Each configuration runs in a process of its own, so its peak RSS (the sum over the process and its children: the
JVM and Spark's Python workers) is its own. Timed: `scoring.score_day` (or `spark_scoring.score_day`) with the model
already loaded; the raw predict is the model's own call (XGBoost's `inplace_predict` per booster, the deep model's
compiled network) on the same batches, prepared beforehand.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

START = dt.date(2025, 1, 1)
HISTORY_DAYS, VARIED_DAYS = 84, 14
FEATURES, PREDICTIONS, BIDS = "keyword_features", "keyword_predictions", "keyword_bids"
COPY_STRIDE = 10**8  # keyword IDs of copy k are the account's + k × this


class PeakRss:
    """Samples the RSS of this process and all its descendants (from /proc) and keeps the peak."""

    def __init__(self, every: float = 0.2):
        self.peak, self._every, self._stop = 0, every, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            self._stop.wait(self._every)


def _tree_rss(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:  # the process ended while we looked
            continue
        pid = int(entry)
        children.setdefault(int(fields["PPid"]), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def prepare(workdir: Path, base: int, keywords: int) -> None:
    """The simulated account, its models, landscape and context (once per --base), then the tiled day (once per
    --keywords)."""
    from daily_bids.storage.warehouse import Warehouse

    if not (workdir / f"base-{base}.json").exists():
        _prepare_account(workdir, base)
    if (workdir / f"ready-{keywords}.json").exists():
        print(f"set-up: reusing {workdir}", flush=True)
        return
    day = dt.date.fromisoformat(json.loads((workdir / f"base-{base}.json").read_text())["day"])
    day_features = pd.read_parquet(workdir / "account_features.parquet")
    copies = -(-keywords // len(day_features))
    print(f"set-up: tiling {len(day_features):,} keywords × {copies} into a {keywords:,}-keyword day ...", flush=True)
    store = Warehouse(str(workdir / f"warehouse-{keywords}"))
    with store.partition_writer(FEATURES, day) as sink:
        for copy in range(copies):
            part = day_features.iloc[: keywords - copy * len(day_features)]
            sink.write(part.assign(keyword_id=part["keyword_id"].to_numpy() + copy * COPY_STRIDE))
    for name in ("context", "clusters"):
        frame = pd.read_parquet(workdir / f"account_{name}.parquet")
        pd.concat(
            [frame.assign(keyword_id=frame["keyword_id"].to_numpy() + copy * COPY_STRIDE) for copy in range(copies)],
            ignore_index=True,
        ).to_parquet(workdir / f"{name}-{keywords}.parquet")
    (workdir / f"ready-{keywords}.json").write_text(json.dumps({"day": day.isoformat(), "keywords": keywords}))


def _prepare_account(workdir: Path, base: int) -> None:
    from daily_bids.bidding.landscape import bid_context, landscape_for_day
    from daily_bids.features.keyword_features import roll
    from daily_bids.models.clustering import behaviour_profiles, fit_clusters
    from daily_bids.models.deep_model import DeepParameters, train_deep
    from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
    from daily_bids.simulator.market import AdMarketSimulator

    print(f"set-up (not timed): {HISTORY_DAYS} days of a {base:,}-keyword account ...", flush=True)
    simulator = AdMarketSimulator(seed=7, keywords=base)
    reports = simulator.reports_with_varied_bids(START, HISTORY_DAYS, VARIED_DAYS)
    features = {day: frame for day, frame, _ in roll(sorted(reports)[-30:], reports.get, history_start=START)}
    day = max(features)
    training_days = sorted(features)[-15:-1]
    frame = training_frame(
        pd.concat([features[d] for d in training_days]),
        pd.concat([reports[d + dt.timedelta(days=1)] for d in training_days]),
    )
    print(f"set-up: training XGBoost and the deep model on {len(frame):,} rows ...", flush=True)
    xgboost = train(
        frame, training_days[-1], TrainingParameters(training_days=14, validation_days=3), log=lambda message: None
    )
    history = pd.concat([reports[d] for d in sorted(reports)], ignore_index=True)
    clusters = fit_clusters(behaviour_profiles(history[history["date"] > pd.Timestamp(day - dt.timedelta(days=28))]))
    deep = train_deep(
        frame, clusters, training_days[-1], DeepParameters(epochs=4, validation_days=3), log=lambda message: None
    )
    features[day].to_parquet(workdir / "account_features.parquet")
    bid_context(history, day).to_parquet(workdir / "account_context.parquet")
    clusters.assignments.to_parquet(workdir / "account_clusters.parquet")
    landscape_for_day(history, day).to_frame(day).to_parquet(workdir / "landscape.parquet")
    (workdir / "xgboost.bundle").write_bytes(xgboost.to_bytes())
    (workdir / "deep.bundle").write_bytes(deep.to_bytes())
    (workdir / f"base-{base}.json").write_text(json.dumps({"day": day.isoformat()}))


def load_model(workdir: Path, kind: str):
    from daily_bids.models.deep_model import DeepKeywordModel
    from daily_bids.models.xgboost_model import KeywordModel

    model_class = {"xgboost": KeywordModel, "deep": DeepKeywordModel}[kind]
    return model_class.from_bytes((workdir / f"{kind}.bundle").read_bytes())


def run_one(workdir: Path, keywords: int, engine: str, kind: str) -> dict:
    """One configuration, in this process: the timed pipeline, then the raw predict on the same rows."""
    from daily_bids.bidding.landscape import BidLandscape
    from daily_bids.bidding.policy import BidPolicy
    from daily_bids.serving import scoring
    from daily_bids.storage.warehouse import Warehouse

    day = dt.date.fromisoformat(json.loads((workdir / f"ready-{keywords}.json").read_text())["day"])
    store = Warehouse(str(workdir / f"warehouse-{keywords}"))
    started = time.perf_counter()
    model = load_model(workdir, kind)
    loaded = time.perf_counter() - started
    clusters = pd.read_parquet(workdir / f"clusters-{keywords}.parquet")
    context = pd.read_parquet(workdir / f"context-{keywords}.parquet")
    landscape = BidLandscape.from_row(pd.read_parquet(workdir / "landscape.parquet").iloc[0])
    outputs = {"predictions": f"{PREDICTIONS}_{engine}_{kind}", "bids": f"{BIDS}_{engine}_{kind}"}
    log = lambda message: print("   ", message, flush=True)  # noqa: E731
    with PeakRss() as rss:
        if engine == "spark":
            from daily_bids.serving import spark_scoring
            from resources.engine import EngineResource

            session = EngineResource(engine="spark", spark_master="local[2]").spark_session()
            session.range(1).count()  # the session is up before the clock starts
            started = time.perf_counter()
            scores = spark_scoring.score_day(
                session,
                store,
                FEATURES,
                day,
                model,
                clusters,
                outputs,
                BidPolicy(),
                landscape,
                context,
                landscape.describe(),
                log,
            )
        else:
            started = time.perf_counter()
            scores = scoring.score_day(
                store,
                FEATURES,
                day,
                model,
                clusters,
                outputs,
                BidPolicy(),
                landscape,
                context,
                landscape.describe(),
                log=log,
            )
        seconds = time.perf_counter() - started
    result = {
        "engine": engine,
        "model": kind,
        "keywords": scores.predictions.keywords,
        "seconds": seconds,
        "rows_per_second": scores.predictions.keywords / seconds,
        "peak_rss_gb": rss.peak / 2**30,
        "model_load_seconds": loaded,
        "bids": scores.bids.bids,
    }
    if engine == "local":
        result |= raw_predict(store, day, model, kind)
        result |= raw_parquet(store, day, outputs)
    return result


def raw_parquet(store, day, outputs: dict[str, str]) -> dict:
    """The floors of the pipeline's IO: reading the day's features with Arrow alone (no frames), and writing the
    predictions and bids it wrote, the same Arrow tables with the warehouse's Parquet options, to a scratch file."""
    import tempfile

    import pyarrow.parquet as pq

    from daily_bids.serving import scoring
    from daily_bids.storage.warehouse import parquet_options

    started = time.perf_counter()
    for _ in pq.ParquetFile(store.stored_partition_path(FEATURES, day)).iter_batches(batch_size=scoring.BATCH_ROWS):
        pass
    read = time.perf_counter() - started
    write = 0.0
    for table in outputs.values():
        written = pq.read_table(store.stored_partition_path(table, day))
        with tempfile.NamedTemporaryFile(dir=store.root, suffix=".parquet") as scratch:
            started = time.perf_counter()
            with pq.ParquetWriter(scratch.name, written.schema, **parquet_options(written)) as writer:
                for batch in written.to_batches(max_chunksize=scoring.BATCH_ROWS):
                    writer.write_batch(batch)
            write += time.perf_counter() - started
    return {"raw_read_seconds": read, "raw_write_seconds": write}


def raw_predict(store, day, model, kind: str) -> dict:
    """The model's own predict on the same rows, batch by batch, inputs prepared beforehand (not timed): XGBoost's
    `inplace_predict` of each booster, or the deep model's compiled network; and its `predict` with the input
    preparation, for the share of the input work."""
    from daily_bids.serving import scoring

    raw = with_preparation = 0.0
    for features in store.iter_partition(FEATURES, day, scoring.BATCH_ROWS):
        started = time.perf_counter()
        model.predict(features)
        with_preparation += time.perf_counter() - started
        if kind == "xgboost":
            matrix = model.scaler.transform(features)  # row-major float32: how XGBoost reads fastest
            started = time.perf_counter()
            for booster in model.boosters.values():
                booster.inplace_predict(matrix)
        else:
            import tensorflow as tf

            from daily_bids.models.deep_model import SCORING_BATCH, model_inputs

            inputs = model_inputs(features, model.scaler, model.clusters, model.parameters["keyword_buckets"])
            batches = [
                {name: tf.constant(values[start : start + SCORING_BATCH]) for name, values in inputs.items()}
                for start in range(0, len(features), SCORING_BATCH)
            ]
            started = time.perf_counter()
            for batch in batches:
                model._scorer(batch)
        raw += time.perf_counter() - started
    return {"raw_predict_seconds": raw, "model_predict_seconds": with_preparation}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keywords", type=int, default=10_000_000)
    parser.add_argument("--base", type=int, default=100_000, help="keywords of the simulated account that is tiled")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--models", default="xgboost,deep")
    parser.add_argument("--workdir", default="/tmp/bids-scoring-bench")
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.one:
        print("RESULT " + json.dumps(run_one(workdir, args.keywords, *args.one)), flush=True)
        return
    prepare(workdir, args.base, args.keywords)
    results = []
    for engine in args.engines.split(","):
        for kind in args.models.split(","):
            print(f"{engine} engine, {kind} model, {args.keywords:,} keywords ...", flush=True)
            process = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--keywords",
                    str(args.keywords),
                    "--workdir",
                    str(workdir),
                    "--one",
                    engine,
                    kind,
                ],
                capture_output=True,
                text=True,
            )
            lines = process.stdout.splitlines()
            print("\n".join(line for line in lines if not line.startswith("RESULT ")), flush=True)
            if process.returncode:
                print(process.stderr[-3000:])
                raise SystemExit(f"{engine}/{kind} failed")
            results.append(json.loads(next(line for line in lines if line.startswith("RESULT "))[7:]))
    print()
    print(
        "| engine | model | keywords | end to end | rows/s | peak RSS | raw predict | model.predict "
        "| raw Parquet read | raw Parquet write | end to end / raw predict |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        raw = r.get("raw_predict_seconds")
        floors = (
            f"{raw:.1f} s | {r['model_predict_seconds']:.1f} s | {r['raw_read_seconds']:.1f} s "
            f"| {r['raw_write_seconds']:.1f} s | {r['seconds'] / raw:.2f}× |"
            if raw
            else "| | | | |"
        )
        print(
            f"| {r['engine']} | {r['model']} | {r['keywords']:,} | {r['seconds']:.1f} s | {r['rows_per_second']:,.0f} "
            f"| {r['peak_rss_gb']:.1f} GB | " + floors
        )


if __name__ == "__main__":
    main()
