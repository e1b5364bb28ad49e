"""Keyword features for next-day prediction."""

import datetime as dt

import dagster as dg
import pandas as pd

from assets.partitions import DAILY_ASSET_POLICIES, partition_days
from assets.reports import VALIDATED_REPORT
from daily_bids.charts import png_markdown
from daily_bids.features import catalog
from daily_bids.features.keyword_features import FEATURES, LOOKBACK_DAYS, feature_set_version
from daily_bids.models import value_per_click
from daily_bids.quality import expectations as quality
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse
from resources.bid_policy import BidPolicyResource
from resources.engine import EngineResource
from resources.warehouse import WarehouseResource, held_metadata


@dg.asset(
    group_name="features",
    kinds={"pandas", "parquet"},
    # Each day reads report days up to 28 days back, itself (four a day, through the rolling state). The dependency
    # is declared day to day: a 28-day lookback mapping would make a backfill of days D..E also rebuild the features
    # (and everything downstream) of the 28 days after E, which is how a backfill of past days once rewrote today's
    # bids. Restated reports: backfill the features from the first restated day on (see the README).
    deps=[VALIDATED_REPORT],
    # A change to any feature definition changes the code version, which marks the asset and its dependents stale.
    code_version=feature_set_version(),
    **DAILY_ASSET_POLICIES,
)
def keyword_features(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    scoring: EngineResource,  # the engine (BIDS_ENGINE); its key is `scoring`, as stored runs name it
) -> dg.MaterializeResult:
    """Lags, 7- and 28-day sums and means (log1p-scaled), smoothed ratios and calendar features per keyword, as of
    the end of the partition day. Reads report days up to the partition day only.

    Computed incrementally from a per-keyword rolling state (`_keyword_feature_state`): a day costs in proportion to
    the number of keywords. Without the previous day's state (the first run, or after a gap) the state is rebuilt
    from the 28 report days before the range. Written a shard of a million keywords at a time, so memory stays
    bounded however large the account. Restated reports: backfill features from the first restated day on."""
    store = warehouse.for_step(context)
    days = partition_days(context)
    reports = VALIDATED_REPORT.path[-1]
    # The account's history starts at its first report (a landing zone's first export day): days before it are read
    # as no rows, and rolling means average over the days since. A day missing after it is still an error.
    reported = store.list_partitions(reports)
    history_start = max(
        dt.date.fromisoformat(context.assets_def.partitions_def.get_first_partition_key()),
        reported[0] if reported else days[0],
    )
    if days[0] - dt.timedelta(days=LOOKBACK_DAYS - 1) < history_start:
        context.log.info(f"report history starts on {history_start}: rolling means average over the days since")
    run = scoring.write_features(
        store, reports, context.assets_def.key.path[-1], days, history_start, log=context.log.info
    )
    return dg.MaterializeResult(
        metadata={
            "rows": run.rows,
            "features": len(FEATURES),
            "days": run.days,
            "keyword_shards": run.shards,
            "state_reused": run.state_reused,
            **held_metadata(store, context.assets_def.key.path[-1]),
        }
    )


@dg.asset(
    name=tables.KEYWORD_VALUE,
    group_name="features",
    kinds={"pandas", "parquet"},
    # Each day adds its report to the day before's totals, read from this table's previous partition; like the
    # features, the dependency is declared day to day (see keyword_features).
    deps=[VALIDATED_REPORT],
    **DAILY_ASSET_POLICIES,
)
def keyword_value(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, bid_policy: BidPolicyResource
) -> dg.MaterializeResult:
    """What a click on each keyword is worth, as of the end of the partition day, with its uncertainty: the
    posterior mean and coefficient of variation of its value per click, from its whole history of clicks,
    conversions and conversion value, pooled towards its ad group, campaign, match type and account with weights
    learnt from the data (empirical Bayes: `daily_bids/models/value_per_click.py`). The bids hold each keyword's
    expected cost per click at or below a conservative quantile of it (`BIDS_VALUE_QUANTILE`).

    Incremental: a day adds its report to the day before's totals; without them (a first run, or after a gap) they
    are rebuilt from every report day before. Restated reports: backfill from the first restated day on."""
    store = warehouse.for_step(context)
    latest = None
    with store.staging() as staged:  # a range that fails on a later day replaces none of its days
        for latest in value_per_click.value_days(
            store, VALIDATED_REPORT.path[-1], tables.KEYWORD_VALUE, partition_days(context), context.log.info
        ):
            staged.write_partition(tables.KEYWORD_VALUE, latest.day, latest.table)
        staged.publish(tables.KEYWORD_VALUE)
    table = latest.table
    known = table["value_per_click"].notna()
    metadata = {
        "keywords": len(table),
        "keywords_with_a_posterior": int(known.sum()),
        "path": dg.MetadataValue.path(store.display_uri(tables.KEYWORD_VALUE)),
        **held_metadata(store, tables.KEYWORD_VALUE),
    }
    if latest.note:
        metadata["no_posterior"] = latest.note
    if known.any():
        png = value_per_click.value_per_click_png(table, bid_policy.value_quantile)
        metadata.update(
            median_value_per_click=round(float(table.loc[known, "value_per_click"].median()), 4),
            median_value_per_click_cv=round(float(table.loc[known, "value_per_click_cv"].median()), 3),
            pooling=dg.MetadataValue.md(value_per_click.pooling_table(latest.poolings).to_markdown(index=False)),
            value_per_click_chart=dg.MetadataValue.md(png_markdown(png, "value per click and its conservative value")),
        )
    return dg.MaterializeResult(metadata=metadata)


def _feature_values(store: Warehouse, day: dt.date) -> catalog.FeatureValues:
    """A day's feature values by name: from the day read whole when it fits one batch (one read, not 45), and a
    column at a time otherwise, so memory stays at one feature's values on a big day."""
    if store.partition_rows(tables.FEATURES, day) <= quality.BATCH_ROWS:
        whole = store.read_partitions(tables.FEATURES, [day], [feature.name for feature in FEATURES])
        return lambda name: whole[name].to_numpy()
    return lambda name: store.read_partitions(tables.FEATURES, [day], [name])[name].to_numpy()


@dg.asset(
    name=tables.FEATURE_CATALOG,
    group_name="features",
    kinds={"pandas", "parquet"},
    deps=[keyword_features],
    **DAILY_ASSET_POLICIES,
)
def feature_catalog(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """An entry per feature and day: definition (name, description, dtype, unit, source columns, transformation and
    window, owner, tags, version), statistics (count, nulls, mean, std, min, quantiles, max), drift against the
    previous 7 days, first and last partition materialized, and the models that used this version.
    Search it with `python -m daily_bids features list | show NAME | search TERM`."""
    store = warehouse.warehouse()
    table = context.assets_def.key.path[-1]
    registry = store.read_table(tables.MODEL_REGISTRY) if store.table_exists(tables.MODEL_REGISTRY) else pd.DataFrame()
    days = partition_days(context)
    materialized = sorted(set(store.list_partitions(tables.FEATURES)) | set(days))
    catalogued = set(store.list_partitions(table))
    written: dict[dt.date, pd.DataFrame] = {}
    for day in days:
        previous_days = [day - dt.timedelta(days=n) for n in range(1, 8)]
        previous = [
            written[d] if d in written else store.read_partitions(table, [d])
            for d in previous_days
            if d in written or d in catalogued
        ]

        values_of = _feature_values(store, day)
        written[day] = catalog.catalog_partition(
            day,
            values_of,
            pd.concat(previous) if previous else pd.DataFrame(),
            [d for d in materialized if d <= day],
            registry,
        )
    latest = written[days[-1]]
    view = latest[["feature", "version", "mean", "std", "nulls", "drift_vs_previous_7d", "models_using_this_version"]]
    drifting = latest[latest["drift_vs_previous_7d"] > catalog.DRIFT_WARN]["feature"].tolist()
    return dg.Output(
        pd.concat(written.values(), ignore_index=True),
        metadata={
            "features": len(latest),
            "feature_set_version": feature_set_version(),
            "drifting_features": ", ".join(drifting) or "none",
            "catalog": dg.MetadataValue.md(view.round(4).to_markdown(index=False)),
        },
    )
