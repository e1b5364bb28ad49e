"""Keyword features for next-day prediction."""

import datetime as dt

import dagster as dg
import pandas as pd

from assets.partitions import DAILY_ASSET_POLICIES, daily_partitions, partition_days
from assets.reports import VALIDATED_REPORT
from daily_bids import catalog
from daily_bids.features import FEATURES, LOOKBACK_DAYS, STATE_TABLE, RollingState, feature_set_version, roll
from resources.warehouse import WarehouseResource


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
def keyword_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """Lags, 7- and 28-day sums and means (log1p-scaled), smoothed ratios and calendar features per keyword, as of
    the end of the partition day. Reads report days up to the partition day only.

    Computed incrementally from a per-keyword rolling state (`_keyword_feature_state`): a day costs in proportion to
    the number of keywords. Without the previous day's state (the first run, or after a gap) the state is rebuilt
    from the 28 report days before the range. Restated reports: backfill features from the first restated day on."""
    store = warehouse.warehouse()
    days = partition_days(context)
    reports = VALIDATED_REPORT.path[-1]
    # The account's history starts at its first report (a landing zone's first export day): days before it are read
    # as no rows, and rolling means average over the days since. A day missing after it is still an error.
    reported = store.list_partitions(reports)
    history_start = max(dt.date.fromisoformat(daily_partitions.get_first_partition_key()),
                        reported[0] if reported else days[0])
    if days[0] - dt.timedelta(days=LOOKBACK_DAYS - 1) < history_start:
        context.log.info(f"report history starts on {history_start}: rolling means average over the days since")

    def report_for(day: dt.date) -> pd.DataFrame | None:
        return None if day < history_start else store.read_partitions(reports, [day])

    previous = days[0] - dt.timedelta(days=1)
    state = None
    if store.partition_exists(STATE_TABLE, previous):
        state = RollingState.from_frame(previous, store.read_partitions(STATE_TABLE, [previous]).drop(columns="date"))
    else:
        context.log.info(f"no rolling state for {previous}: rebuilding it from the 28 report days before {days[0]}")
    frames = []
    for day, features, day_state in roll(days, report_for, state, log=context.log.info, history_start=history_start):
        store.write_partition(STATE_TABLE, day, day_state.to_frame())
        frames.append(features)
    features = pd.concat(frames, ignore_index=True)
    return dg.Output(features, metadata={"rows": len(features), "features": len(FEATURES), "days": len(days),
                                         "state_reused": state is not None})


FEATURES_TABLE = keyword_features.key.path[-1]


@dg.asset(name=catalog.CATALOG_TABLE, group_name="features", kinds={"pandas", "parquet"}, **DAILY_ASSET_POLICIES)
def feature_catalog(context: dg.AssetExecutionContext, keyword_features: pd.DataFrame,
                    warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """An entry per feature and day: definition (name, description, dtype, unit, source columns, transformation and
    window, owner, tags, version), statistics (count, nulls, mean, std, min, quantiles, max), drift against the
    previous 7 days, first and last partition materialized, and the models that used this version.
    Search it with `python -m daily_bids features list | show NAME | search TERM`."""
    store = warehouse.warehouse()
    table = context.assets_def.key.path[-1]
    registry = (store.read_table(catalog.MODEL_REGISTRY) if store.table_exists(catalog.MODEL_REGISTRY)
                else pd.DataFrame())
    days = partition_days(context)
    materialized = sorted(set(store.list_partitions(FEATURES_TABLE)) | set(days))
    written: dict[dt.date, pd.DataFrame] = {}
    for day in days:
        previous_days = [day - dt.timedelta(days=n) for n in range(1, 8)]
        previous = [written[d] if d in written else store.read_partitions(table, [d])
                    for d in previous_days if d in written or store.partition_exists(table, d)]
        todays = keyword_features[keyword_features["date"] == pd.Timestamp(day)]
        written[day] = catalog.catalog_partition(day, todays, pd.concat(previous) if previous else pd.DataFrame(),
                                                 [d for d in materialized if d <= day], registry)
    latest = written[days[-1]]
    view = latest[["feature", "version", "mean", "std", "nulls", "drift_vs_previous_7d", "models_using_this_version"]]
    drifting = latest[latest["drift_vs_previous_7d"] > catalog.DRIFT_WARN]["feature"].tolist()
    return dg.Output(pd.concat(written.values(), ignore_index=True), metadata={
        "features": len(latest),
        "feature_set_version": feature_set_version(),
        "drifting_features": ", ".join(drifting) or "none",
        "catalog": dg.MetadataValue.md(view.round(4).to_markdown(index=False)),
    })
