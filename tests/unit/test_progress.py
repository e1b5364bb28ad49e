"""Progress lines: rows done, the rate and the time left, at most every so often."""

import pytest

from daily_bids.progress import Progress, duration


@pytest.mark.parametrize(
    "seconds, words",
    [(0, "0 s"), (44.6, "45 s"), (200, "3 min 20 s"), (3_900, "1 h 05 min"), (-3, "0 s")],
)
def test_durations_read_at_a_glance(seconds, words):
    assert duration(seconds) == words


def test_a_line_gives_the_rate_and_the_time_left_at_that_rate():
    now = [100.0]
    lines = []
    progress = Progress("scoring", 1_000, lines.append, every_seconds=10.0, clock=lambda: now[0])
    now[0] = 105.0
    progress.advance(100)  # 5 s in: too soon for a line
    assert lines == []
    now[0] = 120.0
    progress.advance(100)  # 200 rows in 20 s: 10 rows/s, 800 rows left
    assert lines == ["scoring: 200 of 1,000 rows (20%), 10 rows/s, about 1 min 20 s left"]
    now[0] = 125.0
    progress.advance(100)  # 5 s after the last line: quiet
    assert len(lines) == 1
    now[0] = 200.0
    progress.advance(700)  # done: the caller says so, not the progress line
    assert len(lines) == 1
    assert progress.rows_per_second == pytest.approx(1_000 / 100.0)


def test_no_rate_yet_says_the_time_left_is_unknown():
    progress = Progress("checks", 10, lambda line: None, clock=lambda: 0.0)
    assert progress.line(now=5.0).endswith("0 rows/s, time left unknown")


def test_a_unit_other_than_rows_is_named_and_counted_in_whole_units():
    now = [0.0]
    lines = []
    progress = Progress("reading day.csv", 2_048.0, lines.append, every_seconds=10.0, clock=lambda: now[0], unit="MB")
    now[0] = 16.0
    progress.advance(511.6)
    assert lines == ["reading day.csv: 512 of 2,048 MB (25%), 32 MB/s, about 48 s left"]
