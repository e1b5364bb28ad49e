"""Benchmark: the bid landscape step at 10M keywords with a deployment's full history of report days.

    .venv/bin/python benchmarks/landscape_history.py [--days N]

The `bid_landscape` asset reads the report days it learns from: 56 training days, the 7 before them for context, and
the day (64). `daily_increment.py` leaves 29 validated days of 10M keywords in its warehouse; this benchmark links
them, cycled, under the dates before them too (not timed) in a warehouse of its own, then times the step's reading of
the sampled keywords' rows and the fit, with the peak memory. The linked days repeat bids that never vary, so no
landscape is fitted: the figure is the reading and the attempt, a lower bound of the step.
"""

import argparse
import datetime as dt
import time
from pathlib import Path

from daily_increment import DAY, VALIDATED
from scoring_10m import PeakRss

from daily_bids.bidding.landscape import (
    CONTEXT_DAYS,
    PANEL_COLUMNS,
    TRAINING_DAYS,
    LandscapeUnavailable,
    landscape_for_day,
    training_keywords,
)
from daily_bids.storage.warehouse import Warehouse

HISTORY_COLUMNS = ["keyword_id", *PANEL_COLUMNS]


def linked_history(source: Path, target: Path, days: int) -> None:
    """`days` report days ending at DAY under `target`, each a link to a day of `source` (its own, where it has it)."""
    have = sorted(path.name for path in source.iterdir() if path.name.startswith("date="))
    target.mkdir(parents=True, exist_ok=True)
    for back in range(days):
        name = f"date={DAY - dt.timedelta(days=back)}"
        if not (target / name).exists():
            (target / name).symlink_to(source / (name if (source / name).exists() else have[back % len(have)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=TRAINING_DAYS + CONTEXT_DAYS + 1, help="as the asset reads them")
    parser.add_argument("--source", default="/tmp/bids-increment-bench/10000000/warehouse")
    parser.add_argument("--workdir", default="/tmp/bids-landscape-history")
    args = parser.parse_args()
    linked_history(Path(args.source) / VALIDATED, Path(args.workdir) / "warehouse" / VALIDATED, args.days)
    store = Warehouse(str(Path(args.workdir) / "warehouse"))
    days = [DAY - dt.timedelta(days=back) for back in range(args.days)][::-1]
    with PeakRss() as rss:
        started = time.perf_counter()
        latest = store.read_partitions(VALIDATED, [DAY], ["keyword_id"])["keyword_id"].to_numpy()
        reports = store.read_partitions(VALIDATED, days, HISTORY_COLUMNS, training_keywords(latest))
        read = time.perf_counter() - started
        try:
            landscape_for_day(reports, DAY)
        except LandscapeUnavailable as reason:
            print(f"no landscape: {reason}")
        seconds = time.perf_counter() - started
    print(f"{args.days} report days: {seconds:.1f} s (reading {read:.1f} s), peak RSS {rss.peak / 2**30:.1f} GB")


if __name__ == "__main__":
    main()
