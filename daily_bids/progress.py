"""Progress a person can follow on long work: rows done, the rate, and the time left, as log lines.

A step logs through its Dagster context (`context.log.info`), so the same lines show in the run's page in the UI
and under `python -m daily_bids run` in the terminal. A line is written at most every `every_seconds`, and not for
work that ends sooner: short steps stay quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PROGRESS_EVERY_SECONDS = 10.0


def quiet(_line: str) -> None:
    """A log that writes nothing: for work run without progress lines."""


def duration(seconds: float) -> str:
    """A duration in words a person reads at a glance: `45 s`, `3 min 20 s`, `1 h 05 min`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts `rows` of `total` done and logs "what: done of total rows (share), rate rows/s, about T left".

    `unit` names what is counted where rows are not the natural measure, e.g. "MB" of a file read: counts may then
    be fractions, and are shown rounded to whole units."""

    def __init__(
        self,
        what: str,
        total: int,
        log: Callable[[str], None],
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
        unit: str = "rows",
    ):
        self.what, self.total, self.log, self.clock, self.unit = what, total, log, clock, unit
        self.every_seconds = PROGRESS_EVERY_SECONDS if every_seconds is None else every_seconds
        self.done = 0
        self.started = self._last = clock()

    def advance(self, rows: float) -> None:
        self.done += rows
        now = self.clock()
        if now - self._last >= self.every_seconds and self.done < self.total:
            self._last = now
            self.log(self.line(now))

    def line(self, now: float | None = None) -> str:
        """Where the work stands: units done of the total, the rate so far, and the time left at that rate."""
        elapsed = max((self.clock() if now is None else now) - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        share = self.done / self.total if self.total else 1.0
        done, total, unit = f"{self.done:,.0f}", f"{self.total:,.0f}", self.unit
        return f"{self.what}: {done} of {total} {unit} ({share:.0%}), {rate:,.0f} {unit}/s, " + (
            f"about {duration(left)} left" if left != float("inf") else "time left unknown"
        )

    @property
    def rows_per_second(self) -> float:
        return self.done / max(self.clock() - self.started, 1e-9)
