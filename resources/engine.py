"""Where the steps that have a Spark form run: in this process (`local`, the default) or on Spark (`BIDS_ENGINE`).

No `from __future__ import annotations` here: Dagster reads field annotations at runtime.
"""

import os
import sys
from typing import Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from daily_bids.features.writer import write_features
from daily_bids.ingest import stored_validation
from daily_bids.quality import expectations as quality
from daily_bids.serving import publishing, scoring
from daily_bids.serving.scoring import BATCH_ROWS


class EngineResource(dg.ConfigurableResource):
    """The engine of every step that has a Spark form (its resource key stays `scoring`, as stored runs name it).
    `spark` starts one SparkSession through dagster-pyspark's lazy resource on first use, so neither pyspark nor a
    JVM is loaded by a deployment that runs locally; a step's Spark form takes it from `spark_session()`."""

    engine: Literal["local", "spark"] = Field("local", description="`local` or `spark` (BIDS_ENGINE).")
    spark_master: str = Field("local[*]", description="Spark master URL (BIDS_SPARK_MASTER).")
    spark_driver_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="With a cluster master, the address the driver binds to and executors connect back to "
        "(BIDS_SPARK_DRIVER_HOST); a local master always binds to 127.0.0.1.",
    )
    batch_rows: int = Field(BATCH_ROWS, ge=1_000, description="Rows per scored batch (on Spark too).")
    _spark: object = PrivateAttr(default=None)

    def spark_config(self) -> dict[str, str]:
        config = {
            "spark.master": self.spark_master,
            "spark.app.name": "daily-bids",
            # Arrow moves the batches between the JVM and the Python workers, this many rows at a time.
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.execution.arrow.maxRecordsPerBatch": str(self.batch_rows),
            # No web UI: it listens on every interface (0.0.0.0 unless SPARK_LOCAL_IP says otherwise).
            "spark.ui.enabled": "false",
            "spark.sql.session.timeZone": "UTC",
        }
        # The driver's RPC and block manager listen on spark.driver.bindAddress, which otherwise defaults to this
        # machine's hostname address, reachable from its network. In-process Spark needs nobody to reach it; a
        # cluster's executors connect back to spark.driver.host, so that one is the deployment's to widen.
        host = "127.0.0.1" if self.spark_master.startswith("local") else self.spark_driver_host
        return config | {"spark.driver.host": host, "spark.driver.bindAddress": host}

    @property
    def on_spark(self) -> bool:
        return self.engine == "spark"

    def spark_session(self):
        """The SparkSession, started on first use and shared by every step of the run that runs on Spark; its Python
        workers run this interpreter."""
        if self._spark is None:
            from dagster_pyspark import LazyPySparkResource  # imports pyspark: only for the Spark engine

            os.environ["PYSPARK_PYTHON"] = sys.executable
            os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
            self._spark = LazyPySparkResource(spark_config=self.spark_config())
        return self._spark.spark_session

    def score_day(
        self,
        store,
        features_table,
        day,
        model,
        clusters,
        outputs,
        policy,
        landscape,
        context,
        note,
        log,
        value_table,
        sink=None,
    ):
        """One day's predictions (and bids, when `outputs` names them) on the configured engine; `value_table` is the
        table of each keyword's pooled value per click. Written to `sink` (a step's staging), or into `store`."""
        day_and_rules = dict(
            sink=sink,
            store=store,
            features_table=features_table,
            day=day,
            model=model,
            clusters=clusters,
            outputs=outputs,
            policy=policy,
            landscape=landscape,
            context=context,
            landscape_note=note,
            log=log,
            value_table=value_table,
        )
        if self.on_spark:
            from daily_bids.serving import spark_scoring

            return spark_scoring.score_day(self.spark_session(), **day_and_rules, batch_rows=self.batch_rows)
        return scoring.score_day(**day_and_rules, batch_rows=self.batch_rows)

    def write_features(self, store, reports_table, features_table, days, history_start, log):
        """The features and rolling state of `days`, on the configured engine: the same partitions either way
        (`daily_bids.features.spark_features`: each keyword shard a Spark task)."""
        if self.on_spark:
            from daily_bids.features.spark_features import write_features_on_spark

            return write_features_on_spark(
                self.spark_session(), store, reports_table, features_table, days, history_start, log=log
            )
        return write_features(store, reports_table, features_table, days, history_start, log=log)

    def check_stored(self, store, table, days, expectations, name, log=None, rows=None):
        """`expectations` on the stored partitions of `table` for `days`, batch by batch: the same outcomes on either
        engine (`daily_bids.quality.spark_expectations`: runs of row groups in Spark tasks). With `log`, progress lines;
        `rows`, the days' rows from their footers, sizes the local engine's."""
        if self.on_spark:
            from daily_bids.quality.spark_expectations import run_expectations_on_spark

            return run_expectations_on_spark(self.spark_session(), store, table, days, expectations, name, log=log)
        batches = store.iter_partitions(table, days, quality.BATCH_ROWS)
        return quality.run_expectations_in_batches(batches, expectations, name, log, rows)

    def validate_stored(
        self, store, raw_table, days, plausibility, valid_table, quarantine_table, before_publishing, log
    ):
        """The range's stored raw reports validated into `valid_table` and `quarantine_table` (either None: not
        written), one keyword shard at a time: the same partitions on either engine
        (`daily_bids.ingest.stored_validation`: each shard a Spark task)."""
        arguments = (store, raw_table, days, plausibility, valid_table, quarantine_table)
        if self.on_spark:
            return stored_validation.validate_stored_on_spark(
                self.spark_session(), *arguments, before_publishing=before_publishing, log=log
            )
        return stored_validation.validate_stored(*arguments, before_publishing=before_publishing, log=log)

    def write_ads_editor_csv(self, store, bids_table, day, relative_path, currency, log):
        """The day's bids as the Google Ads Editor CSV at `relative_path`: the same bytes on either engine
        (`daily_bids.serving.spark_publishing`: row groups formatted in Spark tasks)."""
        if self.on_spark:
            from daily_bids.serving.spark_publishing import write_ads_editor_csv_on_spark

            return write_ads_editor_csv_on_spark(
                self.spark_session(), store, bids_table, day, relative_path, currency=currency, log=log
            )
        return publishing.write_ads_editor_csv(store, bids_table, day, relative_path, currency=currency, log=log)

    def bid_day(self, store, predictions_table, bids_table, day, policy, landscape, context, note, log, sink=None):
        """One day's bids from its stored predictions, in this process on either engine: bidding needs no model,
        and reads the predictions batch by batch, so memory stays bounded by the batch."""
        return scoring.bid_day(
            store,
            predictions_table,
            bids_table,
            day,
            policy,
            landscape,
            context,
            note,
            batch_rows=self.batch_rows,
            log=log,
            sink=sink,
        )
