"""Benchmark: the whole daily increment, stage by stage, at 1M, 3M and 10M keywords: how each stage's cost grows.

    .venv/bin/python benchmarks/daily_increment.py [--sizes 1000000,3000000,10000000] [--engine spark] [--together]

With `--engine spark`, the stages that have a Spark form run on `local[2]` instead, through the engine resource as
the assets call it (`BIDS_ENGINE=spark`): the report's contracts (drift stays in the process), the features, their
contract (the catalog's statistics stay in the process), predictions and bids, and publication (the bid rules and the
Ads Editor CSV). The session is started before
the clock; its JVM and Python workers count in the peak RSS.

Set-up per size (not timed, in --workdir): the simulator's reports of the 28 days before day D and of D, written as
validated reports (and D and the 7 days before it as raw reports, for the drift check), the key registry of their
keywords, and the XGBoost model of
`benchmarks/scoring_10m.py` (run it first: it trains on the same simulator's features).

Each stage runs in a process of its own, reading what it needs from the warehouse, so its peak RSS (process and
children) is its own. With `--together`, the everyday stages run one after another in one process instead, as a
deployment's run executes its steps (`in_process_executor`): the imports are paid once, and what memory a step keeps
counts in the next one's peak. The stages:

1. report: the simulator's report of D, written as the raw partition;
2. validation: the raw day read, split into validated rows and the quarantine, both written, against the key
   registry a deployment holds that morning (every keyword of the 28 days before, put in place before the clock); D's
   new keywords are registered as the step registers them;
3. report checks: the raw and the validated contracts (great-expectations, a million rows at a time, as the checks
   read the stored partitions) and the raw day's drift against the 7 days before;
4. features, first run: the rolling state rebuilt from the 28 report days before D, then D's features (what a first
   run or a run after a gap does);
5. features, incremental: D's features from the state as of D-1 (the everyday case), a shard of keywords at a time,
   as the asset computes them;
6. feature checks: the features' blocking contract (great-expectations, a million rows at a time, as the check
   reads them), then the feature catalog's statistics, a column at a time;
7. bid landscape: fitted on its sample of keywords (one in 64 at 10M) over the report days there are (here 29, not
   the 64 of a deployment's; `landscape_history.py` times those), as a morning runs it: the sample's rows of the days
   before D kept by earlier runs (kept here before the clock, in a process of their own), D's read whole;
8. predictions and bids: the bids' context from 7 report days, then `scoring.score_day` (local engine, XGBoost);
9. publication: the bid rules again (great-expectations, in batches) and the Google Ads Editor CSV (streamed).
"""

import argparse
import datetime as dt
import json
import multiprocessing
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scoring_10m import PeakRss, load_model

from daily_bids.bidding.report_history import HISTORY_COLUMNS
from daily_bids.storage import tables
from daily_bids.storage.warehouse import DATA_FILE, Warehouse

DAY = dt.date(2025, 6, 30)
STAGES = (
    "report",
    "validation",
    "report_checks",
    "features_first_run",
    "features_incremental",
    "feature_checks",
    "bid_landscape",
    "predictions_and_bids",
    "publication",
)
RAW, VALIDATED, FEATURES = tables.RAW_REPORT, tables.VALIDATED_REPORT, tables.FEATURES
QUARANTINE, STATE = tables.QUARANTINE, tables.FEATURE_STATE


# Each stage's floor: the Parquet it reads, read by Arrow alone (table, days before D, columns; None for all of them),
# and the partitions it writes, written again by Arrow with the warehouse's options. What a stage does beyond these
# bytes (contracts, validation, features, the model, the bid rules) is its own work.
METRICS = ["keyword_id", "impressions", "clicks", "cost", "conversions", "conversion_value"]
CONTEXT = HISTORY_COLUMNS  # what the landscape and the bids' context read of a report day
FLOORS: dict[str, tuple[list[tuple[str, list[int], list[str] | None]], list[str]]] = {
    "report": ([], [RAW]),
    "validation": ([(RAW, [0], None), (tables.KEYWORD_KEYS, [0], None)], [VALIDATED, QUARANTINE, tables.KEYWORD_KEYS]),
    "report_checks": ([(RAW, [0], None), (RAW, list(range(1, 8)), METRICS[1:]), (VALIDATED, [0], None)], []),
    "features_first_run": ([(VALIDATED, list(range(1, 30)), None)], [FEATURES, STATE]),
    "features_incremental": (
        [(VALIDATED, [0], None), (VALIDATED, [6, 7, 28], METRICS), (STATE, [1], None)],
        [FEATURES, STATE],
    ),
    "feature_checks": ([(FEATURES, [0], None)], []),
    "bid_landscape": ([(VALIDATED, [0], CONTEXT)], []),  # and the kept samples: 1 MB a day at 10M keywords
    "predictions_and_bids": (
        [(VALIDATED, list(range(7)), CONTEXT), (FEATURES, [0], None)],
        [tables.PREDICTIONS, tables.BIDS],
    ),
    "publication": ([(tables.BIDS, [0], None)], []),
}


def floor_seconds(store, stage: str) -> float:
    """The stage's raw Parquet read and write (`FLOORS`), timed after the stages of the process ran."""
    import tempfile

    import pyarrow.parquet as pq

    from daily_bids.storage.warehouse import parquet_options

    def stored(table: str, day: dt.date) -> str | None:
        if table == tables.KEYWORD_KEYS:  # the one unpartitioned table a stage reads and writes
            return store.path(table, DATA_FILE)
        return store.stored_partition_path(table, day) if store.partition_exists(table, day) else None

    reads, writes = FLOORS[stage]
    started = time.perf_counter()
    for table, days_before, columns in reads:
        for back in days_before:
            path = stored(table, DAY - dt.timedelta(days=back))
            if path is not None:
                pq.read_table(path, columns=columns)
    seconds = time.perf_counter() - started
    for table in writes:
        written = pq.read_table(stored(table, DAY - dt.timedelta(days=1) if stage == "features_first_run" else DAY))
        with tempfile.NamedTemporaryFile(dir=store.root, suffix=".parquet") as scratch:
            started = time.perf_counter()
            pq.write_table(written, scratch.name, **parquet_options(written))
            seconds += time.perf_counter() - started
    return seconds


def prepare(folder: Path, keywords: int) -> None:
    from daily_bids.simulator.market import AdMarketSimulator

    if (folder / "ready").exists():
        return
    store = Warehouse(str(folder / "warehouse"))
    simulator = AdMarketSimulator(seed=7, keywords=keywords)
    for back in range(28, -1, -1):
        day = DAY - dt.timedelta(days=back)
        report = simulator.report(day)
        store.write_partition(VALIDATED, day, report)
        if back <= 7:  # D's raw report too, as the report stage writes it: a run of any one stage finds it
            store.write_partition(RAW, day, _raw(report))
        print(f"  set-up {keywords:,}: report of {day} written", flush=True)
    (folder / "ready").write_text("ok")


# The key registry a deployment holds on the morning of D, kept beside the warehouse: each validation run starts from it.
REGISTRY_BEFORE_D = "key_registry_before_D.parquet"


def prepare_key_registry(folder: Path) -> None:
    """Every keyword of the 28 days before D registered, a day at a time, as the validation step registers them."""
    from daily_bids.ingest.stored_validation import key_registry, register_new_keys

    if (folder / REGISTRY_BEFORE_D).exists():
        return
    store, scratch = Warehouse(str(folder / "warehouse")), Warehouse(str(folder / "registry-set-up"))
    for back in range(28, 0, -1):
        day = DAY - dt.timedelta(days=back)
        rows = store.read_partitions(VALIDATED, [day], ["ad_group_id", "criterion_id", "keyword_id"])
        new = rows[~rows["keyword_id"].isin(key_registry(scratch, columns=["keyword_id"])["keyword_id"])]
        # A simulated keyword is one criterion in one ad group, reported under its own ID.
        register_new_keys(scratch, new.astype({"criterion_id": "int64"}).assign(first_day=pd.Timestamp(day)))
        print(f"  set-up: {len(new):,} keywords of {day} registered", flush=True)
    shutil.move(scratch.path(tables.KEYWORD_KEYS, DATA_FILE), folder / REGISTRY_BEFORE_D)
    shutil.rmtree(scratch.root)


def _raw(report: pd.DataFrame, first_row: int = 1) -> pd.DataFrame:
    rows = np.arange(first_row, first_row + len(report))
    return report.assign(source_file="simulator:seed=7", source_row=rows, parse_errors=pd.NA)


# The stages with a Spark form (BIDS_ENGINE=spark); `--engine spark` runs these on `local[2]`.
SPARK_STAGES = (
    "validation",
    "report_checks",
    "features_first_run",
    "features_incremental",
    "feature_checks",
    "predictions_and_bids",
    "publication",
)


def run_stage(folder: Path, keywords: int, stage: str, model_folder: Path, engine: str = "local") -> dict:
    from daily_bids.bidding.landscape import (
        CONTEXT_DAYS,
        TRAINING_DAYS,
        LandscapeUnavailable,
        bid_context,
        landscape_for_day,
    )
    from daily_bids.bidding.policy import BidPolicy
    from daily_bids.bidding.report_history import history_reader, sampled_history
    from daily_bids.currency import DEFAULT_CURRENCY
    from daily_bids.features import catalog
    from daily_bids.ingest.stored_validation import register_new_keys
    from daily_bids.ingest.validation import Plausibility
    from daily_bids.memory import release_memory
    from daily_bids.quality import expectations as quality
    from daily_bids.simulator.market import AdMarketSimulator
    from resources.ad_platform import REPORT_PIECE_ROWS as PIECE_ROWS
    from resources.engine import EngineResource

    store = Warehouse(str(folder / "warehouse"))
    yesterday = DAY - dt.timedelta(days=1)

    # The steps' engine as the assets use it: each method runs the step's Spark form on `spark`.
    steps = EngineResource(engine=engine, spark_master="local[2]")
    history_days = TRAINING_DAYS + CONTEXT_DAYS + 1
    if stage == "validation":  # the registry as it was before D's run: what an everyday morning meets
        registry = Path(store.path(tables.KEYWORD_KEYS, DATA_FILE))
        registry.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / REGISTRY_BEFORE_D, registry)
    if stage == "bid_landscape":  # what earlier mornings kept; D's sample is not kept yet
        keeping = multiprocessing.get_context("fork").Process(
            target=sampled_history, args=(store, yesterday, history_days)
        )
        keeping.start()
        keeping.join()
        shutil.rmtree(Path(store.root) / tables.LANDSCAPE_SAMPLE / f"date={DAY}", ignore_errors=True)
    with PeakRss() as rss:
        if steps.on_spark:  # the session is up before the clock starts; its JVM's memory counts
            steps.spark_session().range(1).count()
        started = time.perf_counter()
        if stage == "report":  # as the step makes it: the day a piece at a time, each appended to the partition
            with store.staging() as staged:
                with staged.day_writers(RAW, [DAY]) as writers:
                    first_row = 1
                    for piece in AdMarketSimulator(seed=7, keywords=keywords).report_pieces(DAY, rows=PIECE_ROWS):
                        writers.write(_raw(piece, first_row))
                        first_row += len(piece)
                staged.publish(RAW)
        elif stage == "validation":  # as the step: the stored raw day, a keyword shard at a time
            plausibility = Plausibility.from_contract()

            def record(result) -> None:  # as the step records them, before publishing
                register_new_keys(store, result.new_keys)

            steps.validate_stored(store, RAW, [DAY], plausibility, VALIDATED, QUARANTINE, record, None)
        elif stage == "report_checks":  # as the checks read them: the stored rows in batches, their types from footers
            for layer, table in (("raw", RAW), ("validated", VALIDATED)):
                steps.check_stored(store, table, [DAY], quality.report_suite(layer, [DAY]), f"{layer}_report")
                quality.dtype_mismatches(store.empty_partition(table, DAY), quality.layer_dtypes(layer))
            drift_columns = store.read_partitions(RAW, [DAY], columns=list(quality.DRIFT_COLUMNS))
            quality.TrailingDays(store, RAW).drift_scores(drift_columns, DAY)
        elif stage == "features_first_run":
            steps.write_features(store, VALIDATED, FEATURES, [yesterday], DAY - dt.timedelta(days=28), log=None)
        elif stage == "features_incremental":
            steps.write_features(store, VALIDATED, FEATURES, [DAY], DAY - dt.timedelta(days=28), log=None)
        elif stage == "feature_checks":  # the features' blocking contract, then the catalog a column at a time
            steps.check_stored(store, FEATURES, [DAY], quality.features_suite(), "features")
            catalog.statistics(lambda name: store.read_partitions(FEATURES, [DAY], [name])[name].to_numpy())
        elif stage == "bid_landscape":
            reports = sampled_history(store, DAY, history_days).reports
            try:
                landscape = landscape_for_day(reports, DAY)
                store.write_partition(tables.LANDSCAPE, DAY, landscape.to_frame(DAY))
            except LandscapeUnavailable as reason:  # the simulator's manual bids never vary
                print(f"    no landscape: {reason}", flush=True)
        elif stage == "predictions_and_bids":
            context = bid_context(history_reader(store), DAY)
            model = load_model(model_folder, "xgboost")
            steps.score_day(
                store,
                FEATURES,
                DAY,
                model,
                None,
                {"predictions": tables.PREDICTIONS, "bids": tables.BIDS},
                BidPolicy(),
                None,
                context,
                "no landscape",
                log=lambda message: print("   ", message, flush=True),
                value_table=None,
            )
        elif stage == "publication":
            steps.check_stored(store, tables.BIDS, [DAY], quality.bid_suite(0.05, 20.0), "bids_to_publish")
            csv = f"exports/keyword_bids_{DAY + dt.timedelta(days=1)}.csv"
            steps.write_ads_editor_csv(store, tables.BIDS, DAY, csv, DEFAULT_CURRENCY, log=None)
        release_memory()  # as every job's step hooks do after a step
        seconds = time.perf_counter() - started
    return {
        "engine": engine,
        "stage": stage,
        "keywords": keywords,
        "seconds": seconds,
        "peak_rss_gb": rss.peak / 2**30,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--workdir", default="/tmp/bids-increment-bench")
    parser.add_argument("--models", default="/tmp/bids-scoring-bench", help="where scoring_10m.py left its models")
    parser.add_argument("--engine", choices=("local", "spark"), default="local", help="spark: its stages on local[2]")
    parser.add_argument(
        "--together",
        action="store_true",
        help="the everyday stages one after another in one process, as a deployment's run executes its steps",
    )
    parser.add_argument("--one", nargs=2, metavar=("KEYWORDS", "STAGES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir, model_folder = Path(args.workdir), Path(args.models)
    if args.one:  # the given stages (comma-separated) in this process, in order
        keywords = int(args.one[0])
        folder = workdir / str(keywords)
        results = [run_stage(folder, keywords, stage, model_folder, args.engine) for stage in args.one[1].split(",")]
        # The floors read whole partitions: timed after every stage, so that no stage's memory holds their bytes.
        store = Warehouse(str(folder / "warehouse"))
        for result in results:
            print("RESULT " + json.dumps(result | {"floor_seconds": floor_seconds(store, result["stage"])}), flush=True)
        return
    results = []
    stages = STAGES if args.engine == "local" else SPARK_STAGES
    if args.together:  # the first run's rebuild is not an everyday step
        stages = tuple(stage for stage in stages if stage != "features_first_run")
    # Each stage in a process of its own, or (--together) all in one, memory and imports carried from step to step.
    processes = [",".join(stages)] if args.together else list(stages)
    for keywords in map(int, args.sizes.split(",")):
        print(f"{keywords:,} keywords: set-up (not timed) ...", flush=True)
        prepare(workdir / str(keywords), keywords)
        prepare_key_registry(workdir / str(keywords))
        for process_stages in processes:
            arguments = ["--workdir", str(workdir), "--models", str(model_folder), "--engine", args.engine]
            process = subprocess.run(
                [sys.executable, __file__, *arguments, "--one", str(keywords), process_stages],
                capture_output=True,
                text=True,
            )
            if process.returncode:
                print(process.stdout[-2000:], process.stderr[-3000:])
                raise SystemExit(f"{process_stages} at {keywords:,} failed")
            for line in process.stdout.splitlines():
                if not line.startswith("RESULT "):
                    continue
                result = json.loads(line[7:])
                print(
                    f"  {result['stage']:<24} {result['seconds']:7.1f} s  peak RSS {result['peak_rss_gb']:5.1f} GB"
                    f"  (raw Parquet read and write {result['floor_seconds']:.1f} s)",
                    flush=True,
                )
                results.append(result)
    table = pd.DataFrame(results)
    seconds = table.pivot(index="stage", columns="keywords", values="seconds").loc[list(stages)]
    memory = table.pivot(index="stage", columns="keywords", values="peak_rss_gb").loc[list(stages)]
    floors = table.pivot(index="stage", columns="keywords", values="floor_seconds").loc[list(stages)]
    way = f"{args.engine}, one process" if args.together else args.engine
    print()
    print("| stage | " + " | ".join(f"{k:,} keywords (time, peak RSS; raw Parquet)" for k in seconds.columns) + " |")
    print("|---|" + "---:|" * len(seconds.columns))
    for stage in stages:
        print(
            f"| {stage} ({way}) | "
            + " | ".join(
                f"{seconds.loc[stage, k]:.1f} s, {memory.loc[stage, k]:.1f} GB; {floors.loc[stage, k]:.1f} s"
                for k in seconds.columns
            )
            + " |"
        )
    if args.engine != "local":
        return
    increment = seconds.drop(index="features_first_run", errors="ignore").sum()
    print(
        "| the everyday increment (all but the first run's rebuild) | "
        + " | ".join(f"{increment[k]:.0f} s" for k in seconds.columns)
        + " |"
    )


if __name__ == "__main__":
    main()
