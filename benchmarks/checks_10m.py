"""Benchmark: every raw and validated check on one 10M-row daily report.

    .venv/bin/python benchmarks/checks_10m.py [--rows 10000000]

Generates a day of the simulator's report for 10M keywords and writes it as the 7 trailing days of a temporary
warehouse (not timed), then times what the checks of the raw and validated layers do for one partition: the raw
contract suite (great-expectations, its import included), row volume and drift against the 7 trailing days read
from the warehouse, validation into validated + quarantine, the validated contract suite and the reconciliation.
"""

import argparse
import datetime as dt
import shutil
import tempfile
import time

import numpy as np
import pandas as pd

from daily_bids.ingest.validation import validate_report
from daily_bids.quality import expectations as quality
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage.warehouse import Warehouse

DAY = dt.date(2025, 6, 2)


def timed(label: str, timings: dict, function, *args):
    start = time.perf_counter()
    value = function(*args)
    timings[label] = time.perf_counter() - start
    print(f"  {label:<40} {timings[label]:7.1f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000, help="keywords in the account (≈ rows per day)")
    args = parser.parse_args()
    print(f"generating one day for {args.rows:,} keywords (not timed) ...", flush=True)
    simulator = AdMarketSimulator(seed=7, keywords=args.rows)
    report = simulator.report(DAY)
    raw = report.assign(source_file="simulator:seed=7", source_row=np.arange(1, len(report) + 1), parse_errors=pd.NA)
    store = Warehouse(tempfile.mkdtemp(prefix="bids-bench-"))
    for back in range(1, quality.TRAILING_DAYS + 1):
        store.write_partition("raw_keyword_report", DAY - dt.timedelta(days=back), raw.drop(columns="date"))
    print(f"raw report: {len(raw):,} rows; 7 trailing days written to {store.root}", flush=True)

    timings: dict[str, float] = {}
    outcomes = timed(
        "raw contract (great-expectations)",
        timings,
        quality.run_expectations,
        raw,
        quality.report_suite("raw", [DAY]),
        "raw",
    )
    timed("raw dtypes", timings, quality.dtype_mismatches, raw, quality.layer_dtypes("raw"))
    timed(
        "raw volume vs 7 trailing days",
        timings,
        lambda: quality.volume_verdict(len(raw), quality.TrailingDays(store, "raw_keyword_report").row_counts(DAY)),
    )
    timed(
        "raw drift (PSI vs 7 trailing days)",
        timings,
        quality.TrailingDays(store, "raw_keyword_report").drift_scores,
        raw,
        DAY,
    )
    result = timed("validation → validated + quarantine", timings, validate_report, raw, [DAY])
    timed(
        "validated contract (great-expectations)",
        timings,
        quality.run_expectations,
        result.valid,
        quality.report_suite("validated", [DAY]),
        "validated",
    )
    timed("reconciliation", timings, lambda: len(raw) == len(result.valid) + len(result.quarantine))
    shutil.rmtree(store.root)
    failed = [o.expectation.description for o in outcomes if not o.success]
    print(f"total: {sum(timings.values()):.1f} s for {len(raw):,} rows; raw expectations failed: {failed or 'none'}")


if __name__ == "__main__":
    main()
