"""Benchmark: one day's features for a 10M-keyword account, the incremental way the asset computes them.

    .venv/bin/python benchmarks/features_10m.py [--keywords 10000000]

Set-up (not timed): a temporary warehouse with the validated reports the day reads (D, D-6, D-7 and D-28) and the
rolling state as of D-1, built the way a first run builds it (from the 28 report days before D). Timed: what `keyword_features` does for partition D: read the state and the four report
days, advance the state, compute every feature, and write the features and the new state as Parquet.
"""

import argparse
import datetime as dt
import shutil
import tempfile
import time

from daily_bids.features import STATE_TABLE, RollingState, roll
from daily_bids.simulator import AdMarketSimulator
from daily_bids.warehouse import Warehouse

DAY = dt.date(2025, 6, 30)
REPORTS = "validated_keyword_report"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keywords", type=int, default=10_000_000)
    args = parser.parse_args()
    store = Warehouse(tempfile.mkdtemp(prefix="bids-features-bench-"))
    simulator = AdMarketSimulator(seed=7, keywords=args.keywords)
    print(f"set-up: 28 days of reports for {args.keywords:,} keywords (not timed) ...", flush=True)

    def simulated(day: dt.date):
        return simulator.report(day)  # already in the validated report's schema

    for back in (0, 6, 7, 28):
        day = DAY - dt.timedelta(days=back)
        store.write_partition(REPORTS, day, simulated(day))
    yesterday = DAY - dt.timedelta(days=1)
    for _, _, state in roll([yesterday], simulated):
        store.write_partition(STATE_TABLE, yesterday, state.to_frame())
    del state
    print(f"state as of {yesterday}: written; timing partition {DAY} ...", flush=True)

    start = time.perf_counter()
    state = RollingState.from_frame(yesterday, store.read_partitions(STATE_TABLE, [yesterday]).drop(columns="date"))
    loaded = time.perf_counter()
    ((day, features, new_state),) = list(roll([DAY], lambda d: store.read_partitions(REPORTS, [d])
                                               if store.partition_exists(REPORTS, d) else None, state))
    computed = time.perf_counter()
    store.write_partition("keyword_features", day, features)
    store.write_partition(STATE_TABLE, day, new_state.to_frame())
    written = time.perf_counter()
    print(f"  read state          {loaded - start:6.1f} s")
    print(f"  roll + features     {computed - loaded:6.1f} s  (reads 4 report days)")
    print(f"  write features+state{written - computed:6.1f} s")
    print(f"total: {written - start:.1f} s for {len(features):,} keywords × {features.shape[1]} columns")
    shutil.rmtree(store.root)


if __name__ == "__main__":
    main()
