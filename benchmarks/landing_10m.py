"""Benchmark: one 10M-row day of a Google Ads UI export (gzip CSV) through the landing reader, and gzip bombs.

    .venv/bin/python benchmarks/landing_10m.py [--rows 10000000] [--chunk-mb 16] [--baseline-ref main]

Writes, in a temporary folder (not timed), a `.csv.gz` shaped like the UI's "Download → CSV": a title line and a
date-range line, the header (Day, Campaign ID, Campaign, Ad group ID, Ad group, Keyword ID, Keyword, Match type,
Impr., Clicks, Cost, Conversions, Conv. value), the rows with thousands separators and currency symbols, and the
"Total: Keywords" and "Total: Account" lines. Each read runs in a child process of its own, which reports the wall
time of `read_landing_file` and the process's peak RSS (`ru_maxrss`) beside its RSS just before the read (the
interpreter, pandas and pyarrow). Then two gzip bombs, under the default limits (4 GB out at most): 8 GB of one
digit after the header (no line ends), and 8 GB of one valid row repeated. `--baseline-ref` also reads the same
file with the reader as it is at that git revision, for comparison (the old reader holds the file several times
over: it needs about 10× the file in memory).
"""

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEADER = (
    "Day,Campaign ID,Campaign,Ad group ID,Ad group,Keyword ID,Keyword,Match type,Impr.,Clicks,Cost,Conversions,"
    "Conv. value"
)
ROWS_PER_BLOCK = 200_000
MB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]


def write_export(path: Path, rows: int, seed: int = 7) -> tuple[int, int]:
    """The export, gzip level 1 (as fast as a download is written); returns the stated impressions and clicks."""
    rng = np.random.default_rng(seed)
    impressions_total = clicks_total = 0
    with gzip.open(path, "wt", compresslevel=1, encoding="utf-8", newline="") as out:
        out.write('Keyword report\n"June 2, 2025 - June 2, 2025"\n' + HEADER + "\n")
        for start in range(0, rows, ROWS_PER_BLOCK):
            n = min(ROWS_PER_BLOCK, rows - start)
            keyword = np.arange(start, start + n)
            impressions = rng.negative_binomial(2, 0.002, n)
            clicks = rng.binomial(impressions, 0.03)
            cost = np.round(clicks * rng.uniform(0.2, 3.0, n), 2)
            conversions = rng.binomial(clicks, 0.05)
            value = np.round(conversions * rng.uniform(20, 90, n), 2)
            impressions_total += int(impressions.sum())
            clicks_total += int(clicks.sum())
            out.write(
                "".join(
                    f"2025-06-02,{7_000_000 + k % 500},Campaign {k % 500},{90_000_000 + k % 50_000},"
                    f"Ad group {k % 50_000},{400_000_000 + k},keyword {k} shoes,"
                    f"{('Exact', 'Phrase', 'Broad')[k % 3]} match,{_count(i)},{_count(c)},{_money(m)},"
                    f"{v}.00,{_money(w)}\n"
                    for k, i, c, m, v, w in zip(
                        keyword.tolist(),
                        impressions.tolist(),
                        clicks.tolist(),
                        cost.tolist(),
                        conversions.tolist(),
                        value.tolist(),
                    )
                )
            )
        dashes = ",".join(["--"] * 7)
        out.write(f"Total: Keywords,{dashes},{_count(impressions_total)},{_count(clicks_total)},--,--,--\n")
        out.write(f"Total: Account,{dashes},{_count(impressions_total * 2)},{_count(clicks_total * 2)},--,--,--\n")
    return impressions_total, clicks_total


def _count(n: int) -> str:
    return f'"{n:,}"' if n >= 1000 else str(n)


def _money(x: float) -> str:
    return f'"${x:,.2f}"' if x >= 1000 else f"${x:.2f}"


def write_bomb(path: Path, gigabytes: int, unit: bytes) -> None:
    """Gzip members of 64 MB of `unit` repeated, after a member with the header: gigabytes out of a few MB."""
    member = gzip.compress(unit * (64 * MB // len(unit)), compresslevel=9)
    with path.open("wb") as out:
        out.write(gzip.compress(b"date,keyword_id,impressions,clicks\n"))
        for _ in range(gigabytes * 16):
            out.write(member)


def child(args) -> None:
    """Runs in its own process: reads one file and prints what it cost as JSON."""
    if args.reader_file:  # the reader as it was at another revision
        import importlib.util

        spec = importlib.util.spec_from_file_location("landing_baseline", args.reader_file)
        landing = importlib.util.module_from_spec(spec)
        sys.modules["landing_baseline"] = landing
        spec.loader.exec_module(landing)
    else:
        from daily_bids.ingest import landing
    import pyarrow.fs as pafs

    kwargs = {"chunk_bytes": int(args.chunk_mb * MB)} if not args.reader_file else {}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    try:
        frame = landing.read_landing_file(pafs.LocalFileSystem(), args.child, **kwargs)
        outcome = {"rows": len(frame), "completeness": frame.attrs.get("completeness", "")}
        outcome["frame_mb"] = round(frame.memory_usage(deep=True).sum() / MB)
    except landing.LandingFileError as error:
        outcome = {"refused": str(error).replace(args.child, Path(args.child).name)}
    outcome["seconds"] = round(time.perf_counter() - start, 1)
    outcome["before_mb"] = round(before)
    outcome["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(outcome))


def measure(path: Path, chunk_mb: float, reader_file: Path | None = None) -> dict:
    command = [sys.executable, __file__, "--child", str(path), "--chunk-mb", str(chunk_mb)]
    if reader_file:
        command += ["--reader-file", str(reader_file)]
    # The child reads with this checkout's reader, whatever else the interpreter has installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if process.returncode:
        return {"failed": process.returncode, "stderr": process.stderr[-2000:]}
    return json.loads(process.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-mb", type=float, default=16)
    parser.add_argument("--bomb-gb", type=int, default=8)
    parser.add_argument("--baseline-ref", default="", help="also read with the reader at this git revision")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--reader-file", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    folder = Path(tempfile.mkdtemp(prefix="bids-landing-bench-"))
    try:
        export = folder / "keyword_report.csv.gz"
        start = time.perf_counter()
        impressions, clicks = write_export(export, args.rows)
        with gzip.open(export, "rb") as stream:
            uncompressed = sum(len(block) for block in iter(lambda: stream.read(16 * MB), b""))
        print(
            f"export: {args.rows:,} rows, {export.stat().st_size / MB:,.0f} MB gzip, {uncompressed / MB:,.0f} MB "
            f"uncompressed (written in {time.perf_counter() - start:.0f} s, not timed)",
            flush=True,
        )
        print(f"read (chunks of {args.chunk_mb:g} MB): {json.dumps(measure(export, args.chunk_mb))}", flush=True)
        if args.baseline_ref:
            old = folder / "landing_baseline.py"
            source = subprocess.run(
                ["git", "show", f"{args.baseline_ref}:daily_bids/ingest/landing.py"],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            ).stdout
            old.write_text(source)
            print(f"read by the reader at {args.baseline_ref}: {json.dumps(measure(export, 0, old))}", flush=True)
        for name, unit in (("bomb_digits", b"0"), ("bomb_rows", b"2025-06-02,1,10,1\n")):
            bomb = folder / f"{name}.csv.gz"
            write_bomb(bomb, args.bomb_gb, unit)
            print(
                f"{name}: {args.bomb_gb} GB of {unit!r} repeated in {bomb.stat().st_size / MB:,.1f} MB: "
                f"{json.dumps(measure(bomb, args.chunk_mb))}",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
