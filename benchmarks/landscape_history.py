"""Benchmark: the bid landscape step at 10M keywords with a deployment's full history of report days.

    .venv/bin/python benchmarks/landscape_history.py [--days N]

The `bid_landscape` asset reads the report days it learns from: 56 training days, the 7 before them for context, and
the day (64). `daily_increment.py` leaves 29 validated days of 10M keywords in its warehouse; this benchmark links
them, cycled, under the dates before them too (not timed) in a warehouse of its own, then times the step twice, with
the peak memory of each:

- the first run: no day's sample of keywords is kept yet, so every report day is read whole and its sample kept;
- a morning: the days before D were kept by earlier runs (the first run's, less D's), and D is read whole.

The linked days repeat bids that never vary, so no landscape is fitted: the figures are the reading and the attempt,
a lower bound of the step.
"""

import argparse
import datetime as dt
import multiprocessing
import shutil
import time
from pathlib import Path

from daily_increment import DAY, VALIDATED
from scoring_10m import PeakRss

from daily_bids.bidding.landscape import CONTEXT_DAYS, TRAINING_DAYS, LandscapeUnavailable, landscape_for_day
from daily_bids.bidding.report_history import sampled_history
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse


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
    kept = Path(store.root) / tables.LANDSCAPE_SAMPLE
    shutil.rmtree(kept, ignore_errors=True)
    for run in ("first run", "a morning"):
        if run == "a morning":  # D's report is the one new day
            shutil.rmtree(kept / f"date={DAY}")
        # Each run in a process of its own, as a step runs: its peak memory is its own.
        process = multiprocessing.get_context("fork").Process(target=time_the_step, args=(store, args.days, run))
        process.start()
        process.join()
        if process.exitcode:
            raise SystemExit(f"the {run} failed")


def time_the_step(store: Warehouse, days: int, run: str) -> None:
    with PeakRss() as rss:
        started = time.perf_counter()
        history = sampled_history(store, DAY, days)
        read = time.perf_counter() - started
        try:
            landscape_for_day(history.reports, DAY)
        except LandscapeUnavailable as reason:
            print(f"no landscape: {reason}")
        seconds = time.perf_counter() - started
    print(
        f"{run}, {history.describe()}: {seconds:.1f} s (reading {read:.1f} s), peak RSS {rss.peak / 2**30:.1f} GB",
        flush=True,
    )


if __name__ == "__main__":
    main()
