"""What a new deployment's first morning says of itself: an empty monitoring table explains why, and when it fills."""

import datetime as dt

import pandas as pd

from assets.monitoring import why_empty
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

DAY = dt.date(2026, 12, 5)


def test_empty_monitoring_says_why_and_from_which_partition_it_fills(tmp_path):
    store = Warehouse(str(tmp_path / "warehouse"))
    first_run = why_empty(store, [DAY])
    assert first_run.startswith(f"Empty: no predictions were made for {DAY} ")
    assert "No predictions are stored yet: the first daily run makes them" in first_run
    # Once the day's run has predicted (a second run of the day monitors it again), the partition it fills from.
    store.write_partition(tables.PREDICTIONS, DAY, pd.DataFrame({"keyword_id": [1], "predicted_clicks": [2.0]}))
    assert why_empty(store, [DAY]).endswith(
        f"The first predictions after it are of partition {DAY}: monitoring has rows from {DAY + dt.timedelta(days=1)} on."
    )
