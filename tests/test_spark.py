"""Spark against the warehouse: every table reads in Spark and DuckDB, and the Spark scoring engine gives the local
engine's predictions and bids, in domain code and through the Dagster graph. A real `local[2]` Spark session."""

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds
import pytest

from daily_bids import scoring, spark_scoring
from daily_bids.bidding import BidPolicy
from daily_bids.landscape import CONTEXT_DAYS, BidLandscape, bid_context
from daily_bids.warehouse import Warehouse
from daily_bids.model_store import ModelStore
from resources.scoring import ScoringEngineResource

from conftest import BID_DAYS

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")
DAY = BID_DAYS[-1]


@pytest.fixture(scope="module")
def spark():
    return ScoringEngineResource(engine="spark", spark_master="local[2]").spark_session()


@pytest.fixture()
def warehouse_copy(graph, tmp_path) -> Warehouse:
    """A copy of the whole-graph warehouse, so that what a test writes stays its own."""
    shutil.copytree(graph["root"], tmp_path / "warehouse")
    return Warehouse(str(tmp_path / "warehouse"))


def _parquet_tables(root: Path) -> dict[str, bool]:
    """Every Parquet table under the warehouse root: name → whether it is partitioned by day."""
    tables = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if any(folder.glob("date=*/data.parquet")):
            tables[folder.name] = True
        elif (folder / "data.parquet").exists():
            tables[folder.name] = False
    return tables


def test_spark_duckdb_and_pyarrow_read_every_table_the_platform_writes(graph, spark):
    import duckdb
    from pyspark.sql.types import DateType

    tables = _parquet_tables(graph["root"])
    assert {"raw_keyword_report", "keyword_features", "keyword_predictions", "keyword_bids", "published_bids",
            "bid_landscape", "model_monitoring", "keyword_clusters", "model_registry"} <= set(tables)
    for table, partitioned in tables.items():
        # A partitioned table is its folder; an unpartitioned one is its data.parquet (charts and bundles sit beside it).
        path = str(graph["root"] / table) if partitioned else str(graph["root"] / table / "data.parquet")
        expected = ds.dataset(path, format="parquet", partitioning="hive").count_rows()
        frame = spark.read.parquet(path)
        assert frame.count() == expected, table
        pattern = f"{path}/**/*.parquet" if partitioned else path
        counted = duckdb.sql(f"select count(*) from read_parquet('{pattern}', hive_partitioning = true)").fetchall()
        assert counted == [(expected,)], table
        if partitioned:
            assert isinstance(frame.schema["date"].dataType, DateType), table
            days = {row["date"] for row in frame.select("date").distinct().collect()}
            with_rows = {d for d in graph["store"].list_partitions(table) if graph["store"].partition_rows(table, d)}
            assert days == with_rows, table


def _inputs(store: Warehouse, kind: str):
    model = ModelStore(store, kind).current()
    clusters = store.read_table("keyword_clusters")
    landscape = BidLandscape.from_row(store.read_partitions("bid_landscape", [DAY]).iloc[0])
    reports = store.read_partitions("validated_keyword_report",
                                    [DAY - dt.timedelta(days=n) for n in range(CONTEXT_DAYS)])
    return model, clusters, landscape, bid_context(reports, DAY)


@pytest.mark.parametrize("kind", ["xgboost_model", "deep_model"])
@pytest.mark.parametrize("policy", [BidPolicy(), BidPolicy(campaign_budgets={"Hiking 001": 3.0})],
                         ids=["no_budget", "budget"])
def test_the_spark_engine_gives_the_local_engines_predictions_and_bids(warehouse_copy, spark, kind, policy):
    store = warehouse_copy
    model, clusters, landscape, context = _inputs(store, kind)
    assert "Hiking 001" in set(store.read_partitions("keyword_features", [DAY])["campaign"])
    note = landscape.describe()
    local = scoring.score_day(store, "keyword_features", DAY, model, clusters,
                              {"predictions": "local_predictions", "bids": "local_bids"}, policy, landscape, context,
                              note, batch_rows=64, log=lambda message: None)
    on_spark = spark_scoring.score_day(spark, store, "keyword_features", DAY, model, clusters,
                                       {"predictions": "spark_predictions", "bids": "spark_bids"}, policy, landscape,
                                       context, note, log=lambda message: None)
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
        local.bids.economics.loc["chosen", "expected_clicks"], rel=1e-4)
    assert not list(Path(store.root, spark_scoring.STAGING_FOLDER).iterdir())  # the staging files are gone


def test_the_daily_scoring_on_spark_passes_the_parity_check_in_the_graph(warehouse_copy, spark, monkeypatch):
    from assets import ALL_ASSETS, ALL_CHECKS
    from assets.serving import BIDS, PREDICTIONS, keyword_scores
    from daily_bids.cli import materializations_of
    from resources import build_resources

    monkeypatch.setenv("BIDS_WAREHOUSE", warehouse_copy.root)
    monkeypatch.setenv("BIDS_SIM_KEYWORDS", "300")
    monkeypatch.setenv("BIDS_SIM_SEED", "11")
    monkeypatch.setenv("BIDS_SCORING_ENGINE", "spark")
    monkeypatch.setenv("BIDS_SPARK_MASTER", "local[2]")
    before = warehouse_copy.read_partitions("keyword_bids", [DAY]).set_index("keyword_id")["bid"]
    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=dg.AssetSelection.assets(keyword_scores),
                            resources=build_resources(), partition_key=DAY.isoformat())
    assert result.success
    (parity,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "predictions_match_the_model"]
    assert parity.passed and parity.metadata["engine"].value == "spark"
    assert parity.metadata["keywords_compared"].value == warehouse_copy.partition_rows("keyword_features", DAY)
    assert materializations_of(result, PREDICTIONS)[0].metadata["engine"].value == "spark"
    assert materializations_of(result, BIDS)[0].metadata["bids"].value == len(before)
    after = warehouse_copy.read_partitions("keyword_bids", [DAY]).set_index("keyword_id")["bid"]
    pd.testing.assert_index_equal(after.sort_index().index, before.sort_index().index)
