"""The Spark engine against the local one on a copy of the whole-graph warehouse: shared by the `local[2]` test and
the standalone cluster test."""

import datetime as dt

import pyarrow.fs as pafs
import pytest

from daily_bids.bidding.landscape import CONTEXT_DAYS, BidLandscape, bid_context
from daily_bids.bidding.policy import BidPolicy
from daily_bids.models.store import ModelStore
from daily_bids.serving import scoring, spark_scoring
from daily_bids.storage.warehouse import Warehouse
from support.scenarios import BID_DAYS

DAY = BID_DAYS[-1]
# The policies the parity is checked under: without budgets, and with one that binds.
PARITY_POLICIES = [BidPolicy(), BidPolicy(campaign_budgets={"Hiking 001": 3.0})]
PARITY_POLICY_IDS = ["no_budget", "budget"]


def _inputs(store: Warehouse, kind: str):
    model = ModelStore(store, kind).current()
    clusters = store.read_table("keyword_clusters")
    landscape = BidLandscape.from_row(store.read_partitions("bid_landscape", [DAY]).iloc[0])
    reports = store.read_partitions(
        "validated_keyword_report", [DAY - dt.timedelta(days=n) for n in range(CONTEXT_DAYS)]
    )
    return model, clusters, landscape, bid_context(reports, DAY)


def check_parity(store: Warehouse, spark, kind: str, policy: BidPolicy, log=lambda message: None) -> None:
    """The Spark engine gives the local engine's predictions and bids for `kind`'s model on `DAY` (the Spark engine's
    lines go to `log`)."""
    model, clusters, landscape, context = _inputs(store, kind)
    assert "Hiking 001" in set(store.read_partitions("keyword_features", [DAY])["campaign"])
    note = landscape.describe()
    local = scoring.score_day(
        store,
        "keyword_features",
        DAY,
        model,
        clusters,
        {"predictions": "local_predictions", "bids": "local_bids"},
        policy,
        landscape,
        context,
        note,
        batch_rows=64,
        log=lambda message: None,
    )
    on_spark = spark_scoring.score_day(
        spark,
        store,
        "keyword_features",
        DAY,
        model,
        clusters,
        {"predictions": "spark_predictions", "bids": "spark_bids"},
        policy,
        landscape,
        context,
        note,
        log=log,
    )
    local_predictions = store.read_partitions("local_predictions", [DAY])
    report = scoring.parity_report(store.read_partitions("spark_predictions", [DAY]), local_predictions)
    assert (report["count"] == len(local_predictions)).all()
    assert report["max"].max() <= model.parity_tolerance
    local_bids = store.read_partitions("local_bids", [DAY]).set_index("keyword_id").sort_index()
    spark_bids = store.read_partitions("spark_bids", [DAY]).set_index("keyword_id").sort_index()
    assert spark_bids.index.equals(local_bids.index)
    # A prediction within the tolerance can still round to the next cent at a cent boundary: at most one in 100.
    moved = (spark_bids["bid"] - local_bids["bid"]).abs()
    assert moved.max() <= 0.011 and (moved > 0).mean() <= 0.01
    assert on_spark.bids.bids == local.bids.bids and on_spark.predictions.keywords == local.predictions.keywords
    assert on_spark.bids.economics.loc["chosen", "expected_clicks"] == pytest.approx(
        local.bids.economics.loc["chosen", "expected_clicks"], rel=1e-4
    )
    staging = pafs.FileSelector(store.path(spark_scoring.STAGING_FOLDER), allow_not_found=True, recursive=True)
    assert not store.fs.get_file_info(staging)  # the staging files are gone
