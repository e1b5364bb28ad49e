"""Command line: `python -m daily_bids run` is what `make run` calls.

`run` brings the warehouse up to date for the latest complete day (with the landing source: the latest day its files
cover) and makes that day's bids:
  1. report history (raw and validated) that the features and the training window need, where missing; the window is
     sized to the history the source has, down to a minimum (22 days of reports: 14 to train on, 7 to judge on, and
     the report after them);
  2. features for the training window, up to the day, where missing;
  3. clusters, both candidate models and the champion gate, when the models' retraining condition asks for it
     (the same automation condition the retraining sensor evaluates: no champion yet, data older than the freshness
     window, a failed decline check, changed model or feature code), or with --retrain;
  4. the daily bid job for the day: monitoring of yesterday's bids, predictions, bids, then publication;
then prints a summary whenever bids were written, with every check that failed or warned. Steps whose output already
exists are skipped, so a second run redoes no history. Every step is a Dagster run in the instance at $DAGSTER_HOME,
so all of it shows in the UI afterwards.

It exits 1 when a blocking (ERROR) check failed or a step failed, with one line saying why; warnings only go in the
summary. --verbose shows every Dagster event and the traceback of a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import traceback
from typing import TYPE_CHECKING

from daily_bids.models.tuning import SEARCH_SPACES  # light: optuna is imported only when a study runs
from daily_bids.storage import tables

if TYPE_CHECKING:  # dagster is imported by the commands that run something, not by `--help`
    import dagster as dg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daily_bids", description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="show third-party warnings and TensorFlow's C++ logs")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="bootstrap what is missing, train if needed, make the latest day's bids",
        description=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--day",
        type=dt.date.fromisoformat,
        help="report day to bid from (default: the latest complete day; with the landing source, the "
        "latest day its files cover)",
    )
    run.add_argument("--retrain", action="store_true", help="train the model even if a recent one exists")
    run.add_argument("--verbose", action="store_true", help="every Dagster event, and the traceback of any failure")
    commands.add_parser("settings", help="every BIDS_* environment variable: its default and its value here")
    features = commands.add_parser("features", help="the feature catalog: list, show NAME, search TERM")
    feature_commands = features.add_subparsers(dest="action", required=True)
    feature_commands.add_parser("list", help="every feature with its version and latest statistics")
    show = feature_commands.add_parser("show", help="one feature: definition, statistics, history, models")
    show.add_argument("name")
    find = feature_commands.add_parser("search", help="features whose name, description, owner or tags match")
    find.add_argument("term")
    models = commands.add_parser("models", help="the model lab: tune the candidates, register your own Keras model")
    model_commands = models.add_subparsers(dest="action", required=True)
    tune = model_commands.add_parser(
        "tune",
        help="an Optuna study per candidate kind; the next training uses the "
        "best parameters (shown in the UI and MLflow)",
    )
    tune.add_argument("--trials", type=int, default=20, help="trials per kind, at most (default 20)")
    tune.add_argument("--timeout", type=float, default=600, help="seconds per kind, at most (default 600)")
    tune.add_argument(
        "--kinds",
        nargs="+",
        default=list(SEARCH_SPACES),
        choices=list(SEARCH_SPACES),
        help="kinds to tune (default all)",
    )
    register = model_commands.add_parser(
        "register-keras", help="register a .keras file as a challenger: the champion gate judges it on its next run"
    )
    register.add_argument(
        "path", help="the .keras file (inputs: the feature columns; outputs: clicks, and optionally conversions)"
    )
    register.add_argument(
        "--trained-through",
        required=True,
        type=dt.date.fromisoformat,
        help="the last outcome day it trained on (YYYY-MM-DD)",
    )
    bids = commands.add_parser("bids", help="the bids in the Google Ads account (BIDS_SOURCE=google_ads)")
    bid_commands = bids.add_subparsers(dest="action", required=True)
    rollback = bid_commands.add_parser(
        "rollback",
        help="restore the bids in force before a day's publication (where the account still holds the bids it set)",
    )
    rollback.add_argument(
        "day",
        type=lambda text: None if text == "latest" else dt.date.fromisoformat(text),
        help="the bids' partition day (YYYY-MM-DD), or `latest`: the newest publication still live",
    )
    args = parser.parse_args(argv)
    if args.command == "bids":
        return bids_command(args)
    if args.command == "models":
        return models_command(args)
    if args.command == "features":
        return features_command(args)
    if args.command == "settings":
        from daily_bids.settings import settings_table_markdown

        print(settings_table_markdown(current=True))
        return 0
    try:
        return run_daily(args.day, args.retrain, args.verbose)
    except CommandFailed as failure:
        if args.verbose:
            traceback.print_exc()
        print(f"[daily-bids] {failure}", file=sys.stderr)
        return 1


class CommandFailed(Exception):
    """An expected failure of `run` (too little history, another account's warehouse, no value per click, no report
    for the day...): one plain line for the user, no traceback unless --verbose."""


# Errors raised inside runs that are the user's to fix, by class name (a run reports its errors serialized).
EXPECTED_RUN_ERRORS = (
    "CannotBidError",
    "InsufficientHistoryError",
    "SourceMismatchError",
    "MissingPartitionsError",
    "LandingFileError",
    "GoogleAdsReportError",
    "GoogleAdsPublishError",
    "GoogleAdsConfigError",
)


def run_daily(day: dt.date | None, retrain: bool, verbose: bool = False) -> int:
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from daily_bids.features.windows import InsufficientHistoryError, plan_history
    from daily_bids.storage.warehouse import SourceMismatchError

    try:
        from daily_bids.definitions import defs
    except ValueError as error:  # settings are checked when the definitions load, and name the variable
        raise CommandFailed(f"the deployment's settings are not valid: {error}") from error
    from assets.features import feature_catalog, keyword_features
    from assets.reports import VALIDATED_REPORT, raw_keyword_report, validated_keyword_report
    from assets.retraining import retraining_reasons
    from assets.serving import BIDS, published_bids
    from daily_bids.models.store import ModelStore

    instance = dg.DagsterInstance.get()
    source, warehouse = defs.resources["ad_platform"], defs.resources["warehouse"]
    store = warehouse.warehouse()
    try:
        source.claim_warehouse(warehouse)
    except SourceMismatchError as error:
        raise CommandFailed(str(error)) from error
    partitions = defs.resolve_job_def("daily_bid_job").partitions_def  # from BIDS_FIRST_DAY or the history's start
    from daily_bids.google_ads.reports import GoogleAdsReportError
    from resources.ad_platform import GoogleAdsConfigError

    try:
        day, source_start = _report_days(
            source,
            day,
            dt.date.fromisoformat(partitions.get_last_partition_key()),
            dt.date.fromisoformat(partitions.get_first_partition_key()),
        )
    except (GoogleAdsConfigError, GoogleAdsReportError) as error:  # the account cannot be reached or does not match
        raise CommandFailed(str(error)) from error
    try:
        plan = plan_history(source_start, day)
    except InsufficientHistoryError as error:
        raise CommandFailed(f"cannot train a first model from {source.where()}: {error}") from error
    logger = _progress_logger(verbose)

    def execute(job: str, run_config: dict | None = None, **kwargs) -> dg.ExecuteInProcessResult:
        return (
            defs.resolve_job_def(job)
            .with_logger_defs({"progress": logger})
            .execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config={**(run_config or {}), "loggers": {"progress": {}}},
                **kwargs,
            )
        )

    def materialize_range(what: str, assets, table: str, days: list[dt.date]) -> None:
        present = set(store.list_partitions(table))
        missing = [d for d in days if d not in present]
        if not missing:
            print(f"[daily-bids] {what}: all {len(days)} days present, reused")
            return
        start, end = missing[0].isoformat(), days[-1].isoformat()
        print(f"[daily-bids] {what}: materializing {start}...{end}")
        result = execute(
            "history_job",
            asset_selection=[key for a in assets for key in a.keys],
            tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
        )
        if not result.success:
            raise CommandFailed(f"{what} {start}...{end} did not complete: {_failure_text(result)}")

    print(
        f"[daily-bids] warehouse {store.display_uri()}, reports from {source.where()}; bidding from the report of "
        f"{day} for {day + dt.timedelta(days=1)}"
    )
    materialize_range(
        "report history", [raw_keyword_report, validated_keyword_report], VALIDATED_REPORT.path[-1], plan.report_days
    )
    materialize_range(
        "feature history", [keyword_features, feature_catalog], keyword_features.key.path[-1], plan.feature_days
    )

    current = ModelStore(store, tables.CHAMPION).current()
    if retrain or current is None:  # the instance may remember a champion that this warehouse does not hold
        reasons = ["--retrain"] if retrain else ["this warehouse holds no champion yet"]
    else:
        reasons = retraining_reasons(defs, instance, day, partitions.timezone)  # the account's (BIDS_TIME_ZONE)
    if reasons:
        print(
            f"[daily-bids] training clusters, the XGBoost and the deep model, then the champion gate "
            f"({plan.window.describe()}), because: " + "; ".join(reasons)
        )
        window = {"config": {"train_through": day.isoformat()}}
        trained = execute(
            "train_model_job",
            run_config={"ops": {tables.CLUSTERS: window, tables.XGBOOST_MODEL: window, tables.DEEP_MODEL: window}},
        )
        if not trained.success:
            raise CommandFailed(f"training did not complete: {_failure_text(trained)}")
        gate = trained.asset_materializations_for_node(tables.CHAMPION)[0].metadata
        print(f"[daily-bids] champion gate: serving {gate['serving'].value} ({gate['model_version'].value})")
    else:
        print(f"[daily-bids] champion {current.version} (trained through {current.trained_through}) reused")

    print(f"[daily-bids] daily bid job for partition {day}")
    result = execute("daily_bid_job", partition_key=day.isoformat())
    checks = result.get_asset_check_evaluations()
    errors = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    warnings = [c for c in checks if not c.passed and c.severity != dg.AssetCheckSeverity.ERROR]
    bids_written = materializations_of(result, BIDS)
    if bids_written:
        bids = store.read_partitions(tables.BIDS, [day])
        predictions = store.read_partitions(tables.PREDICTIONS, [day])
        metadata = bids_written[0].metadata
        published = result.asset_materializations_for_node(published_bids.key.path[-1])
        print(
            _summary(
                day,
                predictions,
                bids,
                metadata,
                published[0].metadata if published else None,
                errors,
                warnings,
                defs.resources["bid_policy"].currency,
            )
        )
    if errors:
        print(
            "[daily-bids] blocking checks failed, so nothing was published: "
            + "; ".join(f"{c.asset_key.to_user_string()}.{c.check_name}{_check_reason(c)}" for c in errors),
            file=sys.stderr,
        )
        return 1
    if not result.success:
        raise CommandFailed(f"the daily bid job for {day} did not complete: {_failure_text(result)}")
    return 0


def materializations_of(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> list[dg.AssetMaterialization]:
    """The materializations of one asset in a run (a step can materialize several: see `keyword_scores`)."""
    return [
        event.step_materialization_data.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == key
    ]


def _report_days(
    source, day: dt.date | None, last_partition: dt.date, first_partition: dt.date
) -> tuple[dt.date, dt.date]:
    """(the day to bid from, the first day of the history behind it without a gap) for this source."""
    covered = source.covered_days()
    if covered is None:  # the simulator has every day
        return day or last_partition, first_partition
    covered = [d for d in covered if first_partition <= d <= last_partition]
    waiting = source.unsettled_files()
    if waiting:
        note = (
            f"{len(waiting)} file(s) there changed within BIDS_LANDING_SETTLE_SECONDS and are read once they have "
            f"settled (they may still be being written): {waiting[:3]}"
        )
        if not covered:
            raise CommandFailed(f"{source.where()} has no settled reports yet: {note}; run again in a minute")
        print(f"[daily-bids] note: {note}")
    if not covered:
        raise CommandFailed(
            f"{source.where()} has no reports of days from {first_partition} (BIDS_FIRST_DAY) to "
            f"{last_partition}: drop Google Ads keyword report exports (CSV, CSV.gz, Parquet or Excel .xlsx) there"
        )
    day = day or covered[-1]
    if day not in covered:
        raise CommandFailed(f"{source.where()} has no report of {day}; its latest is of {covered[-1]}")
    start, present = day, set(covered)
    while start - dt.timedelta(days=1) in present:
        start -= dt.timedelta(days=1)
    return day, start


def _failure_text(result) -> str:
    """What stopped a run: its failed blocking checks, and its failed steps' errors (the message alone for errors
    that are the user's to fix, the whole traceback for anything else)."""
    import dagster as dg

    texts = [
        f"{c.asset_key.to_user_string()}.{c.check_name} failed{_check_reason(c)}"
        for c in result.get_asset_check_evaluations()
        if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ]
    failures = [event for event in result.all_events if event.is_step_failure]
    if not failures and not texts:
        failures = [event for event in result.all_events if event.is_failure]
    for event in failures:
        error = event.event_specific_data.error if event.event_specific_data is not None else None
        if error is None:
            texts.append(event.message or "failed")
            continue
        root = error
        while root.cause is not None:
            root = root.cause
        if root.cls_name == "DagsterAssetCheckFailedError" and texts:
            continue  # named above, with its reason
        if root.cls_name in EXPECTED_RUN_ERRORS or root.cls_name == "Failure":
            name, _, message = root.message.strip().partition(": ")  # "module.ErrorClass: what happened"
            texts.append(
                f"{event.step_key}: {message if name.split('.')[-1] == root.cls_name else root.message.strip()}"
            )
        else:
            texts.append(f"{event.step_key}: {error.to_string()}")
    return "; ".join(texts) or "see the run in the UI"


def _progress_logger(verbose: bool):
    """A Dagster logger for the command line: the steps' own progress lines and any step that fails, compactly; with
    --verbose, Dagster's console logger with every event and traceback."""
    import logging

    import dagster as dg

    if verbose:
        return dg.colored_console_logger.configured({"log_level": "DEBUG"})

    class StepProgress(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            meta = getattr(record, "dagster_meta", None)
            if meta is None:
                return True
            event = meta["dagster_event"]
            if event is not None and not event.is_step_failure:
                return False  # engine events: the UI shows them
            text = "failed (see below)" if event is not None else meta["orig_message"]
            record.msg, record.args = f"  {meta['step_key'] or 'run'}: {text}", ()
            return True

    @dg.logger(description="Compact progress for `python -m daily_bids run`.")
    def progress(_context) -> logging.Logger:
        logger = logging.Logger("daily_bids.run", logging.INFO)
        handler = logging.StreamHandler(sys.stdout)
        handler.addFilter(StepProgress())
        logger.addHandler(handler)
        return logger

    return progress


def _summary(day: dt.date, predictions, bids, metadata, publication, errors, warnings, currency: str) -> str:
    """The day in a screen; money in the account's currency, to its billable unit (`BIDS_CURRENCY`)."""
    from daily_bids.currency import format_amount

    def money(amount: float) -> str:
        return format_amount(float(amount), currency, thousands=True)

    basis = bids["bid_basis"].value_counts()
    lines = [
        "",
        f"Daily Bids for {day + dt.timedelta(days=1)} (from the report of {day})",
        f"  keywords predicted     {len(predictions):>12,}",
        f"  bids written           {len(bids):>12,}   ("
        + ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in basis.items())
        + f"; {metadata['keywords_not_bid_unprofitable'].value:,} keywords left unbid as unprofitable)",
        f"  expected clicks        {bids['expected_clicks'].sum():>12,.1f}",
        f"  expected value         {money((bids['expected_clicks'] * bids['expected_value_per_click']).sum()):>12}",
        *_economics_lines(metadata, bids, money),
        f"  policy                 {metadata['policy'].value:>12}   {metadata['landscape'].value}",
        f"  bids from min to max   {money(bids['bid'].min() if len(bids) else 0):>12} to "
        f"{money(bids['bid'].max() if len(bids) else 0)}",
        f"  model                  {bids['model_version'].iloc[0] if len(bids) else '-':>12}",
        f"  bid rule               {metadata['bid_rule'].value}",
    ]
    if publication is not None:
        # A re-run keeps the day's publication in its metadata (the CSV of the run that published it).
        if not ("published_by_this_run" in publication and publication["published_by_this_run"].value):
            lines.append(f"  not published          {publication['decisions'].value[day.isoformat()]}")
        if "ads_editor_csv" in publication:
            lines.append(f"  bid CSV (Ads Editor)   {publication['ads_editor_csv'].value}")
    else:
        lines.append("  not published          a blocking check failed (below)")
    for check in errors:
        lines.append(
            f"  check failed (ERROR)   {check.asset_key.to_user_string()}.{check.check_name}{_check_reason(check)}"
        )
    for check in warnings:
        lines.append(
            f"  check warned           {check.asset_key.to_user_string()}.{check.check_name}{_check_reason(check)}"
        )
    return "\n".join(lines)


def _economics_lines(metadata, bids, money) -> list[str]:
    """Expected spend and profit; bounds where no landscape priced the bids (a click then costs at most its bid)."""
    at_most = (bids["expected_clicks"] * bids["bid"]).sum()
    if metadata["keywords_priced_by_landscape"].value == 0:
        return [
            f"  expected spend at most {money(at_most):>12}   (clicks x max CPC: no bid landscape yet)",
            f"  expected profit at least {money(metadata['expected_profit'].value):>10}",
        ]
    return [
        f"  expected spend         {money(metadata['expected_spend'].value):>12}   (at most {money(at_most)} = clicks "
        "x max CPC)",
        f"  expected profit        {money(metadata['expected_profit'].value):>12}   (the fixed margin's: "
        f"{money(metadata['fixed_margin_expected_profit'].value)})",
    ]


def _check_reason(check) -> str:
    description = check.description or next((str(v.value) for k, v in check.metadata.items() if k == "reason"), "")
    return f": {description.splitlines()[0]}" if description else ""


def bids_command(args) -> int:
    """`bids rollback DAY`: the publication's changes undone in the account, and added to its ledger."""
    import uuid

    from daily_bids.google_ads.bids import GoogleAdsPublishError, ledger_summary
    from daily_bids.settings import Settings
    from resources.ad_platform import GoogleAdsAccount
    from resources.deployment import build_resources

    resources = build_resources(Settings.from_environment())
    account = resources["ad_platform"]
    if not isinstance(account, GoogleAdsAccount):
        print(
            "[daily-bids] a rollback restores bids in a Google Ads account: set BIDS_SOURCE=google_ads", file=sys.stderr
        )
        return 1
    try:
        done = account.rollback(
            args.day, f"rollback-{uuid.uuid4().hex[:12]}", lambda line: print(f"[daily-bids] {line}")
        )
    except GoogleAdsPublishError as error:
        print(f"[daily-bids] {error}", file=sys.stderr)
        return 1
    outcomes = ", ".join(f"{count:,} {outcome}" for outcome, count in ledger_summary(done).items())
    print(f"[daily-bids] rollback in {account.where()}: {outcomes or 'nothing to restore'}")
    for row in done[done["error"].notna()].head(20).itertuples():
        print(f"[daily-bids]   {row.resource_name}: {row.outcome}: {row.error}")
    return 1 if done["outcome"].eq("failed").any() else 0


def features_command(args) -> int:
    import pandas as pd

    from daily_bids.features import catalog
    from daily_bids.settings import Settings
    from resources.deployment import deployment_warehouse

    store = deployment_warehouse(
        Settings.from_environment()
    ).warehouse()  # the endpoint, retries and timeouts of every other S3 client
    days = store.list_partitions(tables.FEATURE_CATALOG)
    history = store.read_partitions(tables.FEATURE_CATALOG, days[-14:]) if days else pd.DataFrame()
    latest = history[history["date"] == history["date"].max()].set_index("feature") if days else pd.DataFrame()
    registry = store.read_table(tables.MODEL_REGISTRY) if store.table_exists(tables.MODEL_REGISTRY) else pd.DataFrame()
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
        print(
            f"\n{len(table)} features"
            + (f"; statistics of {days[-1]}" if days else "; no statistics yet (materialize feature_catalog)")
        )
        return 0
    try:
        definition = catalog.describe(args.name)
    except KeyError as error:
        print(error.args[0])
        return 1
    print(f"{args.name}\n" + "\n".join(f"  {key:<16} {value}" for key, value in definition.items()))
    if len(latest):
        stats = latest.loc[
            args.name, list(catalog.STAT_COLUMNS) + ["drift_vs_previous_7d", "first_partition", "last_partition"]
        ]
        print(f"\nstatistics of {days[-1]}\n" + "\n".join(f"  {key:<22} {value}" for key, value in stats.items()))
        rows = history[history["feature"] == args.name][
            ["date", "version", "mean", "std", "nulls", "drift_vs_previous_7d"]
        ]
        print(f"\nhistory (last {len(rows)} partitions)\n{rows.to_string(index=False)}")
    used = catalog.versions_used(args.name, registry)
    print(
        "\nmodels by feature version\n"
        + ("\n".join(f"  {version}: {', '.join(models)}" for version, models in used.items()) or "  none yet")
    )
    return 0


def models_command(args) -> int:
    """`models tune` and `models register-keras`: each is a Dagster run of its asset, so it shows in the UI."""
    import dagster as dg

    from daily_bids.definitions import defs

    if args.action == "tune":
        job, asset = "tune_models_job", "model_tuning"
        config = {"kinds": args.kinds, "trials": args.trials, "timeout_seconds": args.timeout}
    else:
        from daily_bids.models.user_keras_model import load_user_keras

        try:  # the contract first, with the file's own error; the run validates again on the latest features
            load_user_keras(args.path, args.trained_through)
        except ValueError as error:
            print(f"[daily-bids] cannot register {error}")
            return 1
        job, asset = "register_keras_job", "user_keras_model"
        config = {"path": str(args.path), "trained_through": args.trained_through.isoformat()}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False, run_config={"ops": {asset: {"config": config}}}
    )
    if not result.success:
        print(f"[daily-bids] {asset} failed: {_failure_text(result)}")
        return 1
    for key, value in result.asset_materializations_for_node(asset)[0].metadata.items():
        if not isinstance(value, dg.MarkdownMetadataValue):  # tables are for the UI
            print(f"  {key:<36} {value.value}")
    return 0
