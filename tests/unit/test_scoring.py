"""The batch scoring engine (`daily_bids.serving.scoring`), without Dagster: batches give the whole day's answer, the
partition files are written as they go, and the parity report sees a difference."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daily_bids.bidding.decision import decide_bids
from daily_bids.bidding.landscape import bid_context, landscape_for_day
from daily_bids.bidding.policy import BidPolicy
from daily_bids.models.prediction import predict_next_day
from daily_bids.serving.scoring import parity_report, rescore_sample, score_day
from daily_bids.storage.warehouse import Warehouse

FEATURES, PREDICTIONS, BIDS = "keyword_features", "keyword_predictions", "keyword_bids"


@pytest.fixture(scope="module")
def day_to_score(account, tmp_path_factory):
    """The account's last feature day in a warehouse of its own, with its landscape, context and clusters."""
    simulator, reports, model, features = account
    day = max(features)
    store = Warehouse(str(tmp_path_factory.mktemp("scoring") / "warehouse"))
    store.write_partition(FEATURES, day, features[day])
    history = pd.concat([reports[d] for d in sorted(reports) if d <= day], ignore_index=True)
    landscape = landscape_for_day(history, day)
    context = bid_context(history, day)
    ids = features[day]["keyword_id"].to_numpy()
    clusters = pd.DataFrame({"keyword_id": ids[: len(ids) // 2], "cluster": ids[: len(ids) // 2] % 5})
    return store, day, model, features[day], clusters, landscape, context


def _whole_day(features, model, clusters, policy, landscape, context):
    predictions = predict_next_day(features, model, clusters)
    return predictions, decide_bids(predictions, policy, landscape, context, landscape.describe()).bids


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("keyword_id").reset_index(drop=True)


@pytest.mark.parametrize(
    "policy",
    [
        BidPolicy(),
        BidPolicy(policy="fixed_margin"),
        BidPolicy(campaign_budgets={"Climbing 003": 5.0, "Hiking 001": 2.0}),
    ],
    ids=["profit_optimal", "fixed_margin", "with_budgets"],
)
def test_batches_of_37_rows_give_the_whole_days_predictions_and_bids(day_to_score, policy):
    store, day, model, features, clusters, landscape, context = day_to_score
    assert set(policy.campaign_budgets) <= set(features["campaign"])
    scores = score_day(
        store,
        FEATURES,
        day,
        model,
        clusters,
        {"predictions": PREDICTIONS, "bids": BIDS},
        policy,
        landscape,
        context,
        landscape.describe(),
        batch_rows=37,
        log=lambda message: None,
    )
    predictions, bids = _whole_day(features, model, clusters, policy, landscape, context)
    pd.testing.assert_frame_equal(_sorted(store.read_partitions(PREDICTIONS, [day])), _sorted(predictions))
    pd.testing.assert_frame_equal(_sorted(store.read_partitions(BIDS, [day])), _sorted(bids))
    assert scores.bids.bids == len(bids) and scores.predictions.keywords == len(features)
    assert scores.bids.basis.get("profit_optimal", 0) == (bids["bid_basis"] == "profit_optimal").sum()
    assert scores.bids.explored == bids["exploration"].sum() > 0
    whole = decide_bids(predictions, policy, landscape, context).economics
    pd.testing.assert_frame_equal(scores.bids.economics, whole, rtol=1e-9)


def test_a_day_without_bids_asked_for_writes_only_predictions(day_to_score):
    store, day, model, features, clusters, landscape, context = day_to_score
    scores = score_day(
        store,
        FEATURES,
        day,
        model,
        clusters,
        {"predictions": "predictions_only"},
        BidPolicy(),
        log=lambda message: None,
    )
    assert scores.bids is None and store.partition_rows("predictions_only", day) == len(features)


def test_progress_is_logged_on_long_work(day_to_score, monkeypatch):
    import daily_bids.progress

    store, day, model, features, clusters, landscape, context = day_to_score
    monkeypatch.setattr(daily_bids.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    lines = []
    score_day(
        store,
        FEATURES,
        day,
        model,
        clusters,
        {"predictions": "progress"},
        BidPolicy(),
        batch_rows=100,
        log=lines.append,
    )
    assert lines and all(
        "rows/s" in line and f"of {len(features):,} rows" in line and " left" in line for line in lines
    )


def test_a_failure_half_way_leaves_the_old_partition(day_to_score):
    store, day, model, features, clusters, landscape, context = day_to_score
    store.write_partition("half_way", day, pd.DataFrame({"keyword_id": [1, 2], "bid": [0.5, 0.6]}))

    class BreaksOnTheSecondBatch:
        version, calls = "broken", 0

        def predict(self, batch):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("the model broke")
            return model.predict(batch)

    with pytest.raises(RuntimeError, match="the model broke"):
        score_day(
            store,
            FEATURES,
            day,
            BreaksOnTheSecondBatch(),
            clusters,
            {"predictions": "half_way"},
            BidPolicy(),
            batch_rows=50,
            log=lambda message: None,
        )
    assert store.read_partitions("half_way", [day])["keyword_id"].tolist() == [1, 2]
    assert [p.name for p in (Path(store.root) / "half_way" / f"date={day}").iterdir()] == ["data.parquet"]


def test_the_parity_report_measures_element_wise_differences(day_to_score):
    store, day, model, features, clusters, landscape, context = day_to_score
    rescored = rescore_sample(store, FEATURES, day, model, clusters, rows=200)
    assert len(rescored) == 200
    same = parity_report(rescored, rescored)
    assert (same[["mean", "p50", "p99", "max"]] == 0).all().all() and (same["count"] == 200).all()
    nudged = rescored.assign(expected_clicks=rescored["expected_clicks"] * (1 + 1e-3))
    report = parity_report(nudged, rescored)
    assert report.loc["expected_clicks", "max"] == pytest.approx(1e-3, rel=1e-2)
    assert report.loc["expected_conversions", "max"] == 0
    missing = parity_report(rescored.iloc[1:], rescored)
    assert np.isinf(missing.loc["expected_clicks", "max"])


def test_days_are_stored_as_parquet_dates_and_read_back_as_days(tmp_path):
    import pyarrow.parquet as pq

    store = Warehouse(str(tmp_path))
    day = dt.date(2025, 3, 1)
    frame = pd.DataFrame(
        {
            "keyword_id": [1],
            "effective_date": [pd.Timestamp(day) + pd.Timedelta(days=1)],
            "stored_at": [pd.Timestamp("2025-03-01 12:34:56.789")],
        }
    )
    store.write_partition("dates", day, frame)
    schema = pq.read_schema(store.partition_path("dates", day))
    assert str(schema.field("effective_date").type) == "date32[day]"
    assert str(schema.field("stored_at").type) == "timestamp[us]"
    back = store.read_partitions("dates", [day])
    assert back["effective_date"].dtype == "datetime64[ns]" and back["effective_date"][0] == pd.Timestamp(2025, 3, 2)
    assert back["stored_at"][0] == frame["stored_at"][0]


def test_batches_computed_in_threads_come_back_in_order_and_errors_with_them():
    import random
    import time

    from daily_bids.serving.scoring import computed_ahead, in_order

    def slow_square(number: int) -> int:
        time.sleep(random.Random(number).uniform(0.0, 0.01))  # later items often finish first
        if number == 7:
            raise ValueError("batch 7 broke")
        return number * number

    assert list(in_order(slow_square, range(7), threads=3)) == [n * n for n in range(7)]
    assert list(in_order(slow_square, range(7), threads=1)) == [n * n for n in range(7)]
    done = []
    with pytest.raises(ValueError, match="batch 7 broke"):
        for square in in_order(slow_square, range(10), threads=3):
            done.append(square)
    assert done == [n * n for n in range(7)]  # every batch before the broken one, none after
    assert list(computed_ahead(iter(range(5)))) == list(range(5))
