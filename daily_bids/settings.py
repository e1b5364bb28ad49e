"""Deployment settings, read once from `BIDS_*` environment variables.

Every default is the embedded deployment: a local Parquet warehouse, the ad-market simulator as the report source and
a local Dagster instance. The README's table of variables is generated from `SETTINGS` below, so the two cannot drift.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    env_var: str
    default: str
    description: str

    def read(self) -> str:
        return os.environ.get(self.env_var, self.default)


WAREHOUSE = Setting(
    "BIDS_WAREHOUSE",
    "warehouse",
    "Where every table is written: a local folder (relative to the working directory) or `s3://bucket/prefix`.",
)
FIRST_DAY = Setting(
    "BIDS_FIRST_DAY",
    "2025-01-01",
    "First day of the daily partitions (YYYY-MM-DD). Partition D is the report of day D; its bids apply to D+1.",
)
SOURCE = Setting(
    "BIDS_SOURCE",
    "simulator",
    "Where keyword reports come from: `simulator` (the embedded ad market) or `landing` (exported files in a folder).",
)
LANDING_URI = Setting(
    "BIDS_LANDING_URI",
    "landing",
    "`landing` source: folder or `s3://bucket/prefix` where report files (CSV, CSV.gz, Parquet) are dropped.",
)
LANDING_COLUMN_MAP = Setting(
    "BIDS_LANDING_COLUMN_MAP",
    "",
    '`landing` source: extra header → column mappings as JSON, e.g. `{"Impressions (all)": "impressions"}`.',
)
LANDING_DATE_FORMAT = Setting(
    "BIDS_LANDING_DATE_FORMAT",
    "",
    "`landing` source: strftime format of the date column, for files whose dates are ambiguous.",
)
VALUE_PER_CLICK = Setting(
    "BIDS_VALUE_PER_CLICK",
    "",
    "Value of a click in account currency, for reports without conversion value (e.g. impressions and clicks only). "
    "Empty: such reports get predictions but no bids.",
)
BID_POLICY = Setting(
    "BIDS_BID_POLICY",
    "profit_optimal",
    "How bids are chosen: `profit_optimal` (the bid of highest expected profit on the learnt bid landscape; the fixed "
    "margin wherever there is no landscape yet) or `fixed_margin` (value per click × (1 − 0.3)).",
)
MAX_BID_CHANGE = Setting(
    "BIDS_MAX_BID_CHANGE", "0.3", "`profit_optimal`: the largest relative change from the bid in force in one day."
)
EXPLORATION_SHARE = Setting(
    "BIDS_EXPLORATION_SHARE",
    "0.1",
    "Share of keywords whose bid is moved by up to ±20% each day (within every rule), so the bid landscape sees "
    "bids vary; 0 turns exploration off.",
)
CAMPAIGN_BUDGETS = Setting(
    "BIDS_CAMPAIGN_BUDGETS",
    "",
    "Path of a CSV with columns `campaign,budget`: each campaign's daily budget in account currency. "
    "`profit_optimal` keeps each campaign's expected spend within it. Empty: no budgets.",
)
SCORING_ENGINE = Setting(
    "BIDS_SCORING_ENGINE",
    "local",
    "Where predictions and bids are computed: `local` (this process, streaming the features in batches) or `spark` "
    "(a Spark session through dagster-pyspark, started only then).",
)
SPARK_MASTER = Setting(
    "BIDS_SPARK_MASTER",
    "local[*]",
    "`spark` engine: the master URL, e.g. `spark://host:7077`; `local[*]` runs Spark in this machine's cores.",
)
SPARK_DRIVER_HOST = Setting(
    "BIDS_SPARK_DRIVER_HOST",
    "127.0.0.1",
    "`spark` engine with a cluster master: the address the driver listens on and the executors connect back to. "
    "The default keeps the driver on loopback (a cluster on this machine); for workers on other machines, this "
    "machine's address on their network. A `local` master always binds to 127.0.0.1.",
)
SIM_KEYWORDS = Setting("BIDS_SIM_KEYWORDS", "2000", "Simulator: number of keywords in the account (300 to 10,000,000).")
SIM_SEED = Setting("BIDS_SIM_SEED", "7", "Simulator: seed. The same seed and bids give the same reports.")
S3_ENDPOINT_URL = Setting(
    "BIDS_S3_ENDPOINT_URL",
    "",
    "S3 API endpoint of every `s3://` location (warehouse, landing zone, MLflow artifacts), for S3-compatible stores "
    "(empty: AWS). Credentials: the usual AWS_* variables or an IAM role, never a setting.",
)
S3_REGION = Setting("BIDS_S3_REGION", "us-east-1", "Region of the S3 buckets.")
S3_MAX_ATTEMPTS = Setting(
    "BIDS_S3_MAX_ATTEMPTS",
    "5",
    "Attempts per S3 request, the first included, for every S3 client (warehouse, landing zone, MLflow artifacts): "
    "throttling, 5xx errors and timeouts are retried with exponential backoff (AWS standard retry mode), then the "
    "step fails.",
)
S3_TIMEOUT_SECONDS = Setting(
    "BIDS_S3_TIMEOUT_SECONDS",
    "30",
    "Connect and read timeout of every S3 request, in seconds: a request that stalls longer is abandoned and retried.",
)

MLFLOW_TRACKING_URI = Setting(
    "BIDS_MLFLOW_TRACKING_URI",
    "sqlite:///mlflow.db",
    "MLflow tracking store for every training run (default: a local SQLite file, artifacts in `mlruns/` beside it).",
)
MLFLOW_ARTIFACTS = Setting(
    "BIDS_MLFLOW_ARTIFACTS",
    "",
    "Where the MLflow experiment keeps its artifacts (the model bundles): `s3://bucket/prefix` or a folder, set when "
    "the experiment is created. Empty: beside a SQLite store, or where the tracking server decides.",
)

MODEL_MAX_AGE_DAYS = Setting(
    "BIDS_MODEL_MAX_AGE_DAYS",
    "7",
    "Freshness window of the models: a model not retrained within this many days is stale, and the automation "
    "retrains it.",
)
REPORT_DEADLINE = Setting(
    "BIDS_REPORT_DEADLINE",
    "0 5 * * *",
    "Cron (UTC) by which yesterday's report partition must be materialized; later, its freshness check fails.",
)
BIDS_DEADLINE = Setting(
    "BIDS_BIDS_DEADLINE",
    "0 7 * * *",
    "Cron (UTC) by which yesterday's partition of bids must be published; later, its freshness check fails.",
)
DECLINE_MARGIN = Setting(
    "BIDS_DECLINE_MARGIN",
    "0.10",
    "How much worse than the champion's holdout deviance the rolling 7-day deviance of clicks may get before the "
    "decline check fails and the automation retrains.",
)
ALERT_WEBHOOK = Setting(
    "BIDS_ALERT_WEBHOOK",
    "",
    "URL that failed runs and failed checks are POSTed to as JSON (asset, partition, check, run link). Empty: alerts "
    "are only logged.",
)
UI_URL = Setting("BIDS_UI_URL", "http://127.0.0.1:3000", "Base URL of the Dagster UI, for the run links in alerts.")

PLAUSIBLE_MAX = Setting(
    "BIDS_PLAUSIBLE_MAX",
    "",
    "JSON of report column → the largest value one keyword can plausibly have in a day, overriding the contract's "
    '(e.g. `{"conversion_value": 50000}`); rows above it are quarantined as `out_of_range`.',
)
OUTLIER_FACTOR = Setting(
    "BIDS_OUTLIER_FACTOR",
    "5",
    "A keyword's daily value above this many times its own total of the previous 28 days (and above the column's "
    "floor) is quarantined as `outlier_vs_history`; 0 turns the rule off.",
)

LANDING_MAX_FILE_MB = Setting(
    "BIDS_LANDING_MAX_FILE_MB", "1024", "`landing` source: the largest file read, in MB (checked while reading)."
)
LANDING_MAX_UNCOMPRESSED_MB = Setting(
    "BIDS_LANDING_MAX_UNCOMPRESSED_MB",
    "4096",
    "`landing` source: the most a file may decompress to, in MB (a gzip bomb stops there).",
)
LANDING_SETTLE_SECONDS = Setting(
    "BIDS_LANDING_SETTLE_SECONDS",
    "60",
    "`landing` source: a file modified more recently than this is not read yet (it may still be being written).",
)

SETTINGS: tuple[Setting, ...] = (
    WAREHOUSE,
    FIRST_DAY,
    SOURCE,
    LANDING_URI,
    LANDING_COLUMN_MAP,
    LANDING_DATE_FORMAT,
    VALUE_PER_CLICK,
    BID_POLICY,
    MAX_BID_CHANGE,
    EXPLORATION_SHARE,
    CAMPAIGN_BUDGETS,
    SCORING_ENGINE,
    SPARK_MASTER,
    SPARK_DRIVER_HOST,
    SIM_KEYWORDS,
    SIM_SEED,
    S3_ENDPOINT_URL,
    S3_REGION,
    S3_MAX_ATTEMPTS,
    S3_TIMEOUT_SECONDS,
    MLFLOW_TRACKING_URI,
    MLFLOW_ARTIFACTS,
    MODEL_MAX_AGE_DAYS,
    REPORT_DEADLINE,
    BIDS_DEADLINE,
    DECLINE_MARGIN,
    ALERT_WEBHOOK,
    UI_URL,
    PLAUSIBLE_MAX,
    OUTLIER_FACTOR,
    LANDING_MAX_FILE_MB,
    LANDING_MAX_UNCOMPRESSED_MB,
    LANDING_SETTLE_SECONDS,
)


def first_day() -> dt.date:
    raw = FIRST_DAY.read()
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as error:
        raise ValueError(f"{FIRST_DAY.env_var}={raw!r} is not a date of the form YYYY-MM-DD") from error


def int_setting(setting: Setting, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = setting.read()
    try:
        value = int(raw)
    except ValueError as error:
        raise ValueError(f"{setting.env_var}={raw!r} is not a whole number") from error
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{setting.env_var}={raw!r} is outside {minimum:,} to {maximum:,}")
    return value


def float_setting(setting: Setting) -> float | None:
    """The setting as a finite number, or None when empty; inf and nan are refused (they would reach every bid)."""
    raw = setting.read()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as error:
        raise ValueError(f"{setting.env_var}={raw!r} is not a number") from error
    if not math.isfinite(value):
        raise ValueError(f"{setting.env_var}={raw!r} is not a finite number")
    return value


def settings_table_markdown(current: bool = False) -> str:
    """The README's table of environment variables; with `current`, a column of the values in force here (the
    variable's value where it is set, else its default)."""
    if not current:
        rows = ["| variable | default | meaning |", "|---|---|---|"]
        return "\n".join(rows + [f"| `{s.env_var}` | `{s.default or '(empty)'}` | {s.description} |" for s in SETTINGS])
    rows = ["| variable | value here | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        value = f"`{s.read()}` (set)" if s.env_var in os.environ else "(default)"
        rows.append(f"| `{s.env_var}` | {value} | `{s.default or '(empty)'}` | {s.description} |")
    return "\n".join(rows)
