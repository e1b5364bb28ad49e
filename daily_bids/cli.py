"""Command line: `python -m daily_bids run` is what `make run` calls.

`run` brings the warehouse up to date for the latest complete day and makes that day's bids:
  1. report history (raw and validated) that the features and the training window need, where missing;
  2. features for the training window, up to the day, where missing;
  3. clusters, both candidate models and the champion gate, when the models' retraining condition asks for it
     (the same automation condition the retraining sensor evaluates: no champion yet, data older than the freshness
     window, a failed decline check, changed model or feature code), or with --retrain;
  4. the daily bid job for the day: monitoring of yesterday's bids, predictions, bids, then publication;
then prints a summary. Steps whose output already exists are skipped, so a second run redoes no history.
Every step is a Dagster run in the instance at $DAGSTER_HOME, so all of it shows in the UI afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daily_bids", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="bootstrap what is missing, train if needed, make the latest day's bids",
                              description=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--day", type=dt.date.fromisoformat, help="report day to bid from (default: the latest complete day)")
    run.add_argument("--retrain", action="store_true", help="train the model even if a recent one exists")
    commands.add_parser("settings", help="print the BIDS_* environment variables as a Markdown table")
    features = commands.add_parser("features", help="the feature catalog: list, show NAME, search TERM")
    feature_commands = features.add_subparsers(dest="action", required=True)
    feature_commands.add_parser("list", help="every feature with its version and latest statistics")
    show = feature_commands.add_parser("show", help="one feature: definition, statistics, history, models")
    show.add_argument("name")
    find = feature_commands.add_parser("search", help="features whose name, description, owner or tags match")
    find.add_argument("term")
    args = parser.parse_args(argv)
    if args.command == "features":
        return features_command(args)
    if args.command == "settings":
        from daily_bids.settings import settings_table_markdown

        print(settings_table_markdown())
        return 0
    return run_daily(args.day, args.retrain)


def run_daily(day: dt.date | None, retrain: bool) -> int:
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from assets import daily_partitions
    from assets.features import feature_catalog, keyword_features
    from assets.models import HOLDOUT_DAYS, champion_model
    from assets.reports import VALIDATED_REPORT, raw_keyword_report, validated_keyword_report
    from assets.retraining import retraining_reasons
    from assets.serving import keyword_bids, keyword_predictions, published_bids
    from daily_bids.definitions import defs
    from daily_bids.features import LOOKBACK_DAYS
    from daily_bids.model import TrainingParameters
    from daily_bids.settings import first_day
    from resources.io_managers import load_current_model

    instance = dg.DagsterInstance.get()
    store = defs.resources["warehouse"].warehouse()
    day = day or dt.date.fromisoformat(daily_partitions.get_last_partition_key())
    earliest = first_day()
    train_through = day  # the report of the day is the latest outcome the models can learn from
    training_days = TrainingParameters().training_days
    # Candidates train on `training_days` before the holdout; the holdout's features come last.
    feature_days = _days_between(max(train_through - dt.timedelta(days=training_days + HOLDOUT_DAYS), earliest),
                                 train_through)
    report_days = _days_between(max(feature_days[0] - dt.timedelta(days=LOOKBACK_DAYS - 1), earliest), train_through)
    log_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

    def materialize_range(what: str, assets, table: str, days: list[dt.date]) -> None:
        missing = [d for d in days if not store.partition_exists(table, d)]
        if not missing:
            print(f"[daily-bids] {what}: all {len(days)} days present, reused")
            return
        start, end = missing[0].isoformat(), days[-1].isoformat()
        print(f"[daily-bids] {what}: materializing {start}...{end}")
        defs.resolve_job_def("history_job").execute_in_process(
            instance=instance,
            asset_selection=[key for a in assets for key in a.keys],
            tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
            run_config=log_config,
        )

    print(f"[daily-bids] warehouse {store.display_uri()}; bidding from the report of {day} for {day + dt.timedelta(days=1)}")
    materialize_range("report history", [raw_keyword_report, validated_keyword_report],
                      VALIDATED_REPORT.path[-1], report_days)
    materialize_range("feature history", [keyword_features, feature_catalog], keyword_features.key.path[-1],
                      feature_days)

    current = load_current_model(store, champion_model.key.path[-1])
    reasons = ["--retrain"] if retrain else retraining_reasons(defs, instance, day)
    if reasons:
        print(f"[daily-bids] training clusters, the XGBoost and the deep model, then the champion gate "
              f"(outcomes through {train_through}, the last {HOLDOUT_DAYS} days held out), because: "
              + "; ".join(reasons))
        window = {"config": {"train_through": train_through.isoformat()}}
        defs.resolve_job_def("train_model_job").execute_in_process(
            instance=instance,
            run_config={**log_config, "ops": {"keyword_clusters": window, "xgboost_model": window,
                                              "deep_model": window}},
        )
    elif current is None:
        print("[daily-bids] there is no champion, and the retraining condition does not allow training now: the "
              f"latest report or features ({day}) are missing or failed a blocking check. See the checks in the UI.",
              file=sys.stderr)
        return 1
    else:
        print(f"[daily-bids] champion {current.version} (trained through {current.trained_through}) reused")

    print(f"[daily-bids] daily bid job for partition {day}")
    result = defs.resolve_job_def("daily_bid_job").execute_in_process(
        instance=instance, partition_key=day.isoformat(), run_config=log_config
    )
    checks = result.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed]
    if failed:
        print(f"[daily-bids] checks failed: {failed}", file=sys.stderr)
        return 1

    predictions = store.read_partitions(keyword_predictions.key.path[-1], [day])
    bids = store.read_partitions(keyword_bids.key.path[-1], [day])
    metadata = result.asset_materializations_for_node("keyword_bids")[0].metadata
    publication = result.asset_materializations_for_node(published_bids.key.path[-1])[0].metadata
    print(
        "\n".join(
            [
                "",
                f"Daily Bids for {day + dt.timedelta(days=1)} (from the report of {day})",
                f"  keywords predicted     {len(predictions):>12,}",
                f"  bids written           {len(bids):>12,}"
                f"   ({int((bids['bid_basis'] == 'cold_start').sum()):,} cold-start, "
                f"{metadata['keywords_not_bid_unprofitable'].value:,} keywords left unbid as unprofitable)",
                f"  expected clicks        {bids['expected_clicks'].sum():>12,.1f}",
                f"  expected value         {(bids['expected_clicks'] * bids['expected_value_per_click']).sum():>12,.2f}",
                f"  expected spend at most {(bids['expected_clicks'] * bids['bid']).sum():>12,.2f}   (clicks x max CPC)",
                f"  model                  {bids['model_version'].iloc[0] if len(bids) else '-':>12}",
                f"  bid CSV (Ads Editor)   {publication['ads_editor_csv'].value}" if "ads_editor_csv" in publication
                else f"  not published          {publication['decisions'].value[day.isoformat()]}",
            ]
        )
    )
    return 0


def features_command(args) -> int:
    import pandas as pd

    from daily_bids import catalog
    from daily_bids.settings import S3_ENDPOINT_URL, S3_REGION, WAREHOUSE
    from daily_bids.warehouse import S3Options, Warehouse

    store = Warehouse(WAREHOUSE.read(), S3Options(endpoint_url=S3_ENDPOINT_URL.read(), region=S3_REGION.read()))
    days = store.list_partitions(catalog.CATALOG_TABLE)
    history = store.read_partitions(catalog.CATALOG_TABLE, days[-14:]) if days else pd.DataFrame()
    latest = history[history["date"] == history["date"].max()].set_index("feature") if days else pd.DataFrame()
    registry = (store.read_table(catalog.MODEL_REGISTRY) if store.table_exists(catalog.MODEL_REGISTRY)
                else pd.DataFrame())
    definitions = catalog.definitions().set_index("feature")
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 70)

    if args.action == "search":
        found = catalog.search(args.term)
        if not found:
            print(f"no feature matches {args.term!r}")
            return 1
        print(definitions.loc[found, ["description", "tags"]].to_string())
        return 0
    if args.action == "list":
        table = definitions[["version", "unit", "tags"]]
        if len(latest):
            table = table.join(latest[["mean", "nulls", "drift_vs_previous_7d"]])
        print(table.to_string())
        print(f"\n{len(table)} features" + (f"; statistics of {days[-1]}" if days else
                                              "; no statistics yet (materialize feature_catalog)"))
        return 0
    try:
        definition = catalog.describe(args.name)
    except KeyError as error:
        print(error.args[0])
        return 1
    print(f"{args.name}\n" + "\n".join(f"  {key:<16} {value}" for key, value in definition.items()))
    if len(latest):
        stats = latest.loc[args.name, list(catalog.STAT_COLUMNS) + ["drift_vs_previous_7d", "first_partition",
                                                                    "last_partition"]]
        print(f"\nstatistics of {days[-1]}\n" + "\n".join(f"  {key:<22} {value}" for key, value in stats.items()))
        rows = history[history["feature"] == args.name][["date", "version", "mean", "std", "nulls",
                                                           "drift_vs_previous_7d"]]
        print(f"\nhistory (last {len(rows)} partitions)\n{rows.to_string(index=False)}")
    used = catalog.versions_used(args.name, registry)
    print("\nmodels by feature version\n" + ("\n".join(f"  {version}: {', '.join(models)}"
                                                      for version, models in used.items()) or "  none yet"))
    return 0


def _days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]
